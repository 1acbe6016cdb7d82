"""Tracking configuration: ``mlflow.yaml`` (tracking URI, artifact location, UI host and port, executor,
how long a driver waits for a tracking server that stops answering).

The file is looked up in the current directory and its parents; ``GBREG_MLFLOW_CONFIG`` names one
explicitly. Relative paths in it are relative to the file. ``MLFLOW_TRACKING_URI`` overrides
``tracking_uri``. Without any file, the embedded store lives in the current directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gbreg.errors import SpecError, TrackingError
from gbreg.spec.yaml_file import load_yaml

CONFIG_FILE = "mlflow.yaml"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_ARTIFACT_LOCATION = "mlartifacts"
DEFAULT_SERVER_WAIT_SECONDS = 300.0  # a server restart takes seconds; a few minutes cover a redeploy


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
    server_wait_seconds: float = DEFAULT_SERVER_WAIT_SECONDS  # a tracking server away: retry this long

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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class UiSection(_Section):
    host: str = "127.0.0.1"
    # strict, as a spec's numbers are: "5079", true and 5000.0 are not a port (lax int() would take them)
    port: int = Field(5000, ge=1, le=65535, strict=True)


class ExecutorSection(_Section):
    """``executor: {kind: local | dask, scheduler: tcp://host:8786}``: the one place a project names its
    Dask cluster (``--executor``/``--scheduler`` override it). A scheduler alone implies ``dask``."""

    kind: Literal["local", "dask"] | None = None
    scheduler: Annotated[str, Field(strict=True, pattern=r"\S")] | None = None


class MlflowYaml(_Section):
    """The keys of ``mlflow.yaml``; an empty tracking_uri means the default, a null artifact_location
    lets the server choose."""

    tracking_uri: str | None = None
    artifact_location: str | None = DEFAULT_ARTIFACT_LOCATION
    ui: UiSection | None = None
    executor: ExecutorSection | None = None
    server_wait_seconds: float = Field(DEFAULT_SERVER_WAIT_SECONDS, ge=0, le=86400, strict=True)  # not true, "60"


# What a key must hold, in the words an error shows (pydantic's own wording otherwise)
EXPECTED = {
    ("ui", "port"): "must be a whole number from 1 to 65535",
    ("executor",): "expected a mapping with kind and scheduler",
    ("executor", "kind"): "expected 'local' or 'dask'",
    ("executor", "scheduler"): "expected an address like tcp://host:8786",
    ("ui",): "expected a mapping with host and port",
    ("ui", "host"): "expected a host name or address",
    ("tracking_uri",): "expected a URI or a path",
    ("server_wait_seconds",): "must be a number of seconds from 0 to 86400",
    ("artifact_location",): "expected a URI or a path (null lets the tracking server choose)",
}


def load_tracking_config(path: Path | None = None) -> TrackingConfig:
    path = path or find_config_file()
    base = path.resolve().parent if path is not None else Path.cwd()
    settings = _read_config_file(path) if path is not None else MlflowYaml()
    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    uri = env_uri or settings.tracking_uri or DEFAULT_TRACKING_URI
    uri_source = ("from MLFLOW_TRACKING_URI" if env_uri
                  else f"from {path}" if settings.tracking_uri
                  else f"the default: no {CONFIG_FILE} in {base} or its parents" if path is None
                  else f"the default: {path} sets no tracking_uri")
    uri = _resolve_local_uri(uri, base)
    artifact = settings.artifact_location
    is_server = uri.startswith(("http://", "https://"))
    artifact_uri = None if (is_server or not artifact) else _resolve_local_uri(artifact, base)
    ui = settings.ui or UiSection()
    executor, scheduler = _executor_choice(settings.executor or ExecutorSection())
    return TrackingConfig(
        tracking_uri=uri,
        artifact_location=artifact_uri,
        ui_host=ui.host,
        ui_port=ui.port,
        config_path=path,
        executor=executor,
        scheduler=scheduler,
        uri_source=uri_source,
        server_wait_seconds=float(settings.server_wait_seconds),
    )


def _read_config_file(path: Path) -> MlflowYaml:
    """The file's settings; every mistake in it at once, as a spec's are, in one TrackingError."""
    try:
        raw, duplicates = load_yaml(path.read_text())  # the specs' loader: 3e2 is a number there too
        raw = raw or {}
    except yaml.YAMLError as exc:
        raise TrackingError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise TrackingError(f"{path}: expected a mapping with tracking_uri, artifact_location, ui")
    problems = [("", f"line {line}: {key!r} is given twice (first on line {first}); keep one")
                for key, first, line in sorted(duplicates, key=lambda duplicate: duplicate[2])]
    executor = raw.get("executor")
    if isinstance(executor, dict) and executor.get("scheduler") and executor.get("kind") == "local":
        problems.append(("", "executor.scheduler is set but executor.kind is 'local'; use kind: dask"))
    try:
        settings = MlflowYaml.model_validate(raw)
    except ValidationError as exc:
        problems += _problems(exc)
        settings = None
    if problems:  # worded and laid out as a spec's problems are (one line, or a count and a line each)
        raise TrackingError(str(SpecError(str(path), problems)))
    return settings


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    """One (key path, phrase) per mistake; unknown keys of one section are listed together, first."""
    unknown: dict[tuple, list[str]] = {}
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(loc[-1])
            continue
        expected = EXPECTED.get(loc, error["msg"])
        problems.append((".".join(loc), f"{expected}, got {error['input']!r}{_unquote_hint(error['input'])}"))
    for section, keys in reversed(unknown.items()):
        fields = list((_SECTIONS[section] if section else MlflowYaml).model_fields)
        problems.insert(0, (".".join(section), f"unknown keys {sorted(keys)}; expected {', '.join(fields)}"))
    return problems


def _unquote_hint(value: object) -> str:
    """A number in quotes is text, in mlflow.yaml as in a spec: say how to write it."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return f" (text: write the number without quotes, {value.strip()})"


_SECTIONS = {("ui",): UiSection, ("executor",): ExecutorSection}


def _executor_choice(section: ExecutorSection) -> tuple[str, str | None]:
    """The executor kind and scheduler address: a scheduler alone implies ``dask`` (one with kind: local is
    refused when the file is read)."""
    return section.kind or ("dask" if section.scheduler else "local"), section.scheduler
