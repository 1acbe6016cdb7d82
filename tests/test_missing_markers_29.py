"""Missing values in data files: ``na_values`` means the same in a Parquet file as in the CSV holding the same
table, and a target label a CSV reader takes for missing (NA for North America) is named in the error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing

from gbreg.data import load_dataset
from gbreg.spec.schema import DataSpec


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 120
    frame = pd.DataFrame({"x": rng.normal(size=n).round(3), "sentinel": rng.integers(0, 50, n).astype("float64"),
                          "code": rng.choice(["a", "b", "c"], n), "y": rng.normal(size=n).round(3)})
    frame.loc[::10, "sentinel"] = -99.0
    text = frame["x"].astype(str)
    text[::15] = "?"
    frame["as_text"] = text  # numbers written as text, '?' where unknown
    return frame


def _both(tmp_path, na_values):
    frame = _table()
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    return [load_dataset(DataSpec(source="file", path=name, target="y", na_values=na_values), None, 0, tmp_path)
            for name in ("t.csv", "t.parquet")]


def test_parquet_blanks_na_values_as_the_csv_does(tmp_path):
    csv, parquet = _both(tmp_path, ["?", "-99"])
    # the numeric sentinel is blanked in the Parquet file too (it used to stay -99 in 12 rows)
    assert parquet.X["sentinel"].isna().sum() == 12 and not (parquet.X["sentinel"] == -99).any()
    # the text column left with numbers is numeric (it used to become a categorical of 112 levels)
    assert pd.api.types.is_float_dtype(parquet.X["as_text"]) and parquet.X["as_text"].isna().sum() == 8
    pandas.testing.assert_frame_equal(csv.X, parquet.X)
    assert csv.fingerprint() == parquet.fingerprint()


def test_a_target_label_read_as_missing_is_named(tmp_path):
    import pytest

    from gbreg.errors import DataError

    rng = np.random.default_rng(0)
    region = rng.choice(["NA", "EU", "APAC"], 90)
    region[:3] = "EU"
    pd.DataFrame({"x": rng.normal(size=90), "region": region}).to_csv(tmp_path / "r.csv", index=False)
    n_na = int((region == "NA").sum())
    with pytest.raises(DataError) as error:
        load_dataset(DataSpec(source="file", path="r.csv", target="region"), None, 0, tmp_path)
    assert (f"target column 'region' has {n_na} missing values ({n_na} are the text 'NA', which a CSV reader "
            "takes for a missing value; if they are labels, rename them in the file") in str(error.value)


def test_a_date_column_as_the_target_is_named_as_such(tmp_path):
    import pytest

    from gbreg.errors import DataError

    dates = pd.date_range("1967-07-01", periods=60, freq="MS").strftime("%Y-%m-%d")
    pd.DataFrame({"date": dates, "x": np.arange(60.0)}).to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(DataError) as error:
        load_dataset(DataSpec(source="file", path="e.csv", target="date"), None, 0, tmp_path)
    assert ("target column 'date' has a different value in each of its 60 rows ('1967-07-01', '1967-08-01', "
            in str(error.value))
    assert "like an identifier or a date" in str(error.value) and "check data.target" in str(error.value)


def test_a_parquet_file_has_no_header_line_to_count_rows_after(tmp_path):
    import pytest

    from gbreg.errors import DataError

    frame = _table()
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    frame.to_csv(tmp_path / "t.csv", index=False)
    messages = []
    for name in ("t.parquet", "t.csv"):
        with pytest.raises(DataError) as error:  # '?' in a column of numbers, with no na_values
            load_dataset(DataSpec(source="file", path=name, target="y"), None, 0, tmp_path)
        messages.append(str(error.value))
    assert "column 'as_text' holds numbers except in 8 rows: row 1 '?'" in messages[0]
    assert "after the header" not in messages[0]
    assert "(row 1 is the first after the header)" in messages[1]


def test_generated_regression_refuses_more_informative_features_than_features():
    import pytest

    from gbreg.errors import DataError

    spec = DataSpec(source="synthetic", generator="regression", params={"n_samples": 50, "n_features": 5,
                                                                         "n_informative": 10})
    with pytest.raises(DataError) as error:
        load_dataset(spec, None, 0, Path("."))
    assert str(error.value) == ("data.params: n_informative (10) is more than n_features (5); make_regression would "
                                "use 5: lower n_informative or raise n_features")
