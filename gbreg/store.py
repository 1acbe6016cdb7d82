"""Opening the MLflow tracking store safely, before any training.

- A local SQLite store is created and migrated once, under a file lock: processes that open a fresh
  store at the same moment otherwise race in MLflow's schema migration and corrupt it.
- Writes retry with backoff while SQLite reports the database as locked.
- A tracking server is probed first, so an unreachable one is a clear error, not a hang.
"""

from __future__ import annotations

import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gbreg.config import TrackingConfig
from gbreg.errors import TrackingError

T = TypeVar("T")

LOCKED_MARKERS = ("database is locked", "database table is locked", "unable to open database file")


def retrying(call: Callable[[], T], attempts: int = 8, first_wait: float = 0.2) -> T:
    """Run ``call``, retrying with jittered backoff while the SQLite file is locked."""
    wait = first_wait
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - MLflow wraps SQLAlchemy errors in its own types
            if attempt == attempts - 1 or not any(m in str(exc).lower() for m in LOCKED_MARKERS):
                raise
            time.sleep(wait * (1 + random.random()))
            wait = min(wait * 2, 5.0)
    raise AssertionError("unreachable")


def open_store(config: TrackingConfig):
    """Return an ``MlflowClient`` on a store that exists, is migrated and answers."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    if config.is_server:
        _probe_server(config.tracking_uri)
    db_path = config.sqlite_path
    if db_path is not None:
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError(f"tracking store {config.tracking_uri}: cannot create {db_path.parent}: {exc}") from exc
        if not os.access(db_path.parent, os.W_OK) or (db_path.exists() and not os.access(db_path, os.W_OK)):
            raise TrackingError(f"tracking store {config.tracking_uri}: {db_path} is not writable")
    from mlflow.tracking import MlflowClient

    try:
        if db_path is not None:
            from filelock import FileLock

            with FileLock(str(db_path) + ".lock", timeout=300):
                client = MlflowClient(tracking_uri=config.tracking_uri)
                retrying(lambda: client.search_experiments(max_results=1))
        else:
            client = MlflowClient(tracking_uri=config.tracking_uri)
            client.search_experiments(max_results=1)
    except TrackingError:
        raise
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise TrackingError(f"tracking store {config.tracking_uri} cannot be opened: {first}") from exc
    return client


def _probe_server(uri: str) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status != 200:
                raise TrackingError(f"tracking server {uri} answered {response.status} on /health")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(f"tracking server {uri} cannot be reached ({reason}); start it with "
                            "`gbreg server` or fix tracking_uri in mlflow.yaml / MLFLOW_TRACKING_URI") from exc


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
        except Exception:  # noqa: BLE001 - another process created it first
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
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise TrackingError(f"cannot create or open experiment {name!r} in the tracking store: {first}") from exc
