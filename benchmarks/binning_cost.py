"""What does binning the features again at every grid point cost CatBoost and HistGradientBoosting?

gbreg builds each library's training data once per split and reuses it across the grid. For CatBoost
that is a raw ``catboost.Pool``, which ``fit`` quantizes (borders, then bins) at every call; for
HistGradientBoosting there is nothing to reuse: ``fit`` bins the features itself (``_bin_data``). On one
data set (75% of California housing by default: 15,480 rows, 8 numeric columns, one categorical, missing
values), a ``--points``-point reg_lambda grid, one thread, library defaults (100 rounds, CatBoost depth 6,
HistGradientBoosting 31 leaves), this prints per fit:

* CatBoost: ``fit`` on the raw Pool as gbreg passes it, ``fit`` on a Pool quantized once beforehand
  (``Pool.quantize``, same ``border_count``), and ``Pool.quantize`` alone: the difference is the re-binning;
* HistGradientBoosting: the whole ``fit`` and the time inside it spent in ``_bin_data`` (binning) and
  ``_preprocess_X`` (the categorical encoder).

CPU time (``time.process_time``), medians over the grid, after one warm-up fit. Usage::

    python benchmarks/binning_cost.py                      # California housing (../shared/datasets/)
    python benchmarks/binning_cost.py --rows 20000          # make_regression rows x 50 instead
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

CALIFORNIA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "california_housing.csv"


def load(rows: int | None) -> tuple[pd.DataFrame, np.ndarray, str]:
    if rows is None:
        frame = pd.read_csv(CALIFORNIA)
        y = frame.pop("median_house_value").to_numpy(dtype="float64")
        frame["ocean_proximity"] = frame["ocean_proximity"].astype("category")
        name = f"California housing, {len(y)} rows"
    else:
        from sklearn.datasets import make_regression

        X, y = make_regression(n_samples=rows, n_features=50, n_informative=10, noise=10.0, random_state=0)
        frame, name = pd.DataFrame(X, columns=[f"x{i}" for i in range(50)]), f"make_regression {rows} x 50"
    cut = int(0.75 * len(y))
    return frame.iloc[:cut].reset_index(drop=True), y[:cut], name


def cpu(call) -> float:
    start = time.process_time()
    call()
    return time.process_time() - start


def catboost_costs(X: pd.DataFrame, y: np.ndarray, grid: list[float]) -> dict[str, float]:
    from catboost import CatBoost, Pool

    from gbreg.models.boosters.catboost_adapter import _as_catboost_frame, categorical_columns

    categorical = categorical_columns(X)
    frame = _as_catboost_frame(X, categorical)

    def raw_pool():
        return Pool(frame, y, cat_features=categorical or None, thread_count=1)

    base = {"loss_function": "RMSE", "iterations": 100, "learning_rate": 0.1, "thread_count": 1, "random_seed": 0,
            "boosting_type": "Plain", "allow_writing_files": False, "logging_level": "Silent"}
    raw = raw_pool()
    quantized = raw_pool()
    quantize_seconds = cpu(lambda: quantized.quantize(border_count=254))
    fit = {"raw": [], "quantized": []}
    for lam in [grid[0], *grid]:  # the first fit warms up
        for kind, pool in (("raw", raw), ("quantized", quantized)):
            fit[kind].append(cpu(lambda pool=pool: CatBoost({**base, "l2_leaf_reg": lam}).fit(pool)))
    raw_fit, quantized_fit = statistics.median(fit["raw"][1:]), statistics.median(fit["quantized"][1:])
    return {"fit on the raw Pool": raw_fit, "fit on a quantized Pool": quantized_fit,
            "re-binning per fit": raw_fit - quantized_fit, "Pool.quantize alone": quantize_seconds}


def sklearn_hgb_costs(X: pd.DataFrame, y: np.ndarray, grid: list[float]) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    spent = {"_bin_data": 0.0, "_preprocess_X": 0.0}

    def timed(name: str):
        method = getattr(HistGradientBoostingRegressor, name)

        def wrapper(self, *args, **kwargs):
            start = time.process_time()
            try:
                return method(self, *args, **kwargs)
            finally:
                spent[name] += time.process_time() - start
        return wrapper

    Timed = type("Timed", (HistGradientBoostingRegressor,), {name: timed(name) for name in spent})

    rows = {"fit": [], "_bin_data": [], "_preprocess_X": []}
    with threadpool_limits(limits=1):
        for lam in [grid[0], *grid]:
            spent.update(_bin_data=0.0, _preprocess_X=0.0)
            model = Timed(max_iter=100, l2_regularization=lam, early_stopping=False, random_state=0,
                          categorical_features="from_dtype")
            rows["fit"].append(cpu(lambda model=model: model.fit(X, y)))
            rows["_bin_data"].append(spent["_bin_data"])
            rows["_preprocess_X"].append(spent["_preprocess_X"])
    return {f"{name}{'' if name == 'fit' else ' (inside fit)'}": statistics.median(values[1:])
            for name, values in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="make_regression rows x 50 instead of California")
    parser.add_argument("--points", type=int, default=20, help="grid points (reg_lambda values)")
    args = parser.parse_args()
    X, y, name = load(args.rows)
    grid = [0.0, *np.geomspace(0.01, 100.0, args.points - 1).tolist()]
    print(f"{name}: {len(y)} training rows, {args.points} grid points, 1 thread, CPU medians per fit")
    for library, costs in (("catboost", catboost_costs(X, y, grid)), ("sklearn_hgb", sklearn_hgb_costs(X, y, grid))):
        whole = costs.get("fit on the raw Pool", costs.get("fit"))
        for what, seconds in costs.items():
            print(f"  {library:12s} {what:28s} {seconds * 1000:8.1f} ms  ({seconds / whole:6.1%} of the fit)")


if __name__ == "__main__":
    main()
