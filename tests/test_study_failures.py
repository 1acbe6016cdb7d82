"""A study that meets a fault ends cleanly: no run left RUNNING, one line for the user, and a parameter
read back from a model never fights with a parameter the user set."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg import StudyFailed, load_spec, run_study
from gbreg.cli import app
from gbreg.models.boosters import ADAPTERS, FoldData
from gbreg.spec.params import accepted_names, resolve_params


def _client(tracking):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking.tracking_uri)


def _all_runs(client, experiment_name: str):
    experiment = client.get_experiment_by_name(experiment_name)
    return client.search_runs([experiment.experiment_id], max_results=1000)


@pytest.mark.parametrize("task_data", [{"source": "sklearn", "name": "diabetes"},
                                       {"source": "sklearn", "name": "breast_cancer"}])
def test_a_base_score_set_in_the_spec_is_logged_as_set_and_the_model_value_beside_it(tracking, tmp_path, task_data):
    spec = small_spec(data=task_data, evaluation={"split": "holdout", "test_size": 0.25},
                      models={"xgboost": {"n_estimators": 5, "base_score": 0.5}}, sweep={"reg_alpha": [0, 1]})
    outcome = run_study(load_spec(write_spec(tmp_path, spec)), jobs=1, verbosity=-1)
    client = _client(tracking)
    children = [r for r in _all_runs(client, "small") if r.data.tags.get("gbreg.kind") == "booster"]
    assert len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    assert client.get_run(outcome.parent_run_id).info.status == "FINISHED"
    for run in children:
        assert run.data.params["base_score"] == "0.5"  # what the user set, as set
        assert float(run.data.params["fitted_base_score"]) == 0.5  # what the model holds


def test_without_a_base_score_in_the_spec_the_model_value_keeps_its_name(tracking, tmp_path):
    spec = small_spec(models={"xgboost": {"n_estimators": 5}}, sweep={"reg_alpha": [0]})
    outcome = run_study(load_spec(write_spec(tmp_path, spec)), jobs=1, verbosity=-1)
    (run,) = [r for r in _all_runs(_client(tracking), "small") if r.info.run_id != outcome.parent_run_id]
    mean_target = float(run.data.params["fitted_base_score"])
    assert 100 < mean_target < 200  # XGBoost 3 starts squared error from the mean target (diabetes: ~152)
    assert float(run.data.params["base_score"].strip("[]")) == pytest.approx(mean_target)


def _tiny_fold(task: str) -> FoldData:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = X[:, 0] + rng.normal(size=80) if task == "regression" else (X[:, 0] > 0).astype(float)
    import pandas as pd

    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    return FoldData(frame, y, frame, y, task, 2 if task == "binary" else 0)


@pytest.mark.parametrize("library", sorted(ADAPTERS))
@pytest.mark.parametrize("task", ["regression", "binary"])
def test_no_value_read_back_from_a_model_can_share_a_name_with_a_parameter_a_spec_sets(library, task):
    """The class of the base_score crash: whatever a spec sets for a library, the names an adapter reads
    back from the model are not among them (except the legacy ``base_score`` and the settings CatBoost
    chose itself, each logged only when the spec left it unset: tests/test_catboost.py)."""
    from gbreg.models.boosters.catboost_adapter import TREE_SHAPING_DEFAULTS

    adapter = ADAPTERS[library]
    fold = _tiny_fold(task)
    metric = "rmse" if task == "regression" else "logloss"
    for user_params in ({"n_estimators": 3}, {"n_estimators": 3, "base_score": 0.5} if library == "xgboost" else {}):
        if not user_params:
            continue
        params = resolve_params(library, user_params)
        result = adapter.train(adapter.prepare(fold, params), fold, params, metric, seed=0, threads=1)
        read_back = set(result.extra_params)
        assert read_back, "the adapter reads nothing back: this test would test nothing"
        settable = accepted_names(library) | set(params)
        unset_only = {"base_score", *(TREE_SHAPING_DEFAULTS if library == "catboost" else ())}
        assert read_back & settable <= (unset_only - set(user_params)), (library, read_back & settable)


def test_an_error_while_logging_ends_the_study_cleanly(tracking, tmp_path, monkeypatch):
    """Any exception while a trial is logged (here the store refusing a batch, injected on the third
    trial) stops the study: the trials in flight and the parent become FAILED with the error, nothing
    stays RUNNING, and the user reads one line that says how to resume."""
    from mlflow.exceptions import MlflowException

    from gbreg.tracking.tracker import StudyTracker

    calls = {"n": 0}
    real_finish = StudyTracker.finish_trial

    def finish_trial(self, run_id, result):
        calls["n"] += 1
        if calls["n"] == 3:
            raise MlflowException("Changing param values is not allowed (injected)")
        return real_finish(self, run_id, result)

    monkeypatch.setattr(StudyTracker, "finish_trial", finish_trial)
    spec_path = write_spec(tmp_path, small_spec())
    with pytest.raises(StudyFailed) as raised:
        run_study(load_spec(spec_path), jobs=1, verbosity=-1)
    message = str(raised.value)
    assert "\n" not in message and "Changing param values is not allowed" in message
    assert f"gbreg run {spec_path}" in message
    runs = _all_runs(_client(tracking), "small")
    statuses = [r.info.status for r in runs]
    assert "RUNNING" not in statuses
    assert statuses.count("FINISHED") == 2  # the two trials logged before the error
    parent = [r for r in runs if r.data.tags.get("gbreg.kind") == "study"][0]
    assert parent.info.status == "FAILED" and "injected" in parent.data.tags["gbreg.error"]
    failed_children = [r for r in runs if r.info.status == "FAILED" and r.data.tags.get("gbreg.kind") != "study"]
    assert failed_children and all("injected" in r.data.tags["gbreg.error"] for r in failed_children)

    monkeypatch.setattr(StudyTracker, "finish_trial", real_finish)  # the cause is gone: the rerun resumes
    outcome = run_study(load_spec(spec_path), jobs=1, verbosity=-1)
    assert outcome.n_done_before == 2 and outcome.n_ran == 10 and not outcome.failures


def test_the_cli_reports_a_study_stopped_by_an_error_in_one_line(tracking, tmp_path, monkeypatch):
    from gbreg.tracking.tracker import StudyTracker

    def broken_store(self, run_id, result):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(StudyTracker, "finish_trial", broken_store)
    spec_path = write_spec(tmp_path, small_spec(sweep={"reg_alpha": [0]}))
    result = CliRunner().invoke(app, ["run", str(spec_path), "-j", "1"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "error: the study stopped: OSError: disk full (injected)" in result.output
    assert "RUNNING" not in [r.info.status for r in _all_runs(_client(tracking), "small")]


def _spawned_workers(psutil) -> list[int]:
    """The pids of this process's spawned workers alive now. A child can exit between the listing and
    the read of its command line (the pool's resource tracker, a replaced worker): skip it."""
    pids = []
    for child in psutil.Process().children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:
            continue
    return pids


@pytest.mark.slow
def test_a_worker_killed_mid_study_is_replaced_and_every_trial_ends_logged(tracking, tmp_path):
    """End to end through ``run_study`` with 2 spawned workers: one is SIGKILLed after the first trials
    are logged. The study completes: one FINISHED child per trial (a trial whose worker died twice
    would be FAILED), no run RUNNING, the parent FINISHED."""
    import psutil

    spec = small_spec(models={"xgboost": {"n_estimators": 400, "max_depth": 3},
                              "lightgbm": {"n_estimators": 400, "num_leaves": 7}},
                      sweep={"reg_alpha": [0, 1, 10, 100], "reg_lambda": [0, 1, 10]})
    client = _client(tracking)
    killed: list[int] = []

    def kill_a_worker_after_two_trials():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            experiment = client.get_experiment_by_name("small")
            finished = [] if experiment is None else client.search_runs(
                [experiment.experiment_id], "attributes.status = 'FINISHED'", max_results=10)
            workers = _spawned_workers(psutil)
            if len(finished) >= 2 and workers:
                try:
                    os.kill(workers[0], signal.SIGKILL)
                except ProcessLookupError:  # it ended between the listing and the kill: pick another
                    continue
                killed.append(workers[0])
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_worker_after_two_trials, daemon=True)
    killer.start()
    outcome = run_study(load_spec(write_spec(tmp_path, spec)), jobs=2, verbosity=-1)
    killer.join(timeout=10)
    assert killed, "no worker was killed: the test tested nothing"
    runs = _all_runs(client, "small")
    children = [r for r in runs if r.info.run_id != outcome.parent_run_id]
    assert "RUNNING" not in {r.info.status for r in runs}
    assert client.get_run(outcome.parent_run_id).info.status == "FINISHED"
    keys = [r.data.tags["gbreg.trial_key"] for r in children if r.info.status == "FINISHED"]
    assert len(keys) == len(set(keys)) == outcome.n_trials == 24


