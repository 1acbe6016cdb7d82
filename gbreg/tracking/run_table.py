"""A table of runs as MLflow gives it back (params as text), and the same table with numbers as numbers."""

from __future__ import annotations

import pandas as pd

TEXT_COLUMNS = ("run_id", "run_name", "status", "trial_key", "kind", "library", "model")


def numeric_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy in which every column whose values all parse as numbers is numeric.

    MLflow returns params as strings, and pandas 3 keeps them as its ``str`` dtype (not ``object``): sorting
    ``"10"`` before ``"2"`` would scramble an axis, and ``"1"`` and ``"1.0"`` would not join as one value.
    """
    converted = {}
    for column, dtype in frame.dtypes.items():
        if column in TEXT_COLUMNS or pd.api.types.is_numeric_dtype(dtype) or _first_is_text(frame[column]):
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.notna().sum() == frame[column].notna().sum():
            converted[column] = numbers
    return frame.assign(**converted) if converted else frame.copy()


def _first_is_text(values: pd.Series) -> bool:
    """Whether the first present value does not parse as a number: then the column cannot be all numbers,
    and converting it is skipped (the figures pass one table through here a dozen times)."""
    present = values.notna().to_numpy()
    if not present.any():
        return False
    try:
        float(values.iloc[int(present.argmax())])
    except (TypeError, ValueError):
        return True
    return False
