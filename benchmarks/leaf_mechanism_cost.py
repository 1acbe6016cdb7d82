"""What do the leaf-mechanism metrics (gbreg.models.leaf_mechanism) cost a trial?

On the quickstart's data and models (diabetes, 25% holdout, 200 rounds, XGBoost max_depth 4 and
LightGBM num_leaves 15, learning rate 0.1), or on ``--rows`` x 50 synthetic rows, each library trains at
a few grid points; for each, the CPU time of the whole adapter ``train()`` and of the mechanism part
alone (the training set's per-row leaf ids from the live booster plus the G/H rebuild and metrics) is
measured ``--repeat`` times, one thread, and the medians printed. CPU time (``time.process_time``) since
wall time on this machine moves with its neighbours.

Usage::

    python benchmarks/leaf_mechanism_cost.py                 # quickstart size (331 training rows)
    python benchmarks/leaf_mechanism_cost.py --rows 20000    # the reference size of sweep_overhead.py
    python benchmarks/leaf_mechanism_cost.py --metrics       # the metrics themselves (docs/leaf_mechanism.md)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import pandas as pd

from gbreg.models.boosters import ADAPTERS, FoldData
from gbreg.models.boosters import lgbm as lgbm_adapter
from gbreg.models.boosters import xgb as xgb_adapter
from gbreg.models.leaf_mechanism import lightgbm_skip_reason, xgboost_skip_reason
from gbreg.spec.params import resolve_params

MODELS = {"xgboost": {"n_estimators": 200, "max_depth": 4, "learning_rate": 0.1},
          "lightgbm": {"n_estimators": 200, "num_leaves": 15, "learning_rate": 0.1}}
GRID = [(0.0, 0.0), (1.0, 1.0), (100.0, 10.0)]


def make_fold(rows: int | None) -> FoldData:
    from sklearn.datasets import load_diabetes, make_regression
    from sklearn.model_selection import train_test_split

    if rows is None:
        X, y = load_diabetes(return_X_y=True, as_frame=True)
        y = y.to_numpy()
    else:
        X, y = make_regression(n_samples=rows, n_features=50, n_informative=10, noise=10.0, random_state=0)
        X = pd.DataFrame(X, columns=[f"x{i}" for i in range(50)])
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    return FoldData(X_train, y_train, X_test, y_test, "regression", 0)


def mechanism_seconds(library: str, fold: FoldData, params: dict) -> float:
    """CPU seconds of what the hook adds to ``train()``: per-row leaf ids, then G/H and the metrics."""
    adapter = ADAPTERS[library]
    prepared = adapter.prepare(fold, params)
    native = adapter.native_params(params, fold.task, fold.n_classes, "rmse", 0, 1)
    if library == "xgboost":
        import xgboost as xgb

        booster = xgb.train(native, prepared[0], num_boost_round=int(params["n_estimators"]))
        model = json.loads(booster.save_raw("json"))
        leaves, _, _ = xgb_adapter.read_leaves(model)
        start = time.process_time()
        assert xgboost_skip_reason(native) is None
        leaf_index = booster.predict(prepared[0], pred_leaf=True)
        xgb_adapter.mechanism_metrics(leaves, leaf_index, fold, native, model["learner"])
        return time.process_time() - start
    import lightgbm as lgb

    booster = lgb.train(native, prepared[0], num_boost_round=int(params["n_estimators"]))
    leaves, _, _ = lgbm_adapter.read_leaves(booster.model_to_string(), 1)
    start = time.process_time()
    assert lightgbm_skip_reason(native, False) is None
    leaf_index = booster.predict(fold.X_train, pred_leaf=True, num_threads=1)
    lgbm_adapter.mechanism_metrics(leaves, leaf_index, fold, native, prepared[2])
    return time.process_time() - start


def train_seconds(library: str, fold: FoldData, params: dict) -> float:
    adapter = ADAPTERS[library]
    prepared = adapter.prepare(fold, params)
    start = time.process_time()
    adapter.train(prepared, fold, params, "rmse", seed=0, threads=1)
    return time.process_time() - start


def print_metrics(fold: FoldData) -> None:
    """The four metrics of one training per library and grid point, as a Markdown table."""
    print("| library | reg_alpha | reg_lambda | zeroed | L1 share | L2 share | max error |\n|---|---|---|---|---|---|---|")
    for library, model in MODELS.items():
        for alpha, lam in [(0, 0), (0, 10), (1, 0), (10, 1), (10, 10), (100, 1), (100, 100)]:
            params = resolve_params(library, {**model, "reg_alpha": float(alpha), "reg_lambda": float(lam)})
            adapter = ADAPTERS[library]
            stats = adapter.train(adapter.prepare(fold, params), fold, params, "rmse", seed=0, threads=1).stats
            print(f"| {library} | {alpha} | {lam} | {stats['leaf_l1_zeroed_fraction']:.3f} | "
                  f"{stats['leaf_l1_shrinkage_share']:.3f} | {stats['leaf_l2_shrinkage_share']:.3f} | "
                  f"{stats['leaf_closed_form_max_abs_error']:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="synthetic rows x 50 features (default: diabetes)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--metrics", action="store_true", help="print the metrics, not their cost")
    args = parser.parse_args()
    fold = make_fold(args.rows)
    if args.metrics:
        print_metrics(fold)
        return
    print(f"{len(fold.y_train)} training rows, 200 rounds, one thread; CPU ms, medians of {args.repeat}")
    for library, model in MODELS.items():
        for alpha, lam in GRID:
            params = resolve_params(library, {**model, "reg_alpha": alpha, "reg_lambda": lam})
            mechanism = statistics.median(mechanism_seconds(library, fold, params) for _ in range(args.repeat))
            whole = statistics.median(train_seconds(library, fold, params) for _ in range(args.repeat))
            print(f"{library:9s} alpha={alpha:<5g} lambda={lam:<4g} train() {whole * 1e3:7.1f} ms, "
                  f"mechanism {mechanism * 1e3:6.1f} ms ({mechanism / whole:.1%})")


if __name__ == "__main__":
    main()
