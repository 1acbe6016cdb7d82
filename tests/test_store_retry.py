"""Retries on the tracking store. ``gbreg.tracking.store.retrying`` on a real SQLite lock: retried while locked,
other errors at once, the last error raised as it came when the lock outlasts the attempts.
``ServerClient`` on a real MLflow server behind a forwarding proxy that plays the faults (a connection cut
without an answer, a 503, an answer lost after the server acted): calls wait for the server and carry on, a
server away past ``server_wait_seconds`` stops them, a retried create_run creates one run, and a study
stopped that way says whether its runs could be marked.
"""

from __future__ import annotations

import http.client
import logging
import os
import sqlite3
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg import StudyFailed, load_spec, run_study
from gbreg.cli import app
from gbreg.errors import TrackingError
from gbreg.run.sweep import study_stopped
from gbreg.spec.tracking_config import load_tracking_config
from gbreg.tracking.server import MlflowServer
from gbreg.tracking.server_client import ServerClient, TrackingServerAway
from gbreg.tracking.store import open_store, retrying


@pytest.fixture
def locked_db(tmp_path):
    """A database another connection holds an exclusive lock on; yields (path, holder)."""
    path = tmp_path / "store.db"
    setup = sqlite3.connect(path)
    setup.execute("create table t (x integer)")
    setup.commit()
    setup.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("begin exclusive")
    yield path, holder
    holder.close()


def _insert(path) -> int:
    writer = sqlite3.connect(path, timeout=0)  # fail at once instead of SQLite's own busy wait
    try:
        writer.execute("insert into t values (1)")
        writer.commit()
        return writer.execute("select count(*) from t").fetchone()[0]
    finally:
        writer.close()


def test_a_locked_database_is_retried_until_the_lock_is_released(locked_db):
    path, holder = locked_db
    calls = []

    def write() -> int:
        calls.append(1)
        if len(calls) == 3:
            holder.execute("commit")  # the other writer finishes while we back off
        return _insert(path)

    assert retrying(write, attempts=5, first_wait=0.001) == 1
    assert len(calls) == 3


def test_a_lock_that_outlasts_the_attempts_raises_sqlites_error(locked_db):
    path, _ = locked_db
    calls = []

    def write() -> int:
        calls.append(1)
        return _insert(path)

    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        retrying(write, attempts=4, first_wait=0.001)
    assert len(calls) == 4


def test_an_error_that_is_not_a_lock_is_raised_at_once(tmp_path):
    calls = []

    def write() -> None:
        calls.append(1)
        sqlite3.connect(tmp_path / "store.db").execute("select * from no_such_table")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retrying(write, attempts=5, first_wait=0.001)
    assert len(calls) == 1


# ---------------------------------------------------------------------- a tracking server that goes away


class FaultProxy:
    """A forwarding HTTP proxy on 127.0.0.1 in front of a real MLflow server. Each request meets the next
    scripted fate (``script``), else ``away`` (every request cut), else is forwarded. Fates: ``cut`` (the
    connection closed without an answer, as a server killed mid-request), ``503`` (an overloaded server or
    its database away), ``lose-answer`` (forwarded, the server acts, its answer never arrives).
    ``away_after(suffix, n)``: away once ``n`` requests whose path ends with ``suffix`` were forwarded."""

    def __init__(self, upstream: str, tls: tuple[Path, Path] | None = None):
        self.upstream = urlparse(upstream)
        self.script: list[str] = []
        self.away = False
        self.seen: list[tuple[str, str]] = []  # (path, fate) of every request, in order
        self._trigger: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        if tls is not None:  # (certificate, key): TLS in front, as a reverse proxy would terminate it
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def away_after(self, suffix: str, n: int) -> None:
        self._trigger = (suffix, n)

    def fate(self, path: str) -> str:
        with self._lock:
            fate = self.script.pop(0) if self.script else ("cut" if self.away else "forward")
            self.seen.append((path, fate))
            if self._trigger and fate == "forward" and path.split("?")[0].endswith(self._trigger[0]):
                remaining = self._trigger[1] - 1
                self._trigger = (self._trigger[0], remaining) if remaining else None
                self.away = self.away or not remaining
            return fate

    def count(self, suffix: str) -> int:
        return sum(path.split("?")[0].endswith(suffix) for path, _ in self.seen)

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fate = proxy.fate(self.path)
                if fate == "cut":
                    self.close_connection = True
                    return
                if fate == "503":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                if fate == "lose-answer":
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _relay

            def log_message(self, *args) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    with MlflowServer(f"sqlite:///{folder / 'mlflow.db'}", str(folder / "artifacts"), proxy_artifacts=True) as server:
        yield server


