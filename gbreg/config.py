"""Tracking configuration: ``mlflow.yaml`` (tracking URI, artifact location, UI host and port).

The file is looked up in the current directory and its parents; ``GBREG_MLFLOW_CONFIG`` names one
explicitly. Relative paths in it are relative to the file. ``MLFLOW_TRACKING_URI`` overrides
``tracking_uri``. Without any file, the embedded store lives in the current directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from gbreg.errors import TrackingError

CONFIG_FILE = "mlflow.yaml"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_ARTIFACT_LOCATION = "mlartifacts"


@dataclass(frozen=True)
class TrackingConfig:
    tracking_uri: str
    artifact_location: str | None  # a URI; None lets the tracking server choose
    ui_host: str = "127.0.0.1"
    ui_port: int = 5000
    config_path: Path | None = None
    executor: str = "local"  # executor.kind: where `gbreg run` trains by default (local | dask)
    scheduler: str | None = None  # executor.scheduler: a Dask scheduler address, tcp://host:8786
    uri_source: str = ""  # where tracking_uri came from, for messages that name the store

    @property
    def store_description(self) -> str:
        """The store and where its address came from: what a "not found" message names."""
        return f"{self.tracking_uri}" + (f", {self.uri_source}" if self.uri_source else "")

    @property
    def is_local_sqlite(self) -> bool:
        return self.tracking_uri.startswith("sqlite:///")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_local_sqlite:
            return None
        return Path(self.tracking_uri.removeprefix("sqlite:///"))

    def new_sqlite_store(self) -> bool:
        """A local SQLite store that does not exist yet (or is empty): no study can have runs in it."""
        path = self.sqlite_path
        return path is not None and (not path.exists() or path.stat().st_size == 0)

    @property
    def is_server(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))


def find_config_file(start: Path | None = None) -> Path | None:
    explicit = os.environ.get("GBREG_MLFLOW_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise TrackingError(f"GBREG_MLFLOW_CONFIG={explicit!r}: no such file")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def _resolve_local_uri(value: str, base: Path) -> str:
    """Make ``sqlite:///rel.db`` and plain paths absolute against ``base``; leave other URIs alone."""
    if value.startswith("sqlite:///"):
        path = Path(value.removeprefix("sqlite:///"))
        return "sqlite:///" + str(path if path.is_absolute() else (base / path).resolve())
    if "://" in value:
        return value
    path = Path(value)
    return (path if path.is_absolute() else (base / path).resolve()).as_uri()


def load_tracking_config(path: Path | None = None) -> TrackingConfig:
    path = path or find_config_file()
    raw: dict = {}
    base = Path.cwd()
    if path is not None:
        base = path.resolve().parent
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise TrackingError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise TrackingError(f"{path}: expected a mapping with tracking_uri, artifact_location, ui")
        unknown = set(raw) - {"tracking_uri", "artifact_location", "ui", "executor"}
        if unknown:
            raise TrackingError(f"{path}: unknown keys {sorted(unknown)}; expected tracking_uri, "
                                "artifact_location, ui, executor")
    uri = os.environ.get("MLFLOW_TRACKING_URI") or raw.get("tracking_uri") or DEFAULT_TRACKING_URI
    uri_source = ("from MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI")
                  else f"from {path}" if raw.get("tracking_uri")
                  else f"the default: no {CONFIG_FILE} in {base} or its parents" if path is None
                  else f"the default: {path} sets no tracking_uri")
    uri = _resolve_local_uri(str(uri), base)
    artifact = raw.get("artifact_location", DEFAULT_ARTIFACT_LOCATION)
    is_server = uri.startswith(("http://", "https://"))
    artifact_uri = None if (is_server or not artifact) else _resolve_local_uri(str(artifact), base)
    ui = raw.get("ui") or {}
    try:
        port = int(ui.get("port", 5000))
    except (TypeError, ValueError) as exc:
        raise TrackingError(f"{path}: ui.port must be an integer, got {ui.get('port')!r}") from exc
    if not 1 <= port <= 65535 or isinstance(ui.get("port"), float | bool):
        raise TrackingError(f"{path}: ui.port must be a whole number from 1 to 65535, got {ui.get('port')!r}")
    executor, scheduler = _executor_section(raw.get("executor"), path)
    return TrackingConfig(
        tracking_uri=uri,
        artifact_location=artifact_uri,
        ui_host=str(ui.get("host", "127.0.0.1")),
        ui_port=port,
        config_path=path,
        executor=executor,
        scheduler=scheduler,
        uri_source=uri_source,
    )


def _executor_section(section: object, path: Path | None) -> tuple[str, str | None]:
    """``executor: {kind: local | dask, scheduler: tcp://host:8786}``: the one place a project names its
    Dask cluster (``--executor``/``--scheduler`` override it). A scheduler alone implies ``dask``."""
    if section is None:
        return "local", None
    if not isinstance(section, dict):
        raise TrackingError(f"{path}: executor: expected a mapping with kind and scheduler, got {section!r}")
    unknown = set(section) - {"kind", "scheduler"}
    if unknown:
        raise TrackingError(f"{path}: executor: unknown keys {sorted(unknown)}; expected kind, scheduler")
    scheduler = section.get("scheduler")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise TrackingError(f"{path}: executor.scheduler: expected an address like tcp://host:8786, "
                            f"got {scheduler!r}")
    kind = section.get("kind", "dask" if scheduler else "local")
    if kind not in ("local", "dask"):
        raise TrackingError(f"{path}: executor.kind: expected 'local' or 'dask', got {kind!r}")
    if scheduler and kind != "dask":
        raise TrackingError(f"{path}: executor.scheduler is set but executor.kind is {kind!r}; use kind: dask")
    return kind, scheduler
