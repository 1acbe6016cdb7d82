"""The team set-up for real (docs/team_setup.md): a PostgreSQL store, ``gbreg server`` on it and a Dask
scheduler with two workers, each its own process (tests/team_services.py), and drivers that are
``gbreg run`` subprocesses. A study over HTTP gives the records the embedded SQLite store gives; faults
(PostgreSQL restarted, the server killed and restarted, a worker killed) lose and duplicate nothing; a
server that stays away or a scheduler killed stops the study cleanly, and rerunning resumes it; four
drivers at once keep their runs apart.

Every wait is on an event (a run FINISHED in the store, a process exiting, a worker joining); the
timeouts only stop a hang.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import small_spec, write_spec
from team_services import TeamServices, log_tail, postgres_bin_dir

pytestmark = pytest.mark.slow

TAG_KIND = "gbreg.kind"  # the MLflow contract (gbreg.tracking.tracker), spelled out: imports may move
TAG_TRIAL_KEY = "gbreg.trial_key"
TAG_PARENT = "mlflow.parentRunId"
WALL_CLOCK_METRICS = {"fit_seconds", "fit_seconds_std"}  # the only numbers allowed to differ between runs
ATTEMPTS_WHILE_AWAY = 6  # the driver tried to reach the server this often and is still waiting
SHORT_SERVER_WAIT_S = 3  # server_wait_seconds of a driver meant to give up (the default is 300)
DRIVER_TIMEOUT_S = 900.0  # a hang guard: the studies here take 10-60 s
N_SMALL = 12  # small_spec: 3 x 2 grid x 2 libraries


def _slow_spec(name: str) -> dict:
    """18 XGBoost trials of about half a second each on one thread: long enough to hit mid-study."""
    return small_spec(
        name=name, mlflow={"experiment": name},
        data={"source": "synthetic", "generator": "friedman1", "params": {"n_samples": 4000, "n_features": 10}},
        models={"xgboost": {"n_estimators": 150, "max_depth": 6, "learning_rate": 0.1}},
        sweep={"reg_alpha": [0, 0.1, 1, 3, 10, 30], "reg_lambda": [0, 1, 10]})


N_SLOW = 18


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """PostgreSQL, ``gbreg server`` on it and a Dask cluster, shared by the module's tests (each uses its own
    experiment); a test that breaks one of them leaves it running again."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        reason = ("PostgreSQL binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or on PATH; "
                  "install them with: bash .ci/install-postgresql.sh")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with TeamServices(tmp_path_factory.mktemp("team"), bin_dir) as services:
        yield services


@pytest.fixture
def running_team(team):
    """The module's services, all up: a test that failed while one of them was away left it away, and the
    next one must not fail for it; both Dask workers up (a nanny may still be restarting a killed one)."""
    if team.server.process is None or team.server.process.poll() is not None:
        team.server.start()
    if team.dask.scheduler is None or team.dask.scheduler.poll() is not None:
        team.dask.stop()
        team.dask.start()
    team.dask.wait_for_workers(2)
    return team


@pytest.fixture(scope="module")
def sqlite_reference(tmp_path_factory):
    """The small study on the embedded SQLite store, local workers: the records to compare with."""
    folder = tmp_path_factory.mktemp("sqlite-driver")
    driver = start_driver(folder, {"tracking_uri": "sqlite:///mlflow.db", "artifact_location": "mlartifacts"},
                          small_spec(mlflow={"experiment": "reference"}), "-j", "2")
    finish(driver)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    parents, children = study_runs(client, "reference")
    return artifact_names(client, parents[0].info.run_id), child_records(client, children)


# ---------------------------------------------------------------------- drivers and records


class Driver:
    def __init__(self, process: subprocess.Popen, log_path: Path, experiment: str):
        self.process, self.log_path, self.experiment = process, log_path, experiment