@pytest.fixture
def proxy(mlflow_server, monkeypatch):
    """The proxy, with MLflow's own HTTP retries off (as the CLI sets them): each fault reaches gbreg."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    faults = FaultProxy(mlflow_server.url)
    yield faults
    faults.close()


def _server_client(url: str, wait_seconds: float = 120.0) -> ServerClient:
    from mlflow.tracking import MlflowClient

    return ServerClient(MlflowClient(tracking_uri=url), url, wait_seconds, first_wait=0.01)


@pytest.mark.parametrize("fault", ["cut", "503"])
def test_a_call_waits_for_a_server_that_is_away_and_carries_on(proxy, fault, caplog):
    client = _server_client(proxy.url)
    proxy.script = [fault] * 4
    with caplog.at_level(logging.WARNING, logger="gbreg"):
        experiments = client.search_experiments(max_results=5)
    assert [e.name for e in experiments] == ["Default"]
    assert [fate for _, fate in proxy.seen] == [fault] * 4 + ["forward"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "is not answering" in warnings[0] and "answers again" in warnings[1]


def test_a_server_away_past_the_limit_stops_the_call_then_each_call_is_tried_once(proxy):
    client = _server_client(proxy.url, wait_seconds=0.5)
    proxy.away = True
    with pytest.raises(TrackingServerAway, match=r"did not answer for 0.5 s \(RemoteDisconnected: Remote end closed connection without response\)$"):
        client.search_experiments()
    tried = len(proxy.seen)
    assert tried > 1
    with pytest.raises(TrackingServerAway, match="does not answer"):
        client.get_experiment("0")  # after a give-up, one attempt: marking a stopped study's runs must not wait
    assert len(proxy.seen) == tried + 1
    proxy.away = False
    assert client.get_experiment("0").name == "Default"
    proxy.script = ["cut"]
    assert client.get_experiment("0").name == "Default"  # answered once: calls wait again
    assert [fate for _, fate in proxy.seen[-2:]] == ["cut", "forward"]


def test_errors_of_a_server_that_answers_are_raised_at_once(proxy):
    from mlflow.exceptions import RestException

    client = _server_client(proxy.url)
    with pytest.raises(RestException, match="RESOURCE_DOES_NOT_EXIST"):
        client.get_run("0" * 32)
    assert len(proxy.seen) == 1


def test_a_create_run_whose_answer_was_lost_creates_one_run(proxy):
    client = _server_client(proxy.url)
    experiment_id = client.create_experiment("lost-answer")
    # the server creates the run but its answer is lost; the first look for it is cut too
    proxy.script = ["lose-answer", "cut"]
    run = client.create_run(experiment_id, tags={"gbreg.trial_key": "k1"}, run_name="trial")
    runs = client.search_runs([experiment_id])
    assert [r.info.run_id for r in runs] == [run.info.run_id]
    assert run.data.tags["gbreg.trial_key"] == "k1" and run.info.run_name == "trial"
    assert proxy.count("runs/create") == 1 and proxy.count("runs/search") == 3  # 2 looks, then the test's


def test_server_wait_seconds_comes_from_mlflow_yaml(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = tmp_path / "mlflow.yaml"
    config.write_text("tracking_uri: http://127.0.0.1:5000\nserver_wait_seconds: 45\n")
    assert load_tracking_config(config).server_wait_seconds == 45.0
    config.write_text("tracking_uri: http://127.0.0.1:5000\n")
    assert load_tracking_config(config).server_wait_seconds == 300.0
    for bad in ("-1", "true", "'60'", "[1]"):
        config.write_text(f"server_wait_seconds: {bad}\n")
        with pytest.raises(TrackingError, match=r"server_wait_seconds: must be a number of seconds from 0 to 86400"):
            load_tracking_config(config)


def test_an_https_server_signed_by_a_private_ca_is_checked_as_mlflow_checks_it(mlflow_server, tmp_path,
                                                                               monkeypatch):
    """Behind a TLS reverse proxy whose certificate MLFLOW_TRACKING_SERVER_CERT_PATH names (as
    docs/team_setup.md says), gbreg's own checks before anything trains accept the server too."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    front = FaultProxy(mlflow_server.url, tls=(cert, key))
    try:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        (tmp_path / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": front.url}))
        config = load_tracking_config(tmp_path / "mlflow.yaml")
        with pytest.raises(TrackingError, match="CERTIFICATE_VERIFY_FAILED"):
            open_store(config)  # a certificate nobody vouched for
        monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(cert))
        client = open_store(config)
        assert isinstance(client, ServerClient)
        assert client.get_experiment("0").name == "Default"
    finally:
        front.close()


