"""What does writing a trial's records cost the main process, committed one trial at a time or grouped?

A study of short trials opens and closes a run per trial on an embedded SQLite store
(:class:`gbreg.tracking.sql_records.SqlTrialRecords`, through its writer thread). Here trials shaped like
the short benchmark's (20 tags, 27 params, 40 metrics, two 100-round curves) are written to a fresh store
in a temp folder two ways: with a settle after every trial (one commit or two per trial, as a writer
without a wait would do when trials arrive slowly) and queued freely (the writer groups them, as during a
sweep). Prints the process CPU per trial (``time.process_time``: this thread and the writer's) of each.

Usage::

    python benchmarks/store_writer_cost.py
    python benchmarks/store_writer_cost.py --trials 400
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    from gbreg.tracking.sql_records import SqlTrialRecords
    from gbreg.tracking.tracker import _metric_rows, _param_strings

    rng = np.random.default_rng(0)
    tags = {f"tag{i}": f"value{i}" for i in range(20)}
    params = {f"param{i}": str(i) for i in range(27)}
    metrics = {f"metric{i}": float(rng.random()) for i in range(40)}
    curves = {"curve_train_rmse": rng.random(100), "curve_test_rmse": rng.random(100)}

    with tempfile.TemporaryDirectory(prefix="gbreg-writer-") as folder:
        client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
        records = SqlTrialRecords.for_client(client, client.create_experiment("writer_cost"))
        if records is None:
            raise SystemExit("this MLflow's schema is not one SqlTrialRecords writes")

        def trials(n: int, settle_each: bool) -> float:
            start = time.process_time()
            for i in range(n):
                run_id, _ = records.open_run(f"run{i}", tags, params)
                records.close_run(run_id, _metric_rows(metrics, curves), _param_strings({"extra": 1}), "FINISHED")
                if settle_each:
                    records.settle()
            records.settle()
            return (time.process_time() - start) / n

        trials(20, settle_each=True)  # warm: statements prepared, tables' first pages
        each = trials(args.trials, settle_each=True)
        grouped = trials(args.trials, settle_each=False)
        records.stop()
    print(f"store_writer_cost: {args.trials} trials of ~330 rows each, process CPU a trial")
    print(f"  committed trial by trial: {1000 * each:6.2f} ms")
    print(f"  grouped by the writer:    {1000 * grouped:6.2f} ms")


if __name__ == "__main__":
    main()
