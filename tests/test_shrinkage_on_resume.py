"""The shrinkage metrics (each trial's |leaf| and |coef| statistics against its model's unregularized trial)
are computed after the sweep. A study resumed with new grid points must give the new trials theirs, log
each value once, and results.csv must carry them as the child runs do."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import small_spec, write_spec

from gbreg.run.study import run_study
from gbreg.spec.validation import load_spec
from gbreg.tracking.store import open_store

pytestmark = pytest.mark.slow

SHRINKAGE = ("leaf_shrinkage", "leaf_shrinkage_q50", "leaf_shrinkage_q90", "coef_shrinkage")


def _spec(reg_lambda: list) -> dict:
    return small_spec(name="resumed_shrinkage", models={"xgboost": {"n_estimators": 10, "max_depth": 2}},
                      sweep={"reg_alpha": [0, 5], "reg_lambda": reg_lambda}, counterparts=["ols", "ridge"])


def _trial_runs(client, results: pd.DataFrame) -> dict[str, object]:
    """The study's trial runs: this run's and the earlier run's it resumed from."""
    return {name: client.get_run(run_id) for name, run_id in zip(results["run_name"], results["run_id"])}


def test_resumed_trials_get_their_shrinkage_once_and_results_csv_has_it(tracking, tmp_path):
    client = open_store(tracking)
    first = run_study(load_spec(write_spec(tmp_path, _spec([0, 10]))), jobs=1, verbosity=-1)
    second = run_study(load_spec(write_spec(tmp_path, _spec([0, 10, 100]))), jobs=1, verbosity=-1)
    assert (second.n_done_before, second.n_ran) == (first.n_ran, 3)  # new: xgboost at 2 reg_alpha, ridge

    children = _trial_runs(client, second.results)
    assert len(children) == first.n_ran + second.n_ran
    results = second.results.set_index("run_name")
    leaf_mean = {name: run.data.metrics["leaf_abs_mean"] for name, run in children.items()
                 if "leaf_abs_mean" in run.data.metrics}
    reference = "xgboost α=0 λ=0"
    for name, run in children.items():
        if name in leaf_mean:  # every booster trial, old and new: its mean |leaf| over the reference's
            expected = leaf_mean[name] / leaf_mean[reference]
            assert run.data.metrics["leaf_shrinkage"] == pytest.approx(expected, rel=1e-9), name
            assert results.loc[name, "leaf_shrinkage"] == pytest.approx(expected, rel=1e-9), name
            assert len(client.get_metric_history(run.info.run_id, "leaf_shrinkage")) == 1, name
    ridge_new = [run for name, run in children.items() if name.startswith("ridge") and "λ=100" in name]
    assert ridge_new and all("coef_shrinkage" in run.data.metrics for run in ridge_new)

    path = client.download_artifacts(second.parent_run_id, "results.csv", str(tmp_path))
    logged = pd.read_csv(path).set_index("run_name")
    for column in SHRINKAGE:
        assert column in logged.columns, column
        assert logged[column].notna().any(), column
    assert logged.loc[results.index, "leaf_shrinkage"].to_numpy() == pytest.approx(
        results["leaf_shrinkage"].to_numpy(), nan_ok=True)
