"""A running study never reads back what it just logged: the results table, the per-split table, the
curves and leaf values the figures need come from memory, and they equal what the store holds."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import small_spec, write_spec

from gbreg import load_spec, run_study
from gbreg.tracking.readback import runs_frame

SPEC = small_spec(repeats=2, evaluation={"split": "kfold", "folds": 2, "metric": "rmse"},
                  counterparts=["lasso", "ridge"],
                  expect=[{"metric": "zero_leaf_fraction", "trend": "increasing", "along": "reg_alpha"}])


def _forbid_reading_back(monkeypatch):
    """Any read of a run's curves, artifacts or params after it was logged fails the study's step."""
    from mlflow.tracking import MlflowClient

    def refuse(*args, **kwargs):
        raise AssertionError("read back what this study just logged")

    monkeypatch.setattr(MlflowClient, "get_metric_history", refuse)
    monkeypatch.setattr(MlflowClient, "download_artifacts", refuse)
    monkeypatch.setattr("gbreg.run.records.runs_frame", refuse)


def test_a_fresh_study_makes_its_results_plots_and_findings_without_reading_back(tracking, tmp_path, monkeypatch):
    spec = load_spec(write_spec(tmp_path, SPEC))
    _forbid_reading_back(monkeypatch)
    warnings: list[str] = []
    monkeypatch.setattr("gbreg.run.progress.StudyProgress.message", lambda self, text: warnings.append(text))
    outcome = run_study(spec, jobs=1, verbosity=-1)
    monkeypatch.undo()
    assert not [w for w in warnings if w.startswith("warning")], warnings  # every post-sweep step succeeded
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking.tracking_uri)
    artifacts = {a.path for a in client.list_artifacts(outcome.parent_run_id)}
    plots = {a.path for a in client.list_artifacts(outcome.parent_run_id, "plots")}
    assert {"results.csv", "findings.md", "comparison.csv"} <= artifacts
    assert {"plots/learning_curves.png", "plots/leaf_histograms.png"} <= plots
    assert outcome.n_trials == 15  # 12 booster trials, 3 counterparts
    assert outcome.folds is not None and len(outcome.folds) == 4 * 15  # 2 repeats x 2 folds each


def test_the_results_in_memory_equal_the_runs_in_the_store(tracking, tmp_path):
    outcome = run_study(load_spec(write_spec(tmp_path, SPEC)), jobs=1, verbosity=-1)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking.tracking_uri)
    # the post-sweep columns without a value (no unpenalized reference) are NaN in memory: the store
    # holds no NaN, so it has no such column
    held = outcome.results.dropna(axis="columns", how="all").set_index("run_id").sort_index()
    stored = runs_frame(client, list(held.index)).set_index("run_id").sort_index()
    assert len(held) == outcome.n_trials == 15  # 12 booster trials, 3 counterparts
    assert set(held.columns) == set(stored.columns)
    for column in held.columns:
        pd.testing.assert_series_equal(held[column], stored[column], check_dtype=False, check_names=False,
                                       obj=column)


def test_a_resumed_study_reads_back_only_the_trials_an_earlier_run_finished(tracking, tmp_path, monkeypatch):
    """The trials done before the interruption are read from the store; the rest come from memory."""
    path = write_spec(tmp_path, SPEC)
    first = run_study(load_spec(path, ["sweep.reg_alpha=[0, 1]"]), jobs=1, verbosity=-1)
    assert first.n_ran == first.n_trials == 10  # 8 booster trials, 2 counterparts
    read: list[list[str]] = []
    real = runs_frame

    def counting(client, run_ids):
        read.append(list(run_ids))
        return real(client, run_ids)

    monkeypatch.setattr("gbreg.run.records.runs_frame", counting)
    # the same study with one more reg_alpha value: a different spec hash, so a new parent, but the
    # trials it shares keep their keys and are not rerun
    second = run_study(load_spec(path), jobs=1, verbosity=-1)
    assert second.n_done_before == 10 and second.n_ran == 5
    assert len(read) == 1 and sorted(read[0]) == sorted(first.results["run_id"])
    assert len(second.results) == 15 and set(first.results["run_id"]) <= set(second.results["run_id"])


@pytest.mark.parametrize("budget", [0, 10**9])
def test_leaf_values_beyond_the_budget_are_left_to_the_store(budget):
    import numpy as np

    from gbreg.models.trial import TrialResult
    from gbreg.plan import Trial
    from gbreg.run.records import SweepRecords

    records = SweepRecords(leaf_value_budget=budget)
    leaves = pd.DataFrame({"value": np.arange(5.0)})
    trial = Trial("k", "booster", "xgboost", "xgboost", {"reg_alpha": 0}, {"reg_alpha": 0})
    records.add(trial, "run", {"reg_alpha": 0}, TrialResult("k", metrics={"test_rmse": 1.0}, leaves=leaves,
                                                            curves={"curve_test_rmse": np.array([3.0, np.nan])}))
    held = records.leaf_values("run")
    assert (held is None) if budget == 0 else list(held) == [0, 1, 2, 3, 4]
    assert records.results_frame([trial]).loc[0, "curve_test_rmse"] == 3.0  # the last finite value, as MLflow


def test_only_trials_that_can_still_be_representative_keep_their_curves_and_leaf_values():
    """The figures' trials are all held, and no more than a few per booster, however large the grid."""
    import numpy as np

    from gbreg.models.trial import TrialResult
    from gbreg.plan import Trial
    from gbreg.report.plots.figure_data import PlotContext
    from gbreg.report.plots.trial_figures import RepresentativeCandidates, representative_points
    from gbreg.run.records import SweepRecords

    grid = [0.0, 0.01, 0.1, 1.0, 10.0, 100.0]
    plan = [Trial(f"{model}-{a}-{b}", "booster", model, model, {"reg_alpha": a, "reg_lambda": b},
                  {"reg_alpha": a, "reg_lambda": b, "n_estimators": 10})
            for model in ("xgboost", "lightgbm") for a in grid for b in grid]
    rng = np.random.default_rng(0)
    records = SweepRecords(candidates=RepresentativeCandidates(plan, "rmse"))
    for i in rng.permutation(len(plan)):  # in any order: the best so far changes many times
        trial = plan[i]
        result = TrialResult(trial.trial_key, metrics={"test_rmse": float(rng.uniform(50, 60))},
                             leaves=pd.DataFrame({"value": rng.normal(size=40)}),
                             curves={"curve_test_rmse": rng.uniform(50, 60, size=10)})
        records.add(trial, f"run-{i}", {"model": trial.model, "kind": trial.kind, **trial.params}, result)
    results = records.results_frame(plan)
    points = representative_points(results, PlotContext("rmse"))
    needed = {point.run_id for model_points in points.values() for point in model_points}
    held = {run_id for run_id in results["run_id"] if records.leaf_values(run_id) is not None}
    assert len(needed) == 8  # no penalty, strongest L1, strongest L2, best: for each booster
    assert needed <= held and len(held) == len(needed)
    assert all(records.curve(run_id, "curve_test_rmse") is not None for run_id in needed)


def test_the_per_split_table_follows_the_plan_whichever_trial_finished_first():
    from gbreg.models.trial import TrialResult
    from gbreg.plan import Trial
    from gbreg.run.records import SweepRecords

    plan = [Trial(f"k{i}", "booster", "xgboost", "xgboost", {"reg_alpha": i}, {"reg_alpha": i}) for i in range(4)]
    records = SweepRecords()
    for trial in reversed(plan):  # the last trial of the plan finished first
        folds = pd.DataFrame({"repeat": [0, 0], "fold": [0, 1], "test_rmse": [1.0, 2.0]})
        records.add(trial, f"run-{trial.trial_key}", trial.params, TrialResult(trial.trial_key, folds=folds))
    assert list(records.folds_frame(plan)["run_id"].drop_duplicates()) == ["run-k0", "run-k1", "run-k2", "run-k3"]
    assert list(records.folds_frame()["run_id"].drop_duplicates()) == ["run-k3", "run-k2", "run-k1", "run-k0"]
