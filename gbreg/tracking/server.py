"""Start, wait for and stop a lean local ``mlflow server`` (for ``gbreg ui``, ``gbreg server`` and tests).

Why not just ``mlflow ui``: with defaults MLflow 3.17 takes ~13 s to answer and leaves a job runner and
``huey_consumer`` processes behind for seconds after SIGTERM. One uvicorn worker and
``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` answer in ~5 s with two processes that exit in ~1 s.

``auth_database`` runs MLflow's basic-auth app instead (``gbreg server --auth``): every request needs a
login, and users and their permissions live in that SQLite file (or where ``MLFLOW_AUTH_CONFIG_PATH``'s
config file says). The first start creates the admin user from ``MLFLOW_AUTH_ADMIN_PASSWORD``.

The server runs in its own session (so its process group is ours to signal and a Ctrl-C in the
terminal reaches gbreg, which then stops the server in order) and logs to a temporary file whose tail
goes into the error when it fails to start. Started from the main thread on Linux, it also dies with
the process that started it, even one killed outright (``kill -9``): the kernel sends ``mlflow server``
SIGTERM (``PR_SET_PDEATHSIG``), which it forwards to its uvicorn child and waits for, so no orphan keeps
the port.

MLflow is not imported here: the server is a subprocess, and ``gbreg --help`` must stay fast.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import urlparse
from urllib.request import url2pathname

from gbreg.errors import TrackingError
from gbreg.process_tree import die_with_parent_preexec, group_members

if TYPE_CHECKING:
    from gbreg.spec.tracking_config import TrackingConfig

START_TIMEOUT_S = 60.0  # ~5 s here; generous for cold caches and slow CI runners
STOP_GRACE_S = 10.0  # SIGTERM -> SIGKILL; measured exit after SIGTERM is ~1 s
POLL_INTERVAL_S = 0.1
LOG_TAIL_LINES = 25
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}
AUTH_DATABASE = "basic_auth.db"  # gbreg server --auth: the users, next to mlflow.yaml
# MLflow's basic-auth config: a new user may read every experiment and write only those it creates or is
# given EDIT on (the creator of an experiment manages it)
AUTH_CONFIG = """[mlflow]
default_permission = READ
database_uri = sqlite:///{database}
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
"""


# Health checks go straight to the local server: an HTTP(S)_PROXY in CI must not intercept them.
_DIRECT_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MlflowServerError(TrackingError):
    """The MLflow server could not be started, or died; the message carries its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (for tests; a small race with other binders)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def runs_page_url(base_url: str, experiment_id: str) -> str:
    """The runs table of an experiment. MLflow 3.17 opens experiments in its GenAI view by default;
    ``workflowType=machine_learning`` selects the classic runs table."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def run_page_url(base_url: str, experiment_id: str, run_id: str) -> str:
    """The page of one run (parameters, metrics, artifacts)."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def _client_host(bind_host: str) -> str:
    """The address to reach a server bound to ``bind_host`` from this machine."""
    if bind_host in WILDCARD_HOSTS:
        return "::1" if bind_host == "::" else "127.0.0.1"
    return bind_host


def _http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _local_folder(uri: str) -> Path | None:
    """The folder a ``file:`` URI or plain path names; None for remote stores (s3://, gs://, ...)."""
    if uri.startswith("file:"):
        return Path(url2pathname(urlparse(uri).path))
    if "://" not in uri:
        return Path(uri).resolve()
    return None


def artifact_arguments(artifact_location: str | None, proxy_artifacts: bool = False) -> list[str]:
    """The ``mlflow server`` artifact flags for gbreg's artifact location.

    A local folder becomes ``--default-artifact-root file:///...`` so experiments created through the
    server get the same ``file:`` location as those the embedded store creates (``gbreg run`` without
    a server keeps working on the same SQLite file), and ``--artifacts-destination`` names the same
    folder so ``mlflow-artifacts:/`` runs resolve into it too. ``proxy_artifacts=True`` (a server
    that remote clients log to) leaves the default root to MLflow's ``mlflow-artifacts:/`` proxy
    instead, so clients upload through HTTP rather than writing ``file:`` paths on their own disk.
    A remote URI (s3://...) is the default artifact root as is.
    """
    if not artifact_location:
        return []
    folder = _local_folder(artifact_location)
    if folder is None:
        return ["--default-artifact-root", artifact_location]
    folder.mkdir(parents=True, exist_ok=True)
    uri = folder.as_uri()
    if proxy_artifacts:
        return ["--artifacts-destination", uri]
    return ["--default-artifact-root", uri, "--artifacts-destination", uri]


