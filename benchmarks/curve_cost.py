"""What do per-round learning curves cost a training? (Why the Optuna way of sweep_overhead.py can match
the floor: it evaluates no curves, and the floor and gbreg must.)

On the reference study's data (``sweep_overhead.make_data``) and one grid point, each library trains
``--repeat`` times, one thread, alternating between no evaluation and the train + test evaluation every
round that gbreg records (and the floor runs), and prints the CPU seconds of each (medians) and the
share of a training the curves cost. CPU time (``time.process_time``) of this single-threaded process
is used, since wall time on this machine moves with its neighbours.

Usage::

    python benchmarks/curve_cost.py               # full size (20,000 x 50, 200 rounds)
    python benchmarks/curve_cost.py --quick --repeat 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import sweep_overhead as reference


def _cpu_seconds(train) -> float:
    start = time.process_time()
    train()
    return time.process_time() - start


def measure(study: reference.Study, repeat: int, alpha: float, lam: float) -> dict[str, dict[str, float]]:
    import lightgbm as lgb
    import xgboost as xgb

    matrices = reference.native_matrices(study)
    dtrain, dtest = matrices["xgb"]
    ltrain, ltest = matrices["lgb"]
    xgb_params = reference.xgb_params(study, alpha, lam)
    lgb_params = reference.lgb_params(study, alpha, lam)
    ways = {
        "xgboost": {
            "no curves": lambda: xgb.train(xgb_params, dtrain, study.rounds),
            "curves": lambda: xgb.train(xgb_params, dtrain, study.rounds, evals=[(dtrain, "train"), (dtest, "test")],
                                        evals_result={}, verbose_eval=False),
        },
        "lightgbm": {
            "no curves": lambda: lgb.train({**lgb_params, "metric": "None"}, ltrain, study.rounds),
            "curves": lambda: lgb.train(lgb_params, ltrain, study.rounds, valid_sets=[ltrain, ltest],
                                        valid_names=["train", "test"], callbacks=[lgb.record_evaluation({})]),
        },
    }
    figures = {}
    for library, trainings in ways.items():
        trainings["curves"]()  # warm: first-call allocations are not the curves' cost
        seconds: dict[str, list[float]] = {name: [] for name in trainings}
        for _ in range(repeat):
            for name, train in trainings.items():
                seconds[name].append(_cpu_seconds(train))
        figures[library] = {name: statistics.median(values) for name, values in seconds.items()}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI smoke size of sweep_overhead.py")
    parser.add_argument("--repeat", type=int, default=3, help="trainings per way (medians are printed)")
    parser.add_argument("--alpha", type=float, default=1.0, help="reg_alpha of the grid point")
    parser.add_argument("--lambda", dest="lam", type=float, default=10.0, help="reg_lambda of the grid point")
    args = parser.parse_args(argv)
    study = reference.study_for(args.quick)
    figures = measure(study, max(1, args.repeat), args.alpha, args.lam)
    print(f"curve_cost: {study.n_samples} rows x {study.n_features} features, {study.rounds} rounds, "
          f"reg_alpha={args.alpha:g} reg_lambda={args.lam:g}, 1 thread, median CPU s of {args.repeat}")
    print(f"{'library':10s} {'no curves':>10s} {'curves':>10s} {'curves cost':>12s}")
    for library, seconds in figures.items():
        share = seconds["curves"] / seconds["no curves"] - 1
        print(f"{library:10s} {seconds['no curves']:10.3f} {seconds['curves']:10.3f} {share:11.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
