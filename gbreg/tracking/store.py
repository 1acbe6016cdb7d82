"""Opening the MLflow tracking store safely, before any training.

- A local SQLite store is created and migrated once, under a file lock: processes that open a fresh
  store at the same moment otherwise race in MLflow's schema migration and corrupt it.
- Writes retry with backoff while SQLite reports the database as locked.
- A tracking server is probed first, so an unreachable one (or a refused login) is a clear error, not a hang.
- Once a study runs, a tracking server that stops answering is waited for (:class:`ServerClient`).
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import tenacity

from gbreg.errors import TrackingError
from gbreg.spec.tracking_config import TrackingConfig
from gbreg.tracking.store_template import save_template, start_from_template

T = TypeVar("T")

LOCKED_MARKERS = ("database is locked", "database table is locked", "unable to open database file")


def retrying(call: Callable[[], T], attempts: int = 8, first_wait: float = 0.2) -> T:
    """Run ``call``, retrying with jittered backoff while the SQLite file is locked; any other error, or
    the lock still held after ``attempts`` tries, is raised as it came."""
    doubling = tenacity.wait_exponential(multiplier=first_wait, max=5.0)
    retryer = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_locked),
        stop=tenacity.stop_after_attempt(attempts),
        # processes that collided on the lock must not retry in step: each wait is stretched by up to 2x
        wait=lambda state: doubling(state) * (1 + random.random()),
        reraise=True,
    )
    return retryer(call)


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, Exception) and any(m in str(exc).lower() for m in LOCKED_MARKERS)


def check_store(config: TrackingConfig) -> None:
    """The quick checks, without importing MLflow: a server answers, a SQLite path is usable."""
    if config.is_server:
        _probe_server(config.tracking_uri)
    if config.sqlite_path is not None:
        _check_sqlite_path(config.tracking_uri, config.sqlite_path)


def import_mlflow(config: TrackingConfig) -> None:
    """Import what opening and writing the store needs (about 1.5 s), with no effect on the store:
    done while a worker checks the library parameters, before the store may be created."""
    import mlflow.data  # noqa: F401 - the parent run's dataset input
    import mlflow.entities  # noqa: F401
    from mlflow.tracking import MlflowClient  # noqa: F401

    if config.sqlite_path is not None:
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


def open_store(config: TrackingConfig):
    """Return an ``MlflowClient`` on a store that exists, is migrated and answers; on a tracking server, a
    :class:`ServerClient` that waits up to ``server_wait_seconds`` for a server that stops answering."""
    check_store(config)
    db_path = config.sqlite_path
    from mlflow.tracking import MlflowClient

    try:
        if db_path is not None:
            from filelock import FileLock

            with FileLock(str(db_path) + ".lock", timeout=300):
                new = config.new_sqlite_store()
                from_template = new and start_from_template(db_path)
                client = MlflowClient(tracking_uri=config.tracking_uri)
                retrying(lambda: client.search_experiments(max_results=1))
                if new and not from_template:
                    save_template(db_path)
        else:
            client = MlflowClient(tracking_uri=config.tracking_uri)
            if config.is_server:
                client = ServerClient(client, config.tracking_uri, config.server_wait_seconds)
            client.search_experiments(max_results=1)
    except TrackingError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise TrackingError(f"tracking store {config.tracking_uri} cannot be opened: {first}") from exc
    return client


def open_existing_store(config: TrackingConfig):
    """``open_store`` for commands that only read a study (results, report, reproduce, ui): a local store
    that does not exist is an error naming where it was looked for, never a new empty store."""
    missing = missing_store_message(config)
    if missing:
        raise TrackingError(missing)
    return open_store(config)


def missing_store_message(config: TrackingConfig) -> str | None:
    """Why there is no store to read from (a local SQLite file or file: folder that is absent or empty)."""
    if config.sqlite_path is not None:
        path = config.sqlite_path
        absent = not path.is_file() or path.stat().st_size == 0
    elif config.tracking_uri.startswith("file:"):
        from urllib.parse import unquote, urlparse

        path = Path(unquote(urlparse(config.tracking_uri).path))
        absent = not path.is_dir()
    else:
        return None
    if not absent:
        return None
    return (f"no tracking store at {path} (tracking URI {config.store_description}); run a study first "
            "(`gbreg run` creates the store), or work in the folder whose mlflow.yaml names your store, or set "
            "MLFLOW_TRACKING_URI")


def _check_sqlite_path(uri: str, db_path: Path) -> None:
    """The SQLite file (or the folder it goes in) must be usable; MLflow would retry a bad path for minutes."""
    folder = db_path.parent
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        what = "not a folder" if blocker == folder else f"so the folder {folder} cannot be created"
        raise TrackingError(f"tracking store {uri}: {blocker} is a file, {what}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(f"tracking store {uri}: cannot create the folder {folder}: {exc.strerror}") from exc
    if db_path.exists() and not db_path.is_file():
        raise TrackingError(f"tracking store {uri}: {db_path} is a folder, not a SQLite file; "
                            "fix tracking_uri in mlflow.yaml / MLFLOW_TRACKING_URI")
    if not os.access(folder, os.W_OK) or (db_path.exists() and not os.access(db_path, os.W_OK)):
        raise TrackingError(f"tracking store {uri}: {db_path if db_path.exists() else folder} is not writable")
    if db_path.exists() and db_path.stat().st_size and _file_head(db_path, 16) != b"SQLite format 3\x00":
        raise TrackingError(f"tracking store {uri}: {db_path} is not a SQLite database; "
                            "fix tracking_uri in mlflow.yaml / MLFLOW_TRACKING_URI")


def _file_head(path: Path, size: int) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise TrackingError(f"tracking store: cannot read {path}: {exc.strerror}") from exc


def _probe_server(uri: str) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=5, context=_tls_context()) as response:
            if response.status != 200:
                raise TrackingError(f"tracking server {uri} answered {response.status} on /health")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(f"tracking server {uri} cannot be reached ({reason}); start it with "
                            "`gbreg server` or fix tracking_uri in mlflow.yaml / MLFLOW_TRACKING_URI") from exc
    _check_login(uri)


def _check_login(uri: str) -> None:
    """One read with the login MLflow will send (it reads MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD,
    or MLFLOW_TRACKING_TOKEN, itself): a refused login is a clear error before anything trains."""
    request = urllib.request.Request(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1")
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if user and password:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    elif token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=_tls_context()):
            return
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise TrackingError(login_refused_message(uri, user if password else None)) from exc
    except (urllib.error.URLError, OSError):
        pass  # /health answered: what went wrong here, the MLflow client reports in full


def _tls_context():
    """The certificate check MLflow's client makes on an https server: its CA bundle from
    MLFLOW_TRACKING_SERVER_CERT_PATH, none with MLFLOW_TRACKING_INSECURE_TLS=true, else the system's."""
    import ssl

    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        return ssl._create_unverified_context()
    cafile = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cafile) if cafile else None


