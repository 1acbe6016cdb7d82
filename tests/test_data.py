"""Data sets: the fingerprint that tells whether two runs saw the same data, and task inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gbreg.data import infer_task, load_dataset
from gbreg.errors import DataError
from gbreg.spec import DataSpec


def _csv(folder: Path, frame: pd.DataFrame, name: str = "d.csv") -> DataSpec:
    frame.to_csv(folder / name, index=False)
    return DataSpec(source="file", path=name, target="y")


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"a": rng.normal(size=50), "b": rng.integers(0, 3, 50).astype(float),
                         "y": rng.normal(size=50)})


def test_fingerprint_is_stable_and_sees_every_change(tmp_path):
    frame = _frame()
    first = load_dataset(_csv(tmp_path, frame), None, 0, tmp_path).fingerprint()
    assert load_dataset(_csv(tmp_path, frame), None, 0, tmp_path).fingerprint() == first
    assert len(first) == 64
    changed_value = frame.copy()
    changed_value.loc[3, "a"] += 1e-9
    renamed = frame.rename(columns={"b": "c"})
    reordered = frame.iloc[::-1]
    target = frame.assign(y=frame["y"] + 1)
    for variant in (changed_value, renamed, reordered, target):
        assert load_dataset(_csv(tmp_path, variant), None, 0, tmp_path).fingerprint() != first


def test_bundled_and_generated_data_have_fixed_fingerprints():
    diabetes = load_dataset(DataSpec(source="sklearn", name="diabetes"), None, 0, Path("."))
    assert diabetes.fingerprint() == load_dataset(DataSpec(source="sklearn", name="diabetes"), None, 0,
                                                  Path(".")).fingerprint()
    spec = DataSpec(source="synthetic", generator="regression", params={"n_samples": 100, "n_features": 5})
    assert load_dataset(spec, None, 0, Path(".")).fingerprint() == load_dataset(spec, None, 0, Path(".")).fingerprint()
    assert load_dataset(spec, None, 0, Path(".")).fingerprint() != load_dataset(spec, None, 1, Path(".")).fingerprint()


@pytest.mark.parametrize("values, task", [
    ([0.5, 1.5, 2.5, 3.5], "regression"),
    ([0, 1, 0, 1], "binary"),
    (["a", "b", "c", "a"], "multiclass"),
    ([0.5, 1.5, 0.5, 1.5], "binary"),  # two distinct values: a label, even as floats
])
def test_infer_task(values, task):
    assert infer_task(pd.Series(values)) == task


def test_integer_labels_with_a_classification_task(tmp_path):
    frame = _frame().assign(y=np.arange(50) % 3)
    dataset = load_dataset(_csv(tmp_path, frame), "multiclass", 0, tmp_path)
    assert dataset.task == "multiclass" and dataset.classes == ["0", "1", "2"]
    with pytest.raises(DataError, match=r"task: binary but target column 'y' has 3 classes; use task: multiclass"):
        load_dataset(_csv(tmp_path, frame), "binary", 0, tmp_path)


def test_infinite_feature_values_are_left_to_the_library(tmp_path):
    """LightGBM trains with inf; XGBoost refuses it: a per-library outcome, not a data error."""
    frame = _frame()
    frame.loc[0, "a"] = np.inf
    dataset = load_dataset(_csv(tmp_path, frame), None, 0, tmp_path)
    assert np.isinf(dataset.X["a"]).sum() == 1
