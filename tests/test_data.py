"""Data sets: the fingerprint that tells whether two runs saw the same data, and task inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gbreg.data import infer_task, load_dataset
from gbreg.errors import DataError
from gbreg.spec.schema import DataSpec


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


def test_missing_feature_values_are_kept(tmp_path):
    """NaN in a feature is a missing value both libraries handle: not an error (unlike inf, below)."""
    frame = _frame()
    frame.loc[0, "a"] = np.nan
    dataset = load_dataset(_csv(tmp_path, frame), None, 0, tmp_path)
    assert np.isnan(dataset.X["a"]).sum() == 1


# ----------------------------------------------------------------------------------------------------
# duplicate column names: pandas renames a repeated CSV header (a, a -> a, a.1) without a word


@pytest.mark.parametrize("header, repeated", [
    ("a,a,b,y", "'a' (columns 1, 2)"),
    ("b,a,y,a,a", "'a' (columns 2, 4, 5)"),
    ("a ,b, a,y", "'a' (columns 1, 3)"),  # equal once stripped, as gbreg strips names
    ("a,b,y,b,a", "'a' (columns 1, 5); 'b' (columns 2, 4)"),
])
def test_duplicate_csv_columns_are_rejected_naming_them(tmp_path, header, repeated):
    rows = "\n".join(",".join(str(i + j) for j in range(header.count(",") + 1)) for i in range(20))
    (tmp_path / "d.csv").write_text(f"{header}\n{rows}\n")
    with pytest.raises(DataError) as error:
        load_dataset(DataSpec(source="file", path="d.csv", target="y"), None, 0, tmp_path)
    assert str(error.value) == (f"{tmp_path / 'd.csv'}: duplicate column names: {repeated}; "
                                "give each column a unique name")


def test_duplicate_tsv_and_parquet_columns_are_rejected(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "d.tsv").write_text("x\tx\ty\n" + "".join(f"{i}\t{i * 2}\t{i % 5}\n" for i in range(20)))
    with pytest.raises(DataError, match=r"d\.tsv: duplicate column names: 'x' \(columns 1, 2\)"):
        load_dataset(DataSpec(source="file", path="d.tsv", target="y"), None, 0, tmp_path)
    table = pa.Table.from_arrays([pa.array(np.arange(20.0)), pa.array(np.arange(20.0) ** 2),
                                  pa.array(np.arange(20.0) % 3)], names=["x", "y", "x"])
    pq.write_table(table, tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"d\.parquet: duplicate column names: 'x' \(columns 1, 3\)"):
        load_dataset(DataSpec(source="file", path="d.parquet", target="y"), None, 0, tmp_path)


def test_column_named_like_a_renamed_duplicate_is_fine(tmp_path):
    frame = _frame().rename(columns={"b": "a.1"})
    assert list(load_dataset(_csv(tmp_path, frame), None, 0, tmp_path).X.columns) == ["a", "a.1"]


# ----------------------------------------------------------------------------------------------------
# values the libraries would stop on (with a C++ stack trace, blamed on a parameter): found at load time


def _with(column: str, row: int, value) -> pd.DataFrame:
    frame = _frame()
    frame[column] = frame[column].astype(object) if isinstance(value, str) else frame[column]
    frame.loc[row, column] = value
    return frame


NOTE = "(row 1 is the first after the header)"


@pytest.mark.parametrize("frame, task, message", [
    (_with("a", 4, np.inf), None,
     f"column 'a' holds inf in row 5 {NOTE}; use a finite number, or leave the cell empty for a missing value"),
    (_with("b", 0, -np.inf), None, f"column 'b' holds -inf in row 1 {NOTE}; use a finite number"),
    (_with("y", 7, np.inf), None, f"target column 'y' holds inf in row 8 {NOTE}; use a finite number or drop the row"),
    (_with("a", 2, 1e39), None, f"column 'a' holds 1e+39 in row 3 {NOTE}, beyond the float32 range (±3.4e+38) "
                                "that XGBoost and LightGBM train in; rescale the column"),
    (_with("y", 9, -5e40).assign(a=lambda f: f["a"].where(f.index != 30, np.inf)), None,
     f"column 'a' holds inf in row 31 {NOTE}"),  # features first: the column, then its first row
    (_with("y", 9, -5e40), None, f"target column 'y' holds -5e+40 in row 10 {NOTE}, beyond the float32 range"),
    (_frame().assign(y=2.5), "regression",
     "target column 'y' is constant (2.5 in every row); a regression needs a target that varies"),
    (_frame().assign(y=7), None,  # one number is a constant target, whatever the task inference
     "target column 'y' is constant (7 in every row); a regression needs a target that varies"),
    (_frame().assign(y=7), "binary", "target column 'y' has one class ('7'); classification needs at least two"),
    (_frame().assign(y=["spam"] * 50), "binary", "target column 'y' has one class ('spam'); "
                                                 "classification needs at least two"),
    (_frame().assign(y=["a", "b"] * 25), "regression", "task is regression but target column 'y' is not "
                                                       "numeric (e.g. 'a'); use task: binary or multiclass"),
])
def test_bad_values_are_reported_against_the_data_with_column_and_row(tmp_path, frame, task, message):
    with pytest.raises(DataError) as error:
        load_dataset(_csv(tmp_path, frame), task, 0, tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'd.csv'}: {message}"), str(error.value)


def test_rows_past_the_first_bad_one_are_counted(tmp_path):
    frame = _frame()
    frame.loc[[3, 10, 20], "a"] = [np.inf, -np.inf, np.inf]
    with pytest.raises(DataError, match=r"column 'a' holds inf in row 4 \(and 2 more rows\)"):
        load_dataset(_csv(tmp_path, frame), None, 0, tmp_path)


def test_largest_float32_values_are_accepted(tmp_path):
    limit = float(np.finfo(np.float32).max)
    frame = _frame().assign(a=lambda f: f["a"].where(f.index != 0, -limit))
    assert load_dataset(_csv(tmp_path, frame), None, 0, tmp_path).X["a"].min() == -limit


@pytest.mark.parametrize("name, refused", [("a[1]", "[ ]"), ("x<3", "<"), ('say "hi"', '"'),
                                           ("t:s", ":"), ("a,b", ","), ("{k}", "{ }")])
def test_feature_names_the_libraries_refuse_are_rejected(tmp_path, name, refused):
    frame = _frame().rename(columns={"a": name})
    with pytest.raises(DataError) as error:
        load_dataset(_csv(tmp_path, frame), None, 0, tmp_path)
    assert str(error.value) == (f"{tmp_path / 'd.csv'}: column name {name!r} contains {refused}, which XGBoost or "
                                "LightGBM refuse in feature names (any of [ ] < \" , : { }); rename the column")


def test_data_a_library_rejects_is_blamed_on_the_data_without_a_stack_trace():
    """Past the load-time checks, a library that rejects even its defaults on the data blames the data,
    not the first parameter, and XGBoost's C++ stack trace is cut from the message."""
    from gbreg.run.param_check import ParamCheck, library_param_problems

    frame = _frame()
    X = frame[["a", "b"]].assign(a=lambda f: f["a"].where(f.index != 3, np.inf))
    check = ParamCheck(X, frame["y"].to_numpy(), "regression", 0, "rmse",
                       {"xgboost": {"n_estimators": 5, "max_depth": 3}}, {"reg_alpha": [0, 1]})
    ((where, message),) = library_param_problems(check)
    assert where == "data"
    assert message.startswith("xgboost rejects the data: ") and "inf" in message
    assert "Stack trace" not in message and "[bt]" not in message and "libxgboost" not in message


def test_clean_message_cuts_a_real_xgboost_stack_trace():
    import xgboost

    from gbreg.models.boosters import declaration

    with pytest.raises(xgboost.core.XGBoostError) as error:
        xgboost.train({"tree_method": "exact"}, xgboost.QuantileDMatrix(np.ones((4, 2)), np.arange(4.0)), 1)
    assert "Stack trace:" in str(error.value) and "[bt]" in str(error.value)
    assert declaration("xgboost").clean_message(str(error.value)) == "Only `hist` tree method can use `QuantileDMatrix`."
