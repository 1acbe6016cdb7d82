"""``gbreg reproduce``: what a parent run records, an exact rerun, and what happens when things changed.

Training is deterministic (seeds, LightGBM's deterministic mode, fixed thread counts), so a rerun with
the same library versions and thread settings matches the original bit for bit: ``--rtol`` 0.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, small_spec, write_spec
from typer.testing import CliRunner

from gbreg.cli import app


@pytest.fixture(autouse=True)
def _no_download_bars(monkeypatch):
    """As ``gbreg``'s entry point does: MLflow's artifact progress bars are not the CLI's output."""
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _client(tracking):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking.tracking_uri)


def _parents(client) -> list:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, "tags.`gbreg.kind` = 'study'", order_by=["attributes.start_time ASC"])


def _children(client, parent) -> dict[str, dict[str, float]]:
    runs = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return {run.data.tags["gbreg.trial_key"]: run.data.metrics for run in runs}


def _run(spec_path: Path, *args: str):
    result = CliRunner().invoke(app, ["run", str(spec_path), "-q", *args])
    assert result.exit_code == 0, result.output
    return result


def _csv_study(tmp_path: Path) -> Path:
    """A study on a CSV file, spec in a sub-folder: the data path is relative to the spec's folder."""
    (tmp_path / "data").mkdir()
    (tmp_path / "studies").mkdir()
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=X[:, 0] * 2 + np.sin(X[:, 1]) + rng.normal(size=300))
    frame.to_csv(tmp_path / "data" / "points.csv", index=False)
    spec = small_spec(name="csv", data={"source": "file", "path": "../data/points.csv", "target": "y"},
                      sweep={"reg_alpha": [0, 10]})
    del spec["evaluation"]["metric"]  # task and metric left to inference: the rerun must keep the trial keys
    return write_spec(tmp_path / "studies", spec)


def test_parent_run_records_what_is_needed_to_rerun(tracking, tmp_path):
    spec_path = _csv_study(tmp_path)
    _run(spec_path, "-j", "1")
    client = _client(tracking)
    (parent,) = _parents(client)
    tags, params = parent.data.tags, parent.data.params
    from gbreg.run.study import prepare_study
    from gbreg.spec.validation import load_spec

    prepared = prepare_study(load_spec(spec_path), check_libraries=False)
    assert tags["gbreg.data_sha256"] == prepared.data_sha and len(prepared.data_sha) == 64
    for package in ("python", "gbreg", "xgboost", "lightgbm", "scikit-learn", "mlflow", "numpy", "pandas"):
        assert tags[f"gbreg.version.{package}"], package
    import xgboost

    assert tags["gbreg.version.xgboost"] == xgboost.__version__
    assert tags["gbreg.platform"].startswith("Linux")
    if (REPO / ".git").exists():  # run from a checkout: the commit, "-dirty" with uncommitted changes
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        assert tags["mlflow.source.git.commit"].removesuffix("-dirty") == head
    assert tags["gbreg.base_dir"] == str((tmp_path / "studies").resolve())
    assert params["jobs"] == "1" and int(params["n_threads"]) >= 1
    resolved = yaml.safe_load(Path(client.download_artifacts(parent.info.run_id, "spec.yaml", str(tmp_path))).read_text())
    assert resolved["data_sha256"] == prepared.data_sha
    assert resolved["task"] == "regression" and resolved["evaluation"]["metric"] == "rmse"
    assert resolved["models"]["lightgbm"]["reg_lambda"] == 0.0  # library defaults filled in
    given = yaml.safe_load(Path(client.download_artifacts(parent.info.run_id, "spec_input.yaml",
                                                          str(tmp_path))).read_text())
    assert "task" not in given and "metric" not in given["evaluation"]


def test_reproduce_matches_exactly_and_is_tagged(tracking, tmp_path):
    spec_path = _csv_study(tmp_path)
    _run(spec_path, "-j", "1")
    spec_path.write_text(spec_path.read_text().replace("reg_alpha:", "reg_lambda:"))  # the file on disk changes
    client = _client(tracking)
    (original,) = _parents(client)
    result = CliRunner().invoke(app, ["reproduce", original.info.run_id])
    assert result.exit_code == 0, result.output
    assert "same Python and library versions as the original run" in result.stderr
    assert "all 4 trials match exactly" in result.stdout
    _, rerun = _parents(client)
    assert rerun.data.tags["gbreg.reproduces"] == original.info.run_id
    assert rerun.data.params["n_threads"] == original.data.params["n_threads"]
    before, after = _children(client, original), _children(client, rerun)
    assert set(before) == set(after) and len(before) == 4
    for key, metrics in before.items():
        compared = {k: v for k, v in metrics.items() if not k.endswith(("seconds", "seconds_std"))}
        assert compared == {k: after[key][k] for k in compared}, key
        assert {"test_rmse", "leaf_l2", "n_leaves"} <= set(compared)


