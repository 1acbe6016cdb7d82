"""numeric_columns: which of MLflow's text columns become numbers."""

import numpy as np
import pandas as pd

from gbreg.tracking.run_table import numeric_columns


def test_columns_of_numbers_convert_and_any_text_keeps_a_column_as_text():
    frame = pd.DataFrame({
        "reg_alpha": ["10", "2", "0.5"],  # numbers as MLflow returns params
        "with_gaps": [None, "1e-3", "3"],  # missing values do not stop a conversion
        "first_is_text": ["[1.5]", "2", "3"],  # a list as text first
        "last_is_text": ["1", "2", "none"],  # text only after numbers
        "all_missing": pd.Series([None, None, None], dtype="str"),
        "objects": pd.Series([1, 2.5, True], dtype=object),  # numbers that are no strings
        "model": ["1", "2", "3"],  # a name column stays text even when it reads as numbers
        "already": [1.0, 2.0, 3.0],
    })
    out = numeric_columns(frame)
    assert out is not frame and list(out.columns) == list(frame.columns)
    np.testing.assert_array_equal(out["reg_alpha"], [10.0, 2.0, 0.5])
    np.testing.assert_array_equal(out["with_gaps"], [np.nan, 1e-3, 3.0])
    np.testing.assert_array_equal(out["objects"], [1.0, 2.5, 1.0])
    for text in ("first_is_text", "last_is_text", "model"):
        assert not pd.api.types.is_numeric_dtype(out[text]) and list(out[text]) == list(frame[text])
    assert out["all_missing"].isna().all()
    assert out["already"].dtype == "float64"
    # a table already converted comes back equal, and sorting a converted axis is numeric
    pd.testing.assert_frame_equal(numeric_columns(out), out)
    assert list(out.sort_values("reg_alpha")["reg_alpha"]) == [0.5, 2.0, 10.0]