def start_driver(folder: Path, mlflow_yaml: dict, spec: dict, *args: str) -> Driver:
    """``gbreg run spec.yaml`` in ``folder`` (its own mlflow.yaml) as a subprocess, output to a log."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mlflow.yaml").write_text(yaml.safe_dump(mlflow_yaml))
    path = write_spec(folder, spec)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    log_path = folder / "driver.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "gbreg", "run", str(path), "-q", *args], cwd=folder,
                                   env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    return Driver(process, log_path, spec.get("mlflow", {}).get("experiment") or spec["name"])


def finish(driver: Driver) -> None:
    """Wait for the driver to exit; it must succeed."""
    try:
        code = driver.process.wait(DRIVER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        driver.process.kill()
        raise AssertionError(f"gbreg run hung; log:\n{log_tail(driver.log_path)}") from None
    assert code == 0, f"gbreg run exited {code}; log:\n{log_tail(driver.log_path, 40)}"


def study_runs(client, experiment: str):
    """(parent runs, child runs) of an experiment."""
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=5000)
    parents = [r for r in runs if r.data.tags.get(TAG_KIND) == "study"]
    children = [r for r in runs if TAG_PARENT in r.data.tags]
    return parents, children


def child_records(client, children) -> dict[str, dict]:
    """Per trial key: status, params, metrics and their full histories (steps and values, no timestamps)
    and artifact names; wall-clock metrics left out."""
    records: dict[str, dict] = {}
    for run in children:
        key = run.data.tags[TAG_TRIAL_KEY]
        assert key not in records, f"two child runs of trial {key}"
        names = sorted(set(run.data.metrics) - WALL_CLOCK_METRICS)
        records[key] = {
            "status": run.info.status,
            "params": dict(run.data.params),
            "metrics": {name: run.data.metrics[name] for name in names},
            "histories": {name: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, name))
                          for name in names},
            "artifacts": artifact_names(client, run.info.run_id),
        }
    return records


def artifact_names(client, run_id: str, path: str | None = None) -> list[str]:
    names = []
    for info in client.list_artifacts(run_id, path):
        names.extend(artifact_names(client, run_id, info.path) if info.is_dir else [info.path])
    return sorted(names)


def server_client(team):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=team.server.url)


def finished_children(client, driver: Driver) -> int:
    """How many trials of the driver's study are FINISHED in the store now (0 before its experiment exists)."""
    experiment = client.get_experiment_by_name(driver.experiment)
    if experiment is None:
        return 0
    runs = client.search_runs([experiment.experiment_id], max_results=5000,
                              filter_string=f"attributes.status = 'FINISHED' and tags.`{TAG_KIND}` = 'booster'")
    return len(runs)


@contextlib.contextmanager
def server_away(team):
    """The fault: SIGKILL ``gbreg server`` (requests in flight are cut); inside, a placeholder on its port
    counts the driver's attempts to reach it (:func:`port_placeholder`). The caller starts it again."""
    team.server.kill()
    with port_placeholder(team.server.port) as attempts:
        yield attempts


@contextlib.contextmanager
def port_placeholder(port: int):
    """Inside: something on ``port`` of 127.0.0.1 that accepts each connection and closes it at once; yields
    the list of those attempts (whoever tried to reach the service that is away)."""
    attempts: list = []
    stop = threading.Event()
    with socket.create_server(("127.0.0.1", port)) as placeholder:
        placeholder.settimeout(0.05)  # the accept loop checks ``stop``: closing cannot wake a blocked accept

        def accept_and_close() -> None:
            while not stop.is_set():
                try:
                    connection, peer = placeholder.accept()
                except TimeoutError:
                    continue
                attempts.append(peer)
                connection.close()

        thread = threading.Thread(target=accept_and_close, daemon=True)
        thread.start()
        try:
            yield attempts
        finally:
            stop.set()
            thread.join()


def wait_for_attempts(attempts: list, n: int, driver: Driver) -> None:
    """Until ``n`` attempts reached a placeholder (the service is away); an error if the driver gave up first."""
    deadline = time.monotonic() + DRIVER_TIMEOUT_S
    while len(attempts) < n:
        if driver.process.poll() is not None:
            raise AssertionError(f"gbreg run gave up (exit {driver.process.returncode}) after {len(attempts)} "
                                 f"attempts reached the service that is away; log:\n{log_tail(driver.log_path, 5)}")
        assert time.monotonic() < deadline, f"{len(attempts)} attempts"
        time.sleep(0.05)


def wait_for_finished_children(client, driver: Driver, n: int) -> int:
    """Poll the store until ``n`` children of the driver's study are FINISHED (the moment to inject a
    fault); returns how many were."""
    deadline = time.monotonic() + DRIVER_TIMEOUT_S
    while (done := finished_children(client, driver)) < n:
        if driver.process.poll() is not None:
            raise AssertionError(f"gbreg run exited {driver.process.returncode} before {n} trials finished; "
                                 f"log:\n{log_tail(driver.log_path, 40)}")
        assert time.monotonic() < deadline, "no trial finished"
        time.sleep(0.2)
    return done


def assert_complete_once(client, experiment: str, n_trials: int, abandoned_ok: bool = False) -> None:
    """The study's parent FINISHED; exactly one FINISHED child per trial, with its metrics and its leaves:
    nothing lost, nothing duplicated. No other child, except (``abandoned_ok``: a study stopped and
    resumed) trials the stopped run had in flight, marked FAILED."""
    parents, children = study_runs(client, experiment)
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert {r.data.tags[TAG_PARENT] for r in children} == {parents[0].info.run_id}
    others = Counter(r.info.status for r in children if r.info.status != "FINISHED")
    assert set(others) <= ({"FAILED"} if abandoned_ok else set()), others
    children = [r for r in children if r.info.status == "FINISHED"]
    keys = Counter(r.data.tags[TAG_TRIAL_KEY] for r in children)
    assert len(keys) == n_trials and set(keys.values()) == {1}, keys
    for run in children:
        assert run.data.metrics["test_rmse"] > 0 and run.data.metrics["n_trees"] > 0
        assert "leaves.parquet" in artifact_names(client, run.info.run_id)


