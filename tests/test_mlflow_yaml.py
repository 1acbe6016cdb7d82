"""``mlflow.yaml`` checked by a pydantic model: every mistake at once, each naming the key path and
what was expected, exit status 2, and nothing is created."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gbreg.cli import app
from gbreg.spec.tracking_config import load_tracking_config

BAD = [
    ("unknown-top", "tracking_uri: sqlite:///mlflow.db\nfoo: 1\nbar: 2\n",
     "unknown keys ['bar', 'foo']; expected tracking_uri, artifact_location, ui, executor, server_wait_seconds"),
    ("unknown-ui", "ui: {port: 5001, hots: x}\n", "ui: unknown keys ['hots']; expected host, port"),
    ("ui-not-mapping", "ui: 5000\n", "ui: expected a mapping with host and port, got 5000"),
    ("executor-not-mapping", "executor: dask\n", "executor: expected a mapping with kind and scheduler, got 'dask'"),
    ("executor-kind", "executor: {kind: ray}\n", "executor.kind: expected 'local' or 'dask', got 'ray'"),
    ("scheduler-blank", "executor: {scheduler: ' '}\n",
     "executor.scheduler: expected an address like tcp://host:8786, got ' '"),
    ("scheduler-number", "executor: {scheduler: 8786}\n",
     "executor.scheduler: expected an address like tcp://host:8786, got 8786"),
    ("scheduler-without-dask", "executor: {kind: local, scheduler: tcp://h:8786}\n",
     "executor.scheduler is set but executor.kind is 'local'; use kind: dask"),
    ("uri-list", "tracking_uri: [a]\n", "tracking_uri: expected a URI or a path, got ['a']"),
    ("not-a-mapping", "- a\n", "expected a mapping with tracking_uri, artifact_location, ui"),
    ("key-twice", "tracking_uri: sqlite:///a.db\nui: {port: 5001}\ntracking_uri: sqlite:///b.db\n",
     "line 3: 'tracking_uri' is given twice (first on line 1); keep one"),
]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("GBREG_MLFLOW_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("text, expected", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_bad_mlflow_yaml_is_one_line_naming_file_key_and_expectation(folder, text, expected):
    config = folder / "mlflow.yaml"
    config.write_text(text)
    result = CliRunner().invoke(app, ["results", "any"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {config}: {expected}"
    assert sorted(p.name for p in folder.iterdir()) == ["mlflow.yaml"]


def test_valid_settings_are_read_as_before(folder):
    (folder / "mlflow.yaml").write_text("tracking_uri: ''\nartifact_location: null\n"
                                        "ui: {host: 0.0.0.0, port: 5001}\nexecutor: {scheduler: tcp://h:8786}\n")
    config = load_tracking_config()
    assert config.tracking_uri == f"sqlite:///{folder.resolve() / 'mlflow.db'}"  # empty means the default
    assert config.uri_source == f"the default: {folder / 'mlflow.yaml'} sets no tracking_uri"
    assert config.artifact_location is None  # null: the server chooses
    assert (config.ui_host, config.ui_port) == ("0.0.0.0", 5001)
    assert (config.executor, config.scheduler) == ("dask", "tcp://h:8786")  # a scheduler alone means dask


def test_numbers_are_read_as_in_the_specs(folder):
    (folder / "mlflow.yaml").write_text("server_wait_seconds: 3e2\n")  # YAML 1.1 alone would read text
    assert load_tracking_config().server_wait_seconds == 300.0


def test_without_a_file_the_defaults_apply(folder):
    config = load_tracking_config()
    assert config.artifact_location == (folder.resolve() / "mlartifacts").as_uri()
    assert (config.ui_host, config.ui_port, config.executor, config.scheduler) == ("127.0.0.1", 5000, "local", None)