# ---------------------------------------------------------------------- the message a stopped study ends with


def test_the_stop_message_cuts_a_long_error_at_a_word_boundary():
    message = str(study_stopped(OSError("abcdefghij " * 40), "gbreg run s.yaml"))
    assert "\n" not in message
    assert "OSError: " + "abcdefghij " * 27 + "…; its runs in progress were marked FAILED" in message
    assert message.endswith("resume with: gbreg run s.yaml")


def test_a_study_whose_server_stays_away_says_its_runs_could_not_be_marked(proxy, tmp_path, monkeypatch):
    """The server goes away for good once two trials are FINISHED: the study stops after
    server_wait_seconds, and its message says the runs in progress could not be marked (they are not)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": proxy.url, "server_wait_seconds": 0.5}))
    monkeypatch.setenv("GBREG_MLFLOW_CONFIG", str(tmp_path / "mlflow.yaml"))
    spec_path = write_spec(tmp_path, small_spec(name="away", mlflow={"experiment": "away"}))
    proxy.away_after("runs/update", 2)  # set_terminated of the second trial: then nothing answers
    with pytest.raises(StudyFailed) as stopped:
        run_study(load_spec(spec_path), jobs=1, verbosity=-1)
    message = str(stopped.value)
    assert "\n" not in message
    assert f"TrackingServerAway: tracking server {proxy.url} did not answer for 0.5 s" in message
    assert ("its runs in progress could not be marked FAILED (the tracking server still did not answer): the "
            "next run of this study on this machine marks them") in message
    assert message.endswith(f"resume with: gbreg run {spec_path}")

    proxy.away = False
    client = _server_client(proxy.url)
    runs = client.search_runs([client.get_experiment_by_name("away").experiment_id])
    status = {r.info.status for r in runs if r.data.tags["gbreg.kind"] == "study"}
    assert status == {"RUNNING"}  # as the message says: left RUNNING (the third trial's run was never made)
    assert sorted(r.info.status for r in runs if r.data.tags["gbreg.kind"] != "study") == ["FINISHED"] * 2


# ---------------------------------------------------------------------- -q over HTTP


@pytest.fixture
def restored_environment():
    """The CLI sets MLflow's variables in its process (here: the test's); they are put back after."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_quiet_run_over_http_prints_nothing(mlflow_server, tmp_path, monkeypatch, restored_environment):
    """MLflow prints "🏃 View run … / 🧪 View experiment …" when a run ends on a tracking server: twice per
    trial, unless the CLI switches it off."""
    for name in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": mlflow_server.url}))
    monkeypatch.chdir(tmp_path)
    spec_path = write_spec(tmp_path, small_spec(name="quiet", mlflow={"experiment": "quiet"},
                                                sweep={"reg_alpha": [0, 1]}))
    result = CliRunner().invoke(app, ["run", str(spec_path), "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