# ---------------------------------------------------------------------- same records as SQLite


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_study_over_the_server_on_postgresql_gives_the_sqlite_records(running_team, sqlite_reference, tmp_path,
                                                                      executor) -> None:
    dask = executor == "dask"
    experiment = f"same-records-{executor}"
    driver = start_driver(tmp_path / "driver", running_team.driver_config(dask=dask),
                          small_spec(mlflow={"experiment": experiment}), *([] if dask else ["-j", "2"]))
    finish(driver)
    assert "View run" not in driver.log_path.read_text()  # -q: MLflow's line per run over HTTP is off too

    client = server_client(running_team)
    parents, children = study_runs(client, experiment)
    assert all(run.info.artifact_uri.startswith("mlflow-artifacts:") for run in (*parents, *children))
    records = child_records(client, children)
    parent_artifacts, reference = sqlite_reference
    assert len(records) == len(reference) == N_SMALL
    assert {r["status"] for r in records.values()} == {"FINISHED"}
    # the comparison covers what matters: full curves, the leaves, parameters the trials really used
    assert all([step for step, _ in r["histories"]["curve_test_rmse"]] == list(range(1, 21)) for r in records.values())
    assert all("leaves.parquet" in r["artifacts"] for r in records.values())
    assert {r["params"]["n_threads"] for r in records.values()} == {"1"}
    for key, expected in reference.items():
        assert records[key] == expected, key
    assert artifact_names(client, parents[0].info.run_id) == parent_artifacts
    assert "results.csv" in parent_artifacts


# ---------------------------------------------------------------------- faults mid-study


def _start_slow_study(team, tmp_path, name: str, **settings) -> Driver:
    return start_driver(tmp_path / "driver", team.driver_config(dask=True, **settings), _slow_spec(name))


def test_postgresql_restarted_mid_study_loses_and_duplicates_nothing(running_team, tmp_path) -> None:
    client = server_client(running_team)
    driver = _start_slow_study(running_team, tmp_path, "pg-restart")
    wait_for_finished_children(client, driver, 2)
    running_team.postgres.shut_down()  # fast: the server's pooled connections are cut
    with port_placeholder(running_team.postgres.port) as attempts:
        wait_for_attempts(attempts, 1, driver)  # a request of the driver met the outage (the server answers 503)
    running_team.postgres.start()
    assert finished_children(client, driver) < N_SLOW  # trials were still to be logged after the restart
    finish(driver)
    assert_complete_once(client, "pg-restart", N_SLOW)


def test_tracking_server_killed_and_restarted_mid_study_loses_and_duplicates_nothing(running_team,
                                                                                     tmp_path) -> None:
    """The server comes back only after the driver tried to reach it several times (and waits on: the
    default server_wait_seconds is 300); then the study carries on."""
    client = server_client(running_team)
    driver = _start_slow_study(running_team, tmp_path, "server-restart")
    wait_for_finished_children(client, driver, 2)
    with server_away(running_team) as attempts:
        wait_for_attempts(attempts, ATTEMPTS_WHILE_AWAY, driver)
    running_team.server.start()
    assert finished_children(client, driver) < N_SLOW  # trials were still to be logged after the restart
    finish(driver)
    assert_complete_once(client, "server-restart", N_SLOW)


def test_tracking_server_that_stays_away_stops_the_study_and_rerunning_resumes_it(running_team,
                                                                                  tmp_path) -> None:
    client = server_client(running_team)
    driver = _start_slow_study(running_team, tmp_path, "server-gone", server_wait_seconds=SHORT_SERVER_WAIT_S)
    wait_for_finished_children(client, driver, 2)
    with server_away(running_team):
        code = driver.process.wait(DRIVER_TIMEOUT_S)  # the driver gives up while the server is away
    running_team.server.start()
    output = driver.log_path.read_text()
    assert code == 1, output[-3000:]
    assert "Traceback" not in output
    spec_path = driver.log_path.parent / "spec.yaml"
    url = running_team.server.url
    away = r"\(\w+: .+\)"  # what the kill or the placeholder's cut did to a request: refused, cut, half-read
    lines = output.strip().splitlines()
    assert len(lines) == 2, output  # -q: the wait's warning and the one-line error
    assert re.fullmatch(f"warning: tracking server {url} is not answering {away}; waiting up to {SHORT_SERVER_WAIT_S} s "
                        r"for it \(server_wait_seconds in mlflow.yaml\)", lines[0]), lines[0]
    assert re.fullmatch(
        f"error: the study stopped: TrackingServerAway: tracking server {url} did not answer for "
        f"{SHORT_SERVER_WAIT_S} s {away}; its runs in progress could not be marked FAILED \\(the tracking server "
        r"still did not answer\): the next run of this study on this machine marks them; after fixing the "
        f"cause, resume with: gbreg run {re.escape(str(spec_path))}", lines[1]), lines[1]
    assert finished_children(client, driver) < N_SLOW

    rerun = start_driver(driver.log_path.parent, running_team.driver_config(dask=True),
                         _slow_spec("server-gone"))
    finish(rerun)
    assert_complete_once(client, "server-gone", N_SLOW, abandoned_ok=True)


