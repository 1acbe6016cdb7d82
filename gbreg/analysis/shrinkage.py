"""Shrinkage against the unregularized trial, after the sweep: how much a penalty shrinks the values a
trial learned (leaf values for boosters, coefficients for linear counterparts), and in which shape.

Pure functions over the study's results table (one row per trial).
"""

from __future__ import annotations

import numpy as np

from gbreg.catalogue import PENALTY_AXES, names

# post-sweep metrics: mean |value| (and the 50th / 90th percentile of |value|) relative to the same model
# at reg_alpha = reg_lambda = 0, other axes equal. Boosters get leaf_*, linear counterparts coef_*.
SHRINKAGE_METRIC_NAMES = names("post-sweep")


def shrinkage_table(results, other_axes: list[str]):
    """Per trial: |value| statistics relative to the same model at reg_alpha = reg_lambda = 0.

    ``results`` is the study's results table (one row per trial); ``other_axes`` are the sweep axes
    besides the two penalties, which must be equal between a trial and its reference. A model without one
    of the penalties (CatBoost and HistGradientBoosting have no reg_alpha: no value in any of their rows)
    is unregularized at zero on the penalty it has. A linear counterpart fitted at positive penalties only
    (lasso, ridge) is compared with the ``ols`` trial. Returns a DataFrame indexed like ``results`` with
    the shrinkage columns (NaN where no reference exists) and the list of models that have no
    unregularized reference.

    The mean ratio (``*_shrinkage``) says how much the penalty shrinks values overall. The ratios at the
    50th and 90th percentile of |value| tell proportional shrinkage (L2: every value scaled by the same
    factor, so the two ratios are equal) from a subtracted constant (L1: small values lose relatively
    more and snap to 0, so the 50th-percentile ratio falls below the 90th).
    """
    import pandas as pd

    out = pd.DataFrame(index=results.index, columns=list(SHRINKAGE_METRIC_NAMES), dtype="float64")
    if not len(results) or "model" not in results.columns:
        return out, []
    frame = results.copy()
    for axis in PENALTY_AXES:
        frame[axis] = pd.to_numeric(frame[axis], errors="coerce") if axis in frame.columns else 0.0
    keys = ["model", *[a for a in other_axes if a in frame.columns]]
    key_frame = frame[keys].astype(object).where(frame[keys].notna(), "<none>").astype(str)
    group_key = key_frame.agg("|".join, axis=1)
    missing = []
    ols = frame[(frame["model"] == "ols")].head(1)  # the linear counterparts' unregularized fit
    for model in frame["model"].dropna().unique():
        rows = frame["model"] == model
        linear = "kind" in frame.columns and (frame.loc[rows, "kind"] == "linear").all()
        reference = _reference(frame, rows, group_key, ols if linear else ols.iloc[0:0])
        if reference is None:
            missing.append(str(model))
            continue
        _fill_ratios(out, frame, rows, group_key[rows], reference, linear)
    return out, missing


def _unregularized(frame, rows):
    """Which of a model's ``rows`` are unregularized: 0 on each penalty the model has. A penalty with no
    value in any of its rows is one the library does not have (CatBoost's reg_alpha), not a nonzero one."""
    present = [axis for axis in PENALTY_AXES if frame.loc[rows, axis].notna().any()]
    zero = rows & bool(present)
    for axis in present:
        zero &= frame[axis] == 0
    return zero


def _reference(frame, rows, group_key, ols):
    """The model's unregularized trials indexed by the key of the other axes (``ols`` for a linear
    counterpart fitted at positive penalties only), or None when it has none."""
    import pandas as pd

    base = _unregularized(frame, rows)
    if base.any():
        reference = frame[base].set_index(group_key[base])
    elif len(ols):
        reference = pd.concat([ols] * int(rows.sum())).set_index(group_key[rows].to_numpy())
    else:
        return None
    return reference[~reference.index.duplicated()]


def _fill_ratios(out, frame, rows, keys, reference, linear: bool) -> None:
    """Fill the model's ``rows`` of ``out``: each statistic over its ``reference``'s (the trial whose key
    of the other axes is the row's ``keys``)."""
    import pandas as pd

    prefix, mean_column = ("coef", "coef_l1") if linear else ("leaf", "leaf_abs_mean")
    for column, source in ((f"{prefix}_shrinkage", mean_column), (f"{prefix}_shrinkage_q50", "abs_q50"),
                           (f"{prefix}_shrinkage_q90", "abs_q90")):
        if source not in frame.columns:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (pd.to_numeric(frame.loc[rows, source], errors="coerce")
                     / pd.to_numeric(keys.map(reference[source]), errors="coerce"))
        out.loc[rows, column] = ratio.replace([np.inf, -np.inf], np.nan)
    out.loc[rows, f"{prefix}_shrinkage_q90_minus_q50"] = (out.loc[rows, f"{prefix}_shrinkage_q90"]
                                                          - out.loc[rows, f"{prefix}_shrinkage_q50"])