def login_refused_message(uri: str, user: str | None) -> str:
    if user is None:
        return (f"tracking server {uri} requires a login: set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD in the environment (never in mlflow.yaml or the spec)")
    return (f"tracking server {uri} refused the login of {user!r}: wrong user name or password "
            "(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)")


def ensure_experiment(client, name: str, artifact_location: str | None, lock_path: Path | None) -> str:
    """The experiment's id, creating it (once, under the store's lock) if needed."""
    def get_or_create() -> str:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except Exception:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    try:
        if lock_path is not None:
            from filelock import FileLock

            with FileLock(str(lock_path), timeout=300):
                return retrying(get_or_create)
        return get_or_create()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise TrackingError(f"cannot create or open experiment {name!r} in the tracking store: {first}") from exc


# ---------------------------------------------------------------------- a tracking server that goes away

_log = logging.getLogger("gbreg")
MAX_SERVER_BACKOFF_S = 20.0  # the longest pause between two attempts to reach a server that is away


class TrackingServerAway(Exception):
    """The tracking server did not answer for ``server_wait_seconds``. Not a GbregError: the study stops
    as on any error of the store (the runs it can reach marked FAILED, the resume command printed)."""


class ServerClient:
    """An ``MlflowClient`` on a tracking server, with every call waiting for a server that is away.

    A call that meets the server away or overloaded (what :func:`server_unavailable` recognises) is
    retried with jittered exponential backoff for up to ``wait_seconds``, then raises
    :class:`TrackingServerAway`. After that give-up each call is tried once (marking the stopped
    study's runs must not wait again), until one is answered. ``create_run`` is made safe to retry.
    A refused login or a missing permission becomes a :class:`TrackingError` (exit status 2).
    """

    def __init__(self, client, uri: str, wait_seconds: float, first_wait: float = 0.25):
        self._client = client
        self.uri = uri
        self.wait_seconds = wait_seconds
        self.first_wait = first_wait
        self._gave_up = False
        self._away_since: float | None = None  # when the warning of the current outage was logged

    def __getattr__(self, name: str):
        if name == "_client":  # not set yet (a copy being built): no recursion through this method
            raise AttributeError(name)
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def waiting(*args, **kwargs):
            return self.call(lambda: attribute(*args, **kwargs))
        return waiting

    def call(self, request: Callable[[], T]) -> T:
        """``request()``, waiting for the server as the class says."""
        if self._gave_up:
            result = self._answer(request)
        else:
            doubling = tenacity.wait_exponential(multiplier=self.first_wait, max=MAX_SERVER_BACKOFF_S)
            retryer = tenacity.Retrying(
                retry=tenacity.retry_if_exception_type(_ServerUnavailable),
                stop=tenacity.stop_before_delay(self.wait_seconds),
                wait=lambda state: doubling(state) * (0.5 + random.random()),  # drivers must not retry in step
                before_sleep=self._log_waiting)
            try:
                result = retryer(self._answer, request)
            except tenacity.RetryError as exc:
                self._gave_up = True
                cause = exc.last_attempt.exception().__cause__
                raise TrackingServerAway(f"tracking server {self.uri} did not answer for "
                                         f"{_seconds(self.wait_seconds)} ({_reason(cause)})") from cause
        self._gave_up = False
        if self._away_since is not None:
            _log.warning("tracking server %s answers again, after %.0f s", self.uri, time.monotonic() - self._away_since)
            self._away_since = None
        return result

    def _answer(self, request: Callable[[], T]) -> T:
        try:
            return request()
        except Exception as exc:
            if server_unavailable(exc):
                if self._gave_up:
                    raise TrackingServerAway(f"tracking server {self.uri} does not answer ({_reason(exc)})") from exc
                raise _ServerUnavailable() from exc
            status = http_status(exc)
            if status in (401, 403):
                raise TrackingError(self._refusal(status, exc)) from exc
            raise

    def _refusal(self, status: int, exc: BaseException) -> str:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if status == 401:
            return login_refused_message(self.uri, user if os.environ.get("MLFLOW_TRACKING_PASSWORD") else None)
        return (f"tracking server {self.uri} denied {user or 'this user'!r} permission ({_reason(exc)}): "
                "writing a study's runs needs EDIT permission on its experiment; ask an admin of the server")

    def _log_waiting(self, state: tenacity.RetryCallState) -> None:
        if self._away_since is None:
            self._away_since = time.monotonic()
            cause = state.outcome.exception().__cause__
            _log.warning("tracking server %s is not answering (%s); waiting up to %s for it (server_wait_seconds "
                         "in mlflow.yaml)", self.uri, _reason(cause), _seconds(self.wait_seconds))

    def create_run(self, experiment_id: str, start_time: int | None = None, tags: dict | None = None,
                   run_name: str | None = None):
        """``MlflowClient.create_run``, safe to retry: an attempt whose answer was lost may have created the
        run, so before trying again the run this call would create (same start time, name and tags) is
        looked up and reused. (An attempt the server finishes only after the lookup, past the request
        timeout, can still leave a copy RUNNING; the next run of the study marks it FAILED.)"""
        start_time = start_time or int(time.time() * 1000)
        tags = {key: str(value) for key, value in (tags or {}).items()}
        tried = []

        def create():
            if tried:
                earlier = self._runs_created(experiment_id, start_time, tags, run_name)
                if earlier:
                    return earlier[0]
            tried.append(True)
            return self._client.create_run(experiment_id, start_time=start_time, tags=tags, run_name=run_name)
        return self.call(create)

    def _runs_created(self, experiment_id: str, start_time: int, tags: dict, run_name: str | None) -> list:
        runs = self._client.search_runs([experiment_id], filter_string=f"attributes.start_time = {start_time}",
                                        max_results=1000)
        return [run for run in runs if (run_name is None or run.info.run_name == run_name)
                and all(run.data.tags.get(key) == value for key, value in tags.items())]


