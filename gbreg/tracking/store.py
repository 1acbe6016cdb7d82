"""Opening the MLflow tracking store safely, before any training.

- A local SQLite store is created and migrated once, under a file lock: processes that open a fresh
  store at the same moment otherwise race in MLflow's schema migration and corrupt it.
- Writes retry with backoff while SQLite reports the database as locked.
- A tracking server is probed first, so an unreachable one (or a refused login) is a clear error, not a hang.
- Once a study runs, a tracking server that stops answering is waited for
  (:class:`gbreg.tracking.server_client.ServerClient`).
"""

from __future__ import annotations

import base64
import os
import random
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import tenacity

from gbreg.errors import TrackingError
from gbreg.spec.tracking_config import TrackingConfig
from gbreg.tracking.server_client import ServerClient, login_refused_message
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


def import_mlflow(config: TrackingConfig | None = None) -> None:
    """Import what opening and writing the store needs (about 1 s), with no effect on the store: done
    while a worker loads the data or checks the library parameters, before the store may be created
    (``config`` None: not known yet, so an SQL store's modules too)."""
    import mlflow.data  # noqa: F401 - the parent run's dataset input
    import mlflow.entities  # noqa: F401
    from mlflow.tracking import MlflowClient  # noqa: F401

    if config is None or config.sqlite_path is not None:
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


def import_mlflow_meanwhile(config: TrackingConfig | None = None) -> Callable[[], None]:
    """Start :func:`import_mlflow` (for ``config``) on a thread of its own; returns the function that waits
    for it (and raises what the import raised). The study's thread so hands the workers their data set
    and first trials as soon as it has them, instead of after the import (about 1 s of CPU)."""
    import threading

    failure: list[BaseException] = []

    def import_or_keep_failure() -> None:
        try:
            import_mlflow(config)
        except BaseException as exc:  # noqa: BLE001 - raised again by wait(), in the study's thread
            failure.append(exc)

    thread = threading.Thread(target=import_or_keep_failure, name="gbreg-import-mlflow", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if failure:
            raise failure[0]

    return wait


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