def test_scheduler_killed_mid_study_stops_it_cleanly_and_rerunning_resumes_it(running_team, tmp_path) -> None:
    client = server_client(running_team)
    driver = _start_slow_study(running_team, tmp_path, "scheduler-kill")
    wait_for_finished_children(client, driver, 2)
    address = running_team.dask.address
    running_team.dask.kill_scheduler()
    code = driver.process.wait(DRIVER_TIMEOUT_S)
    output = driver.log_path.read_text()
    assert code == 1, output[-3000:]
    assert "Traceback" not in output
    spec_path = driver.log_path.parent / "spec.yaml"
    lines = output.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(  # the Dask client's tracebacks are silenced by the CLI
        f"error: the study stopped: lost the Dask scheduler {address}: it stopped answering; start a scheduler "
        f"there and its workers \\(`dask scheduler`, `dask worker {address}`\\); its runs in progress were marked "
        f"FAILED; after fixing the cause, resume with: gbreg run {re.escape(str(spec_path))}", lines[0]), output
    parents, children = study_runs(client, "scheduler-kill")
    assert [p.info.status for p in parents] == ["FAILED"]
    assert "RUNNING" not in {r.info.status for r in children} and len(children) < N_SLOW

    running_team.dask.stop()  # its workers lost their scheduler: a new cluster, as a person would start
    running_team.dask.start()
    rerun = start_driver(driver.log_path.parent, running_team.driver_config(dask=True), _slow_spec("scheduler-kill"))
    finish(rerun)
    assert_complete_once(client, "scheduler-kill", N_SLOW, abandoned_ok=True)


def test_dask_worker_killed_mid_trial_loses_and_duplicates_nothing(running_team, tmp_path) -> None:
    def retried_trials(dask_scheduler) -> int:  # runs on the scheduler (a closure: pickled by value)
        return sum(prefix.suspicious for name, prefix in dask_scheduler.task_prefixes.items()
                   if name.startswith("gbreg-trial"))

    client = server_client(running_team)
    with running_team.dask.client() as dask_client:
        retried_before = dask_client.run_on_scheduler(retried_trials)
        driver = _start_slow_study(running_team, tmp_path, "worker-kill")
        wait_for_finished_children(client, driver, 2)
        killed = kill_a_worker_running_a_trial(dask_client)
        finish(driver)
        assert dask_client.run_on_scheduler(retried_trials) > retried_before  # the kill hit a trial
        assert killed not in dask_client.run(os.getpid).values()  # the nanny started a new worker process
    assert_complete_once(client, "worker-kill", N_SLOW)


def kill_a_worker_running_a_trial(dask_client) -> int:
    """SIGKILL the process of a worker that is executing a gbreg trial now; its pid."""
    deadline = time.monotonic() + DRIVER_TIMEOUT_S
    while time.monotonic() < deadline:
        for address, executing in dask_client.call_stack().items():
            if any(str(key).startswith("gbreg-trial") for key in executing):
                pid = dask_client.run(os.getpid, workers=[address])[address]
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.05)
    raise AssertionError("no worker was seen executing a trial")


# ---------------------------------------------------------------------- four drivers at once


def test_four_drivers_at_once_complete_and_keep_their_runs_apart(running_team, tmp_path) -> None:
    grids = {f"four-{i}": [0, i + 1, 100] for i in range(4)}  # four different studies, told apart by reg_alpha
    drivers = [start_driver(tmp_path / name, running_team.driver_config(dask=True),
                            small_spec(name=name, mlflow={"experiment": name},
                                       sweep={"reg_alpha": alphas, "reg_lambda": [0, 10]}))
               for name, alphas in grids.items()]
    for driver in drivers:
        finish(driver)

    client = server_client(running_team)
    parent_of_study = {}
    for name, alphas in grids.items():
        assert_complete_once(client, name, N_SMALL)
        parents, children = study_runs(client, name)
        parent_of_study[name] = parents[0].info.run_id
        assert {float(r.data.params["reg_alpha"]) for r in children} == set(map(float, alphas))
    assert len(set(parent_of_study.values())) == 4