class _ServerUnavailable(Exception):
    """An attempt met the server away (the MLflow error is its ``__cause__``): what ServerClient retries."""


def server_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the tracking server is away or overloaded, as MLflow's REST client reports it:
    a refused or cut connection, a timeout, or HTTP 408/429/5xx once urllib3's own retries are spent arrive
    as an MlflowException whose context is the requests error; another 5xx as its status code."""
    import requests

    transient = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError,
                 requests.exceptions.ChunkedEncodingError, ConnectionError, TimeoutError)
    if any(isinstance(link, transient) for link in _chain(exc)):
        return True
    status = http_status(exc)
    return status is not None and status >= 500


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an error the tracking server answered with, or None."""
    from mlflow.exceptions import MlflowException, RestException

    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):  # requests.HTTPError
        return int(response.status_code)
    if isinstance(exc, RestException):  # the server's JSON error: its code says the status
        return exc.get_http_status_code()
    if isinstance(exc, MlflowException):  # any other answer: "... failed with error code 503 != 200 ..."
        found = re.search(r"failed with error code (\d{3})", str(exc))
        return int(found.group(1)) if found else None
    return None


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _reason(exc: BaseException | None) -> str:
    """The innermost error of the chain, short: what actually went wrong (connection refused, a 503)."""
    links = list(_chain(exc))
    if not links:
        return "no answer"
    last = links[-1]
    while last.args and isinstance(last.args[-1], BaseException):  # urllib3's ProtocolError(text, error)
        last = last.args[-1]
    text = " ".join(str(last).split())
    text = text if len(text) <= 160 else text[:160].rsplit(" ", 1)[0] + " …"
    return f"{type(last).__name__}: {text}" if text else type(last).__name__


def _seconds(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 120 else f"{seconds / 60:.3g} min"
