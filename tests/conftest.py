"""Shared fixtures: a temporary MLflow store per test (real SQLite, no mocks) and a small-study runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A fresh embedded store: ``mlflow.yaml`` in a temp folder that is also the working directory."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("GBREG_MLFLOW_CONFIG", raising=False)
    (tmp_path / "mlflow.yaml").write_text(yaml.safe_dump({
        "tracking_uri": "sqlite:///mlflow.db", "artifact_location": "mlartifacts",
        "ui": {"host": "127.0.0.1", "port": 5000}}))
    monkeypatch.chdir(tmp_path)
    from gbreg.spec.tracking_config import load_tracking_config

    return load_tracking_config()


def write_spec(folder: Path, spec: dict, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def small_spec(**overrides) -> dict:
    """A quick regression study: diabetes, both libraries, 3 x 2 grid, 20 rounds."""
    spec = {
        "name": "small",
        "seed": 0,
        "data": {"source": "sklearn", "name": "diabetes"},
        "evaluation": {"split": "holdout", "test_size": 0.25, "metric": "rmse"},
        "models": {"xgboost": {"n_estimators": 20, "max_depth": 3, "learning_rate": 0.3},
                   "lightgbm": {"n_estimators": 20, "num_leaves": 7, "learning_rate": 0.3}},
        "sweep": {"reg_alpha": [0, 1, 100], "reg_lambda": [0, 10]},
    }
    spec.update(overrides)
    return spec


def study_in_temp_store(folder: Path, spec: dict):
    """Run ``spec`` with ``gbreg.run_study`` into an embedded store in ``folder`` (for module-scoped
    fixtures, which cannot use ``tracking``); yields ``(outcome, client, folder)``."""
    from gbreg.run.study import run_study
    from gbreg.spec.tracking_config import load_tracking_config
    from gbreg.spec.validation import validate_spec
    from gbreg.tracking.store import open_store

    (folder / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": "sqlite:///mlflow.db",
                                                        "artifact_location": "mlartifacts"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("GBREG_MLFLOW_CONFIG", str(folder / "mlflow.yaml"))
        patch.chdir(folder)
        config = load_tracking_config()
        outcome = run_study(validate_spec(spec, base_dir=folder), jobs=1, verbosity=-1, config=config)
        yield outcome, open_store(config), folder


def shared_dataset(name: str) -> Path:
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"{path} is absent (real CSVs live in ../shared/datasets/, never in the repo)")
    return path


os.environ.setdefault("MPLBACKEND", "Agg")
