"""``gbreg server --auth``: MLflow's basic-auth app, the real server as its own process (a SQLite store: the
login is the server's, whatever its store). Drivers are ``gbreg run`` subprocesses that log in with
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD: a missing or wrong login is one line and exit 2
before anything trains, a user without EDIT permission on the experiment cannot log into it, and the
password is written nowhere in the runs. The server listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest
import yaml
from conftest import small_spec, write_spec
from team_services import CALLER_SETTINGS, TrackingServer

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "admin-password-for-tests"
USERS = {"alice": "alice-password-1234", "bob": "bob-password-12345"}
DRIVER_TIMEOUT_S = 600.0  # a hang guard


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """``gbreg server --auth`` on a SQLite store, with the users alice and bob made by the admin."""
    folder = tmp_path_factory.mktemp("auth-server")
    server = TrackingServer(folder, "sqlite:///mlflow.db", admin_password=ADMIN_PASSWORD).start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
            patch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
            admin = _auth_client(server.url)
            for user, password in USERS.items():
                admin.create_user(user, password)
        yield server
    finally:
        server.stop()


def _auth_client(url: str):
    from mlflow.server import get_app_client

    return get_app_client("basic-auth", tracking_uri=url)


def run_driver(folder, url: str, spec: dict, user: str | None, password: str | None):
    """``gbreg run spec.yaml -q -j 1`` in ``folder`` logged in as ``user``; the finished process."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": url}))
    env = {k: v for k, v in os.environ.items() if k not in CALLER_SETTINGS}
    if user is not None:
        env.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password)
    return subprocess.run([sys.executable, "-m", "gbreg", "run", str(write_spec(folder, spec)), "-q", "-j", "1"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=DRIVER_TIMEOUT_S)


def _spec(experiment: str, alphas=(0, 1)) -> dict:
    return small_spec(name=experiment, mlflow={"experiment": experiment},
                      models={"xgboost": {"n_estimators": 10, "max_depth": 3}}, sweep={"reg_alpha": list(alphas)})


@pytest.fixture
def as_admin(auth_server, monkeypatch):
    """An MlflowClient logged in as the admin, who sees every experiment."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=auth_server.url)


def test_the_first_start_without_an_admin_password_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "mlflow.yaml").write_text("tracking_uri: sqlite:///mlflow.db\n")
    env = {k: v for k, v in os.environ.items() if k not in CALLER_SETTINGS}
    done = subprocess.run([sys.executable, "-m", "gbreg", "server", "--auth", "--port", "1"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: gbreg server --auth: the first start creates the admin user in {tmp_path / 'basic_auth.db'}; set "
        "MLFLOW_AUTH_ADMIN_PASSWORD (at least 12 characters; MLFLOW_AUTH_ADMIN_USERNAME, default admin) in the "
        "environment"]
    assert not (tmp_path / "basic_auth.db").exists() and not (tmp_path / "mlflow.db").exists()


def test_the_server_listens_on_loopback_only_by_default(auth_server):
    tree = psutil.Process(auth_server.process.pid)
    listening = {(c.laddr.ip, c.laddr.port) for p in (tree, *tree.children(recursive=True))
                 for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert listening == {("127.0.0.1", auth_server.port)}


@pytest.mark.parametrize("user, password, expected", [
    (None, None, "requires a login: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the environment "
                 "(never in mlflow.yaml or the spec)"),
    ("alice", "not-alices-password", "refused the login of 'alice': wrong user name or password "
                                     "(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)"),
])
def test_a_driver_without_a_valid_login_stops_before_anything_runs(auth_server, as_admin, tmp_path, user, password,
                                                                   expected):
    done = run_driver(tmp_path, auth_server.url, _spec("no-login"), user, password)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"error: tracking server {auth_server.url} {expected}"]
    assert as_admin.get_experiment_by_name("no-login") is None  # nothing was written


def test_a_driver_logs_in_and_the_password_is_written_nowhere(auth_server, as_admin, tmp_path):
    done = run_driver(tmp_path, auth_server.url, _spec("alice-study"), "alice", USERS["alice"])
    assert done.returncode == 0, done.stderr
    experiment = as_admin.get_experiment_by_name("alice-study")
    runs = as_admin.search_runs([experiment.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3  # the parent and two trials
    for run in runs:
        written = [*run.data.params.items(), *run.data.tags.items()]
        assert not [pair for pair in written if any(USERS["alice"] in text or "PASSWORD" in text.upper()
                                                    for text in pair)]
    parent = next(r for r in runs if r.data.tags["gbreg.kind"] == "study")
    for artifact in ("spec.yaml", "spec_input.yaml"):
        text = as_admin.download_artifacts(parent.info.run_id, artifact, str(tmp_path))
        assert USERS["alice"] not in open(text).read()


def test_a_user_without_edit_permission_cannot_log_into_the_experiment(auth_server, as_admin, tmp_path):
    owner = run_driver(tmp_path / "alice", auth_server.url, _spec("shared"), "alice", USERS["alice"])
    assert owner.returncode == 0, owner.stderr
    experiment = as_admin.get_experiment_by_name("shared")
    before = {r.info.run_id for r in as_admin.search_runs([experiment.experiment_id])}

    refused = run_driver(tmp_path / "bob", auth_server.url, _spec("shared", alphas=(0, 10)), "bob", USERS["bob"])
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: tracking server {auth_server.url} denied 'bob' permission")
    assert line.endswith("writing a study's runs needs EDIT permission on its experiment; ask an admin of the server")
    runs = as_admin.search_runs([experiment.experiment_id])
    assert {r.info.run_id for r in runs} == before and {r.info.status for r in runs} == {"FINISHED"}

    _auth_client(auth_server.url).grant_user_permission("bob", "experiment", experiment.experiment_id, "EDIT")
    granted = run_driver(tmp_path / "bob", auth_server.url, _spec("shared", alphas=(0, 10)), "bob", USERS["bob"])
    assert granted.returncode == 0, granted.stderr
    runs = as_admin.search_runs([experiment.experiment_id])
    assert len(runs) == len(before) + 2  # bob's parent and the one trial alice had not run (alpha 10)