class MlflowServer:
    """A ``mlflow server`` subprocess on a backend store; a context manager that stops it on exit.

    Example::

        with MlflowServer("sqlite:////tmp/x.db", "/tmp/artifacts") as server:
            MlflowClient(tracking_uri=server.url).search_experiments()
    """

    def __init__(
        self,
        backend_store_uri: str,
        artifact_location: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        proxy_artifacts: bool = False,
        start_timeout: float = START_TIMEOUT_S,
        stop_grace: float = STOP_GRACE_S,
        extra_args: list[str] | None = None,
        auth_database: Path | None = None,
    ) -> None:
        self.backend_store_uri = backend_store_uri
        self.artifact_location = artifact_location
        self.host = host
        self.port = port if port is not None else free_port(_client_host(host))
        self.proxy_artifacts = proxy_artifacts
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.extra_args = list(extra_args or [])
        self.auth_database = auth_database  # None: no login
        self._auth_config: Path | None = None  # the config written for MLflow's basic-auth app
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.start_seconds: float | None = None  # how long start() waited for /health
        self.stop_seconds: float | None = None  # how long stop() took until the group was gone

    @classmethod
    def from_config(cls, config: TrackingConfig, host: str | None = None, port: int | None = None,
                    auth: bool = False, **kwargs: object) -> MlflowServer:
        """A server on the store of ``mlflow.yaml``; ``host``/``port`` override its ``ui`` section; ``auth``
        keeps the users in basic_auth.db next to mlflow.yaml (the current folder without one)."""
        folder = config.config_path.resolve().parent if config.config_path else Path.cwd()
        return cls(config.tracking_uri, config.artifact_location,
                   host=host or config.ui_host, port=port if port is not None else config.ui_port,
                   auth_database=folder / AUTH_DATABASE if auth else None, **kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        """The address to reach the server from this machine (loopback if bound to all interfaces)."""
        return _http_url(_client_host(self.host), self.port)

    @property
    def pgid(self) -> int | None:
        """The server's process group (its own session, so equal to its pid)."""
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.backend_store_uri,
            "--host", self.host,
            "--port", str(self.port),
            "--workers", "1",
            *artifact_arguments(self.artifact_location, self.proxy_artifacts),
            *(["--app-name", "basic-auth"] if self.auth_database is not None else []),
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job runner, no huey consumers
        env["PYTHONUNBUFFERED"] = "1"  # so the log tail in errors is current
        # The server must serve the store it was given, not one a caller's environment points at.
        env.pop("MLFLOW_TRACKING_URI", None)
        if self.auth_database is not None:
            if self._auth_config is not None:
                env["MLFLOW_AUTH_CONFIG_PATH"] = str(self._auth_config)
            # signs the UI's forms (CSRF); one server needs no fixed key, several behind one address do
            env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_hex(32))
        return env

    def _prepare_auth(self) -> None:
        """The basic-auth app's config (unless MLFLOW_AUTH_CONFIG_PATH names one): users in ``auth_database``;
        a first start without an admin password is a one-line error here, not a log tail."""
        if self.auth_database is None:
            return
        from importlib.util import find_spec

        if find_spec("flask_wtf") is None:
            raise MlflowServerError("gbreg server --auth needs MLflow's basic-auth app and its Flask-WTF: "
                                    "pip install 'gbreg[team]' (or 'mlflow[auth]')")
        if os.environ.get("MLFLOW_AUTH_CONFIG_PATH"):
            return
        new = not self.auth_database.is_file() or self.auth_database.stat().st_size == 0
        if new and not os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD"):
            raise MlflowServerError(
                f"gbreg server --auth: the first start creates the admin user in {self.auth_database}; set "
                "MLFLOW_AUTH_ADMIN_PASSWORD (at least 12 characters; MLFLOW_AUTH_ADMIN_USERNAME, default admin) "
                "in the environment")
        self.auth_database.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="gbreg-basic-auth-", suffix=".ini")  # mode 0600
        with os.fdopen(fd, "w") as config:
            config.write(AUTH_CONFIG.format(database=self.auth_database.resolve()))
        self._auth_config = Path(name)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        """Launch the server and block until ``/health`` answers; raise with the log tail otherwise."""
        if self.process is not None:
            raise RuntimeError("MlflowServer.start() called twice")
        client_host = _client_host(self.host)
        if port_is_open(client_host, self.port):
            raise MlflowServerError(
                f"cannot start the MLflow server: port {self.port} on {client_host} is already in use "
                "(another MLflow UI?); pick another port")
        self._prepare_auth()
        fd, log_name = tempfile.mkstemp(prefix="gbreg-mlflow-server-", suffix=".log")
        self.log_path = Path(log_name)
        began = time.monotonic()
        with os.fdopen(fd, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.environment(), start_new_session=True, preexec_fn=die_with_parent_preexec(signal.SIGTERM))
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _wait_until_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        health = f"{self.url}/health"
        while True:
            code = self.process.poll()
            if code is not None:
                raise MlflowServerError(
                    f"the MLflow server exited with status {code} before answering on {self.url}\n"
                    f"{self.log_tail()}")
            try:
                with _DIRECT_HTTP.open(health, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise MlflowServerError(
                    f"the MLflow server did not answer on {health} within {self.start_timeout:.0f} s\n"
                    f"{self.log_tail()}")
            time.sleep(POLL_INTERVAL_S)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after the grace period, reap.

        Idempotent. Also cleans up workers left behind when the main process already died.
        """
        if self.process is None:
            return
        began = time.monotonic()
        if os.name == "posix":
            self._stop_group(self.process.pid)
        else:  # pragma: no cover - gbreg targets Linux and macOS
            self.process.terminate()
            try:
                self.process.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()
        self.stop_seconds = time.monotonic() - began
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None
        if self._auth_config is not None:
            self._auth_config.unlink(missing_ok=True)
            self._auth_config = None

    def _stop_group(self, pgid: int) -> None:
        assert self.process is not None
        self._signal_group(pgid, signal.SIGTERM)
        if self._wait_group_gone(pgid, self.stop_grace):
            return
        self._signal_group(pgid, signal.SIGKILL)
        if not self._wait_group_gone(pgid, 5.0):
            raise MlflowServerError(
                f"MLflow server processes {group_members(pgid)} survived SIGKILL (process group {pgid})")

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _wait_group_gone(self, pgid: int, timeout: float) -> bool:
        """Reap our child and wait until no live process is left in its group."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            self.process.poll()  # reap the leader so it does not linger as a zombie member
            if not group_members(pgid):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_INTERVAL_S / 2)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines the server wrote (stdout and stderr), for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return "(no server log)"
        with self.log_path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 16_000))
            text = log.read().decode("utf-8", "replace")
        tail = text.splitlines()[-lines:]
        return "server log (last lines):\n  " + "\n  ".join(tail) if tail else "(server log is empty)"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
