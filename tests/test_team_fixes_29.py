"""What a tester of the team set-up found (report ex29c), each on real processes and stores.

1. A study resumed with other parallelism trains its remaining trials with the thread count its parent
   recorded (the parent's ``n_threads`` cannot change), says so in one line, and reproduces exactly.
2. Runs a study could not mark FAILED when it stopped (the tracking server away) are marked by the next run
   with the error the study stopped on, not as left by a process that died.
3. A Dask cluster that loses its last worker (and the data set with it) is waited for, then the study stops
   with gbreg's one line saying what to do and how to resume, not Dask's bare TimeoutError.
4. The lost scheduler's line says what happened once (not the client's "connecting"), and the resume command
   once; a step after the sweep that fails is named as the user knows it, not by gbreg's function name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg.cli import app
from gbreg.machine import available_cores, threads_per_job


def _load(folder, spec: dict, name: str = "spec.yaml"):
    from gbreg.spec.validation import load_spec

    return load_spec(write_spec(folder, spec, name))


def _client(tracking):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking.tracking_uri)


def _children(client, parent_id: str) -> list:
    run = client.get_run(parent_id)
    return client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'",
                              max_results=1000)


def _interrupt_after_the_fact(client, parent_id: str, n: int) -> None:
    """The parent as a study stopped after all but ``n`` trials leaves it: FAILED, those trials not done."""
    for run in _children(client, parent_id)[:n]:
        client.delete_run(run.info.run_id)
    client.set_terminated(parent_id, "FAILED")


# ---------------------------------------------------------------------- 1. threads of a resumed study


@pytest.mark.slow
@pytest.mark.parametrize("executor, jobs", [("local", 1), ("local", 2), ("dask", 1)],
                         ids=["inline", "local-pool", "dask-local-cluster"])
def test_resumed_study_trains_with_its_parents_thread_count(tracking, tmp_path, capsys, monkeypatch,
                                                            executor, jobs) -> None:
    from gbreg.run.study import run_study

    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    spec = small_spec(sweep={"reg_alpha": [0, 1], "reg_lambda": [0, 10]})  # 8 trials
    if available_cores() < 2:
        pytest.skip("one core: every parallelism gives one thread per trial")
    # what this run's parallelism would not give (and no more than the cores: LightGBM's results with more
    # threads than cores vary from run to run in their last bits)
    would_give = threads_per_job(jobs) if executor == "local" else available_cores()
    first_threads = 2 if would_give == 1 else 1
    first = run_study(_load(tmp_path, spec), jobs=1, threads=first_threads, verbosity=-1)
    client = _client(tracking)
    assert client.get_run(first.parent_run_id).data.params["n_threads"] == str(first_threads)
    _interrupt_after_the_fact(client, first.parent_run_id, 3)
    capsys.readouterr()

    resumed = run_study(_load(tmp_path, spec), jobs=jobs, executor=executor, verbosity=0)

    assert resumed.parent_run_id == first.parent_run_id and resumed.n_ran == 3 and not resumed.failures
    said = capsys.readouterr()
    out = said.out + said.err
    assert f"resuming with {first_threads} thread(s) per trial, as parent run {first.parent_run_id} recorded" in out
    assert out.count("thread(s) per trial") == 1
    finished = [r for r in _children(client, first.parent_run_id) if r.info.status == "FINISHED"]
    assert len(finished) == 8
    # every trial's recorded thread count is the parent's: the one they were trained with
    assert {r.data.params["n_threads"] for r in finished} == {str(first_threads)}

    if executor == "local" and jobs == 1:  # the rerun with the parent's count matches every trial
        result = CliRunner().invoke(app, ["reproduce", first.parent_run_id, "-q"])
        assert result.exit_code == 0, result.output
        assert "all 8 trials match exactly" in result.output


def test_reproduce_says_why_trials_trained_with_another_thread_count_differ() -> None:
    """Records of a study resumed with other parallelism by an earlier gbreg (mixed child n_threads): the
    differences are explained, and only the trials whose count differs are named as such."""
    from gbreg.run.reproduce import compare_trials, threads_explanation
    from gbreg.tracking.readback import TrialRecord

    before = {"k1": TrialRecord("a", "lightgbm α=0", "FINISHED", {"test_rmse": 50.0}, "1"),
              "k2": TrialRecord("b", "lightgbm α=1", "FINISHED", {"test_rmse": 40.0}, "2"),
              "k3": TrialRecord("c", "lightgbm α=2", "FINISHED", {"test_rmse": 30.0}, "2")}
    after = {"k1": TrialRecord("d", "lightgbm α=0", "FINISHED", {"test_rmse": 50.000001}, "2"),
             "k2": TrialRecord("e", "lightgbm α=1", "FINISHED", {"test_rmse": 40.0}, "2"),
             "k3": TrialRecord("f", "lightgbm α=2", "FINISHED", {"test_rmse": 30.1}, "2")}
    comparison = compare_trials(before, after, rtol=0)
    text = threads_explanation(comparison, before, after)
    assert text.startswith("1 of the 2 differing trials were trained by the original with another thread count")
    assert "1 trained with 1 thread(s), rerun with 2" in text
    same = {key: TrialRecord(r.run_id, r.run_name, r.status, r.metrics, "2") for key, r in before.items()}
    assert threads_explanation(compare_trials(same, after, rtol=0), same, after) is None


# ---------------------------------------------------------------------- 2. the cause of runs marked later


# ``gbreg run`` whose tracking store goes away while it logs the third trial, and stays away: the study
# stops, and marking its runs FAILED fails too (what the tracking server gone for good does; the store
# itself is a real SQLite one)
STORE_GOES_AWAY = """
import sys
from gbreg.tracking.server_client import TrackingServerAway
from gbreg.tracking.tracker import StudyTracker
from gbreg.cli import main

