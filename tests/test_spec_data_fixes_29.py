"""Fixes from the testers' round 29 (spec and data): YAML 1.2 numbers, a `where:` on a column the results
will not have, the parameter check's row sample keeping every class, LightGBM's subsample with
bagging_freq 0, and parameters that cannot take effect given the spec's other settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gbreg.errors import SpecError, TrackingError
from gbreg.spec.validation import load_spec, validate_spec
from gbreg.spec.yaml_file import load_yaml


def problems_of(raw: dict, base_dir: Path | None = None) -> list[str]:
    """The spec's problems as "key.path: message" lines (none: an empty list)."""
    try:
        validate_spec(raw, source="s.yaml", base_dir=base_dir)
    except SpecError as exc:
        return [f"{path}: {message}" for path, message in exc.problems]
    return []


# ----------------------------------------------------------------------------------------------------
# 1. numbers as YAML 1.2 reads them: 010 is 10, 1:5 is text (YAML 1.1: 8 and 65)


@pytest.mark.parametrize("text, value", [
    ("010", 10), ("-010", -10), ("+7", 7), ("00", 0), ("0o10", 8), ("0x10", 16), ("0xfF", 255),
    ("1:5", "1:5"), ("1:30.5", "1:30.5"), ("0b101", "0b101"), ("1_000", "1_000"), ("1_000.5", "1_000.5"),
    ("10", 10), ("1.5", 1.5), ("1e3", 1000.0), (".inf", float("inf")), ("yes", True),
])
def test_numbers_are_read_as_yaml_1_2_reads_them(text, value):
    read = load_yaml(f"x: {text}")[0]["x"]
    assert read == value and type(read) is type(value)
    assert yaml.safe_load("x: 010") == {"x": 8}  # other readers of YAML in the process keep YAML 1.1


def test_octal_and_base_60_look_alikes_in_a_spec_file_and_in_overrides(tmp_path):
    path = tmp_path / "octal.yaml"  # the tester's file: trained as n_estimators 8, max_depth 65, reg_alpha 8
    path.write_text("name: oct\nseed: 0\ndata: {source: sklearn, name: diabetes}\n"
                    "models:\n  xgboost: {n_estimators: 010, max_depth: 1:5}\nsweep:\n  reg_alpha: [0, 010]\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems == [("models.xgboost.max_depth", "must be a whole number ≥ 0, got '1:5'")]
    spec = load_spec(path, overrides=["models.xgboost.max_depth=0o3", "models.xgboost.learning_rate=0.3"])
    assert spec.models["xgboost"]["n_estimators"] == 10 and spec.models["xgboost"]["max_depth"] == 3
    assert spec.sweep_values() == {"reg_alpha": [0, 10]}
    spec = load_spec(path, overrides=["models.xgboost.max_depth=04", "models.xgboost.n_estimators=0x10"])
    assert spec.models["xgboost"]["max_depth"] == 4 and spec.models["xgboost"]["n_estimators"] == 16
    for typed in ("1:30", "0b101"):
        with pytest.raises(SpecError) as caught:
            load_spec(path, overrides=["models.xgboost.max_depth=3", f"models.xgboost.n_estimators={typed}"])
        assert caught.value.problems == [("models.xgboost.n_estimators",
                                          f"must be a whole number ≥ 1 and ≤ 100000, got {typed!r}")]


def test_mlflow_yaml_and_suite_files_read_numbers_the_same_way(tmp_path, monkeypatch):
    from gbreg.spec.tracking_config import load_tracking_config
    from gbreg.suite.spec import load_suite

    config = tmp_path / "mlflow.yaml"
    config.write_text("tracking_uri: sqlite:///mlflow.db\nui: {port: 05000}\n")
    assert load_tracking_config(config).ui_port == 5000  # YAML 1.1: octal 2560
    config.write_text("tracking_uri: sqlite:///mlflow.db\nui: {port: '1:5'}\n")
    with pytest.raises(TrackingError, match="ui.port"):
        load_tracking_config(config)
    config.write_text("tracking_uri: sqlite:///mlflow.db\nui: {port: 1:23}\n")  # YAML 1.1: 83, a valid port
    with pytest.raises(TrackingError, match=r"ui.port: must be a whole number from 1 to 65535, got '1:23'"):
        load_tracking_config(config)

    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\nseed: 010\nstudy:\n  models: {xgboost: {n_estimators: 010}}\n"
                     "  sweep: {reg_alpha: [0, 010]}\n"
                     "  expect: [{metric: zero_leaf_fraction, trend: increasing, along: reg_alpha}]\n"
                     "datasets:\n  - {name: d, data: {source: sklearn, name: diabetes}}\n")
    (study,) = (entry.spec for entry in load_suite(suite).studies)
    assert study.seed == 10 and study.models["xgboost"]["n_estimators"] == 10
    assert study.sweep_values() == {"reg_alpha": [0, 10]}