def test_quiet_reproduce_prints_only_the_comparison(tracking, tmp_path):
    spec_path = _csv_study(tmp_path)
    _run(spec_path, "-j", "1")
    (original,) = _parents(_client(tracking))
    both = CliRunner().invoke(app, ["reproduce", original.info.run_id, "-q", "-v"])
    assert both.exit_code == 2 and "contradict each other" in both.stderr
    quiet = CliRunner().invoke(app, ["reproduce", original.info.run_id, "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert "all 4 trials match exactly" in quiet.stdout
    assert "reproducing run" not in quiet.stderr and "trials ·" not in quiet.stderr
    assert "versions" not in quiet.stderr


@pytest.mark.slow
def test_parallel_run_reproduced_in_parallel_matches_exactly(tracking, tmp_path):
    spec_path = write_spec(tmp_path, small_spec(name="parallel", sweep={"reg_alpha": [0, 1], "reg_lambda": [0, 10]}))
    _run(spec_path, "-j", "2")
    client = _client(tracking)
    (original,) = _parents(client)
    assert original.data.params["jobs"] == "2"
    result = CliRunner().invoke(app, ["reproduce", original.info.run_id, "-j", "2"])
    assert result.exit_code == 0, result.output
    assert "all 8 trials match exactly" in result.stdout


def test_changed_data_stops_before_training_unless_allowed(tracking, tmp_path):
    spec_path = _csv_study(tmp_path)
    _run(spec_path, "-j", "1")
    client = _client(tracking)
    (original,) = _parents(client)
    data = tmp_path / "data" / "points.csv"
    frame = pd.read_csv(data)
    frame.loc[0, "a"] += 0.5
    frame.to_csv(data, index=False)

    refused = CliRunner().invoke(app, ["reproduce", original.info.run_id])
    assert refused.exit_code == 2
    message = refused.stderr.strip()
    assert message.startswith(f"error: {tmp_path / 'studies' / '../data/points.csv'}: the data changed since run "
                              f"{original.info.run_id}: its sha256 fingerprint is now ")
    assert message.endswith("; restore the data, or pass --allow-data-change to rerun and compare anyway")
    assert len(_parents(client)) == 1  # nothing ran

    allowed = CliRunner().invoke(app, ["reproduce", original.info.run_id, "--allow-data-change"])
    assert "warning: " in allowed.stderr and "comparing anyway (--allow-data-change)" in allowed.stderr
    assert allowed.exit_code == 1, allowed.output
    assert "metrics that differ" in allowed.stdout and "test_rmse" in allowed.stdout
    assert "trials differ beyond rtol=0" in allowed.stdout
    # a tolerance wide enough for the small change accepts every metric but the exact-count ones
    loose = CliRunner().invoke(app, ["reproduce", original.info.run_id, "--allow-data-change", "--rtol", "1e9"])
    assert loose.exit_code == 0, loose.output
    assert "all 4 trials match within rtol=1e+09" in loose.stdout


def test_reports_which_versions_differ(tracking, tmp_path):
    spec_path = write_spec(tmp_path, small_spec(name="versions", sweep={"reg_alpha": [0]}))
    _run(spec_path, "-j", "1")
    client = _client(tracking)
    (original,) = _parents(client)
    client.set_tag(original.info.run_id, "gbreg.version.xgboost", "1.7.6")  # as if run with an older XGBoost
    import xgboost

    result = CliRunner().invoke(app, ["reproduce", original.info.run_id])
    assert f"versions differ from the original run: xgboost 1.7.6 → {xgboost.__version__}" in result.stderr
    assert result.exit_code == 0, result.output  # same code really ran: the metrics still match


def test_compare_trials_applies_rtol_per_metric():
    from gbreg.run.reproduce import TrialRecord, compare_trials

    before = {"k1": TrialRecord("a", "xgboost α=0", "FINISHED", {"test_rmse": 50.0, "fit_seconds": 1.0}),
              "k2": TrialRecord("b", "xgboost α=1", "FINISHED", {"test_rmse": 40.0, "n_leaves": float("nan")})}
    after = {"k1": TrialRecord("c", "xgboost α=0", "FINISHED", {"test_rmse": 50.0001, "fit_seconds": 9.0}),
             "k2": TrialRecord("d", "xgboost α=1", "FINISHED", {"test_rmse": 40.0, "n_leaves": float("nan")})}
    exact = compare_trials(before, after, rtol=0)
    assert not exact.matches and exact.n_compared == 2
    (difference,) = exact.differences  # fit_seconds is never compared; NaN equals NaN
    assert difference.metric == "test_rmse" and difference.abs_diff == pytest.approx(1e-4)
    assert difference.rel_diff == pytest.approx(2e-6)
    assert compare_trials(before, after, rtol=3e-6).matches
    assert not compare_trials(before, after, rtol=1e-6).matches
    missing = compare_trials(before, {"k1": after["k1"]}, rtol=1)
    assert missing.only_original == [("k2", "xgboost α=1")] and not missing.matches


def test_a_metric_no_original_trial_has_is_listed_as_new_not_as_a_difference():
    from gbreg.run.reproduce import TrialRecord, compare_trials

    before = {"k1": TrialRecord("a", "catboost λ=0", "FINISHED", {"test_rmse": 50.0, "n_leaves": 8.0}),
              "k2": TrialRecord("b", "catboost λ=1", "FINISHED", {"test_rmse": 40.0})}
    after = {"k1": TrialRecord("c", "catboost λ=0", "FINISHED", {"test_rmse": 50.0, "n_leaves": 8.0,
                                                                 "leaf_shrinkage": 1.0}),
             "k2": TrialRecord("d", "catboost λ=1", "FINISHED", {"test_rmse": 40.0, "n_leaves": 8.0,
                                                                 "leaf_shrinkage": 0.5})}
    comparison = compare_trials(before, after, rtol=0)
    assert comparison.new_metrics == ["leaf_shrinkage"] and comparison.n_metrics == 2
    # n_leaves is recorded on one original trial: missing on the other is a difference, not a new metric
    assert [(d.trial_key, d.metric) for d in comparison.differences] == [("k2", "n_leaves")]
    del after["k2"].metrics["n_leaves"]
    assert compare_trials(before, after, rtol=0).matches


def test_reproduce_unknown_or_child_run_is_a_clear_error(tracking, tmp_path):
    spec_path = write_spec(tmp_path, small_spec(name="ids", sweep={"reg_alpha": [0]}))
    _run(spec_path, "-j", "1")
    client = _client(tracking)
    (parent,) = _parents(client)
    child = next(iter(client.search_runs([parent.info.experiment_id],
                                         f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")))
    unknown = CliRunner().invoke(app, ["reproduce", "0123456789abcdef0123456789abcdef"])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == ("error: no run '0123456789abcdef0123456789abcdef' in the tracking store "
                                      f"{tracking.tracking_uri}; give the id of a study's parent run (printed at "
                                      "the end of `gbreg run`, or see `gbreg results STUDY`)")
    not_parent = CliRunner().invoke(app, ["reproduce", child.info.run_id])
    assert not_parent.exit_code == 2
    assert not_parent.stderr.strip() == (f"error: run {child.info.run_id} is not a gbreg study's parent run; "
                                         f"reproduce its parent run {parent.info.run_id}")


@pytest.mark.parametrize("status", ["KILLED", "FAILED", "RUNNING"])
def test_reproduce_of_a_study_that_did_not_finish_is_refused_before_training(tracking, tmp_path, status):
    spec_path = write_spec(tmp_path, small_spec(name="unfinished", sweep={"reg_alpha": [0]}))
    _run(spec_path, "-j", "1")
    client = _client(tracking)
    (parent,) = _parents(client)
    client.update_run(parent.info.run_id, status=status)  # as Ctrl-C, a crash or a dead process leaves it
    refused = CliRunner().invoke(app, ["reproduce", parent.info.run_id])
    assert refused.exit_code == 2, refused.output
    what = "is still running, or its process died" if status == "RUNNING" else f"ended {status}"
    assert refused.stderr.strip() == (
        f"error: run {parent.info.run_id} ({parent.info.run_name}) {what}: it did not finish, so a rerun has "
        f"nothing whole to compare with; finish it with `gbreg run {spec_path}` (it resumes the trials not "
        "done), then reproduce the run that finishes")
    assert len(_parents(client)) == 1  # no rerun was started