@pytest.mark.parametrize("jobs", [1, 2])
def test_run_study_from_a_thread_completes_and_leaves_the_process_alone(tracking, tmp_path, jobs):
    """A notebook's background task or a service calls ``run_study`` off the main thread: signal handlers
    cannot be set there (it used to raise ValueError after the parent run existed). It completes, and
    the process's signal handlers and collector are as they were."""
    import gc

    spec = load_spec(write_spec(tmp_path, small_spec(sweep={"reg_alpha": [0, 10]})))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    outcome: dict = {}

    def study():
        try:
            outcome["value"] = run_study(spec, jobs=jobs, verbosity=-1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=study)
    thread.start()
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["value"]
    assert result.n_ran == result.n_trials == 4 and not result.failures
    assert _client(tracking).get_run(result.parent_run_id).info.status == "FINISHED"
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_cli_process_control_restores_the_process_as_it_found_it():
    """What `gbreg run` does to its process (signal handlers, the unraisable hook, the collector) is
    undone when the study ends, however it ends."""
    import gc
    import sys

    from gbreg.cli_process import ProcessRunControl

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook
    with pytest.raises(RuntimeError), ProcessRunControl() as control:
        assert not gc.isenabled()  # paused while the study starts
        control.sweep_starts()
        assert gc.isenabled() and gc.get_freeze_count() > 0
        assert signal.getsignal(signal.SIGINT) == control._handle
        raise RuntimeError("the study failed")
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
    assert sys.unraisablehook is hook
    assert gc.isenabled() and gc.get_freeze_count() == 0