def away(*args, **kwargs):
    raise TrackingServerAway("tracking server http://127.0.0.1:9 did not answer for 20 s (ConnectionRefusedError)")

finish_trial, finished = StudyTracker.finish_trial, []
def finish_until_away(self, run_id, result):
    if len(finished) == 2:
        self.settle()
        StudyTracker.kill_trial = StudyTracker.kill_running_trials = StudyTracker.finish_parent = away
        away()
    finish_trial(self, run_id, result)
    finished.append(run_id)
StudyTracker.finish_trial = finish_until_away
sys.argv = ["gbreg", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_runs_left_by_a_study_stopped_with_the_store_away_are_marked_with_its_error(tracking, tmp_path) -> None:
    spec_path = write_spec(tmp_path, small_spec(sweep={"reg_alpha": [0, 1], "reg_lambda": [0, 10]}))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    env["TMPDIR"] = str(tmp_path)  # where the stopped process leaves its note

    stopped = subprocess.run([sys.executable, "-c", STORE_GOES_AWAY, "run", str(spec_path), "-j", "1"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 1, stopped.stderr
    assert "could not be marked FAILED" in stopped.stderr
    client = _client(tracking)
    experiment = client.get_experiment_by_name("small")
    left = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    assert len(left) == 2  # the parent and the trial being logged

    rerun = subprocess.run([sys.executable, "-m", "gbreg", "run", str(spec_path), "-j", "1"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert ("marked 1 trial run(s) and 1 study run(s) left RUNNING by a gbreg process that stopped on an error it "
            "could not record then (TrackingServerAway: tracking server http://127.0.0.1:9 did not answer")\
        in rerun.stderr
    assert "died" not in rerun.stderr
    trial = next(r for r in left if r.data.tags.get("gbreg.kind") != "study")
    marked = client.get_run(trial.info.run_id)
    assert marked.info.status == "FAILED"
    error = marked.data.tags["gbreg.error"]
    assert error.startswith("TrackingServerAway: tracking server http://127.0.0.1:9 did not answer for 20 s")
    assert "stopped on this error and could not mark the run FAILED then" in error and "died" not in error
    assert not list(tmp_path.glob("gbreg-stopped-runs-*/*"))  # the note is used once, then removed


# ---------------------------------------------------------------------- 3. a Dask cluster with no worker left


@pytest.mark.slow
def test_study_whose_cluster_loses_its_last_worker_stops_with_what_to_do(tracking, tmp_path, monkeypatch) -> None:
    from distributed import Client, LocalCluster

    import gbreg.run.dask_cluster
    from gbreg.errors import StudyFailed
    from gbreg.run.study import run_study
    from gbreg.tracking.tracker import StudyTracker

    monkeypatch.setattr(gbreg.run.dask_cluster, "NO_WORKERS_WAIT_S", 4.0)
    spec = small_spec(data={"source": "synthetic", "generator": "friedman1",
                            "params": {"n_samples": 4000, "n_features": 10}},
                      models={"xgboost": {"n_estimators": 300, "max_depth": 6, "learning_rate": 0.1}},
                      sweep={"reg_alpha": [0, 1, 10], "reg_lambda": [0, 10]})
    cluster = LocalCluster(n_workers=0, dashboard_address=None)  # a scheduler; its one worker is a process
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
                               "--no-nanny", "--nthreads", "1", "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start_trial, killed_at = StudyTracker.start_trial, []

    def start_and_kill_the_worker(self, *args, **kwargs):  # the worker dies outright once trials are out
        if not killed_at:
            killed_at.append(None)
            threading.Timer(1.0, lambda: (worker.send_signal(signal.SIGKILL), killed_at.append(time.monotonic()))
                            ).start()
        return start_trial(self, *args, **kwargs)

    monkeypatch.setattr(StudyTracker, "start_trial", start_and_kill_the_worker)
    try:
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=120)
        with pytest.raises(StudyFailed) as caught:
            run_study(_load(tmp_path, spec), executor="dask", scheduler=cluster.scheduler_address, verbosity=-1,
                      resume_command="gbreg run spec.yaml")
    finally:
        worker.kill()
        worker.wait()
        cluster.close()

    message = str(caught.value)
    assert message.startswith(f"the study stopped: the Dask scheduler {cluster.scheduler_address} has had no "
                              "worker for 4 s (its last one went away, taking the data set with it); start "
                              f"workers with `dask worker {cluster.scheduler_address}`; its runs in progress "
                              "were marked FAILED"), message
    assert message.endswith("resume with: gbreg run spec.yaml") and "TimeoutError" not in message
    assert "\n" not in message and message.count("resume") == 1
    client = _client(tracking)
    experiment = client.get_experiment_by_name("small")
    assert not client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")



@pytest.mark.slow
def test_study_whose_cluster_gets_a_worker_back_within_the_wait_completes(tracking, tmp_path, monkeypatch,
                                                                         caplog) -> None:
    from distributed import Client, LocalCluster

    from gbreg.run.study import run_study
    from gbreg.tracking.tracker import StudyTracker

    cluster = LocalCluster(n_workers=0, dashboard_address=None)
    command = [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address, "--no-nanny",
               "--nthreads", "1", "--no-dashboard"]
    workers = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    start_trial, timers = StudyTracker.start_trial, []

    def replace_the_worker():  # the last worker dies outright; another joins a few seconds later
        workers[0].send_signal(signal.SIGKILL)
        time.sleep(2.0)
        workers.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def start_and_replace(self, *args, **kwargs):
        if not timers:
            timers.append(threading.Timer(1.0, replace_the_worker))
            timers[0].start()
        return start_trial(self, *args, **kwargs)

    monkeypatch.setattr(StudyTracker, "start_trial", start_and_replace)
    try:
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=120)
        with caplog.at_level("WARNING", logger="gbreg"):
            outcome = run_study(_load(tmp_path, _slow_dask_spec()), executor="dask",
                                scheduler=cluster.scheduler_address, verbosity=-1)
    finally:
        if timers:
            timers[0].join()
        for worker in workers:
            worker.kill()
            worker.wait()
        cluster.close()

    assert not outcome.failures and outcome.n_ran == 6
    assert set(outcome.results["status"]) == {"FINISHED"}
    assert f"the Dask scheduler {cluster.scheduler_address} has no worker left; waiting up to 120 s" in caplog.text


# ---------------------------------------------------------------------- 4. the messages


def _slow_dask_spec() -> dict:
    return small_spec(data={"source": "synthetic", "generator": "friedman1",
                            "params": {"n_samples": 4000, "n_features": 10}},
                      models={"xgboost": {"n_estimators": 300, "max_depth": 6, "learning_rate": 0.1}},
                      sweep={"reg_alpha": [0, 1, 10], "reg_lambda": [0, 10]})


@pytest.mark.slow
def test_lost_scheduler_says_what_happened_and_how_to_resume_once(tracking, tmp_path, monkeypatch) -> None:
    from team_services import DaskCluster

    from gbreg.errors import StudyFailed
    from gbreg.run.study import run_study
    from gbreg.tracking.tracker import StudyTracker

    cluster = DaskCluster(tmp_path / "dask", n_workers=1)
    start_trial, started = StudyTracker.start_trial, []

    def start_and_kill_the_scheduler(self, *args, **kwargs):  # once trials are out on the cluster
        if not started:
            started.append(threading.Timer(1.0, cluster.kill_scheduler))
            started[0].start()
        return start_trial(self, *args, **kwargs)

    monkeypatch.setattr(StudyTracker, "start_trial", start_and_kill_the_scheduler)
    try:
        cluster.start()
        address = cluster.address
        with pytest.raises(StudyFailed) as caught:
            run_study(_load(tmp_path, _slow_dask_spec()), executor="dask", scheduler=address, verbosity=-1,
                      resume_command="gbreg run spec.yaml")
    finally:
        if started:
            started[0].join()
        cluster.stop()

    message = str(caught.value)
    assert message == (f"the study stopped: lost the Dask scheduler {address}: it stopped answering; start a "
                       f"scheduler there and its workers (`dask scheduler`, `dask worker {address}`); its runs in "
                       "progress were marked FAILED; after fixing the cause, resume with: gbreg run spec.yaml")


@pytest.mark.parametrize("step, expected", [
    ("log_shrinkage_metrics", "could not log the leaf-shrinkage metrics (leaf_shrinkage*) on the trial runs"),
    ("log_study_plots", "could not make the study's plots (plots/ on the parent run)"),
])
def test_a_failed_step_after_the_sweep_is_named_as_the_user_knows_it(tracking, tmp_path, monkeypatch, step,
                                                                     expected) -> None:
    import gbreg.run.after_sweep as after_sweep
    from gbreg.tracking.server_client import TrackingServerAway

    def step_that_fails(*args, **kwargs):  # the tracking server gone while the step wrote
        raise TrackingServerAway("tracking server http://127.0.0.1:9 does not answer")

    step_that_fails.__name__ = step
    monkeypatch.setattr(after_sweep, step, step_that_fails)
    spec = write_spec(tmp_path, small_spec(sweep={"reg_alpha": [0, 1], "reg_lambda": [0]}))
    result = CliRunner().invoke(app, ["run", str(spec), "-q", "-j", "1"])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (f"warning: {expected}: TrackingServerAway: tracking server "
                                     "http://127.0.0.1:9 does not answer"), result.output
