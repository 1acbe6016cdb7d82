"""A whole study on the real libraries and a real (temporary) MLflow store: the MLflow contract."""

from __future__ import annotations

import gc
import io

import pandas as pd
import pytest
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg import load_spec, run_study
from gbreg.catalogue import names, score_columns
from gbreg.cli import app

# a booster's per-split metrics besides the distribution fits and the mechanism checks (tests/test_catalogue.py
# pins the names themselves)
CONTRACT_METRICS = (*score_columns("rmse"), *names("tree", "support", "timing", on="booster"))


@pytest.fixture
def finished_study(tracking, tmp_path):
    spec = load_spec(write_spec(tmp_path, small_spec()))
    outcome = run_study(spec, jobs=1, verbosity=-1)
    from mlflow.tracking import MlflowClient

    return spec, outcome, MlflowClient(tracking.tracking_uri)


def _children(client, outcome):
    return client.search_runs([outcome.experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'")


def test_one_parent_and_one_finished_child_per_trial(finished_study):
    spec, outcome, client = finished_study
    children = _children(client, outcome)
    assert outcome.n_trials == 12 and len(children) == 12
    assert {r.info.status for r in children} == {"FINISHED"}
    assert len({r.data.tags["gbreg.trial_key"] for r in children}) == 12
    parent = client.get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name.startswith("small · ")
    assert parent.data.tags["gbreg.kind"] == "study"
    assert len(parent.data.tags["gbreg.data_sha256"]) == 64
    assert parent.inputs.dataset_inputs[0].dataset.name == "diabetes"
    names = sorted(r.info.run_name for r in children)
    assert "xgboost α=100 λ=10" in names and "lightgbm α=0 λ=0" in names
    assert gc.isenabled() and gc.get_freeze_count() == 0  # the study's collector pause is undone


def test_children_record_the_contract(finished_study):
    spec, outcome, client = finished_study
    for run in _children(client, outcome):
        metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
        assert set(CONTRACT_METRICS) <= set(metrics), run.info.run_name
        assert metrics["gap_rmse"] == pytest.approx(metrics["test_rmse"] - metrics["train_rmse"])
        assert metrics["n_trees"] == 20
        assert params["library"] in ("xgboost", "lightgbm") and params["seed"] == "0"
        assert float(params["learning_rate"]) == 0.3 and params["data.name"] == "diabetes"
        assert tags["gbreg.kind"] == "booster" and tags["gbreg.study"] == "small"
        assert "gbreg.version.xgboost" in tags and "gbreg.version.lightgbm" in tags
        history = client.get_metric_history(run.info.run_id, "curve_test_rmse")
        assert [m.step for m in history] == list(range(1, 21))
        assert history[-1].value == pytest.approx(metrics["test_rmse"], rel=1e-5)


def test_leaves_artifact_matches_the_logged_statistics(finished_study):
    spec, outcome, client = finished_study
    run = next(r for r in _children(client, outcome) if r.info.run_name == "xgboost α=100 λ=0")
    leaves = pd.read_parquet(client.download_artifacts(run.info.run_id, "leaves.parquet"))
    assert list(leaves.columns) == ["tree", "klass", "leaf", "value", "cover", "depth", "repeat", "fold"]
    assert len(leaves) == run.data.metrics["n_leaves"]
    assert (leaves["value"] == 0).mean() == pytest.approx(run.data.metrics["zero_leaf_fraction"])
    assert leaves["value"].abs().mean() == pytest.approx(run.data.metrics["leaf_abs_mean"])
    # a per-trial figure only with mlflow.trial_figures: true (tests/test_sql_records.py has them)
    assert "leaf_histogram.png" not in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_results_csv_and_penalty_effects(finished_study):
    spec, outcome, client = finished_study
    results = pd.read_csv(client.download_artifacts(outcome.parent_run_id, "results.csv"))
    assert len(results) == 12
    xgb = results[(results["library"] == "xgboost") & (results["reg_lambda"] == 0)].sort_values("reg_alpha")
    assert xgb["zero_leaf_fraction"].iloc[0] == 0.0
    assert xgb["zero_leaf_fraction"].is_monotonic_increasing and xgb["zero_leaf_fraction"].iloc[-1] > 0
    for library in ("xgboost", "lightgbm"):
        rows = results[(results["library"] == library) & (results["reg_alpha"] == 0)].sort_values("reg_lambda")
        assert rows["leaf_abs_mean"].iloc[1] < rows["leaf_abs_mean"].iloc[0]


def test_rerun_of_a_finished_study_trains_nothing(finished_study, tmp_path):
    spec, outcome, client = finished_study
    again = run_study(spec, jobs=1, verbosity=-1)
    assert again.n_done_before == 12 and again.n_ran == 0
    assert len(client.search_runs([outcome.experiment_id], filter_string="tags.`gbreg.kind` = 'booster'")) == 12


def test_cli_run_results_validate_and_dry_run(tracking, tmp_path):
    path = write_spec(tmp_path, small_spec(sweep={"reg_alpha": [0, 1]}))
    runner = CliRunner()
    dry = runner.invoke(app, ["run", str(path), "--dry-run", "--set", "sweep.reg_alpha=[0, 1, 10]"])
    assert dry.exit_code == 0 and "6 trials" in dry.output
    assert not (tmp_path / "mlflow.db").exists()
    valid = runner.invoke(app, ["validate", str(path)])
    assert valid.exit_code == 0 and "task regression, metric rmse" in valid.output and "4 trials" in valid.output
    ran = runner.invoke(app, ["run", str(path), "-q", "-j", "1", "--set", "data.name=breast_cancer",
                              "--set", "evaluation.metric=auc"])
    assert ran.exit_code == 0, ran.output
    table = runner.invoke(app, ["results", "small", "--format", "csv"])
    assert table.exit_code == 0
    frame = pd.read_csv(io.StringIO(table.stdout))
    assert len(frame) == 4 and (frame["test_auc"] > 0.9).all() and (frame["task"] == "binary").all()


def test_kfold_with_repeats_logs_means_with_std_companions(tracking, tmp_path):
    spec = load_spec(write_spec(tmp_path, small_spec(
        repeats=2, evaluation={"split": "kfold", "folds": 3, "metric": "mae"},
        models={"lightgbm": {"n_estimators": 10}}, sweep={"reg_lambda": [0, 100]})))
    outcome = run_study(spec, jobs=1, verbosity=-1)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking.tracking_uri)
    run = _children(client, outcome)[0]
    folds = pd.read_csv(client.download_artifacts(run.info.run_id, "folds.csv"))
    assert len(folds) == 6 and set(folds["repeat"]) == {0, 1}
    assert run.data.metrics["test_mae"] == pytest.approx(folds["test_mae"].mean())
    assert run.data.metrics["test_mae_std"] == pytest.approx(folds["test_mae"].std(ddof=0))
