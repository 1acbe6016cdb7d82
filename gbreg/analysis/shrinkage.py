"""Shrinkage against the unregularized trial, after the sweep: how much a penalty shrinks the values a
trial learned (leaf values for boosters, coefficients for linear counterparts), and in which shape.

Pure functions over the study's results table (one row per trial).
"""

from __future__ import annotations

import numpy as np

from gbreg.catalogue import names

# post-sweep metrics: mean |value| (and the 50th / 90th percentile of |value|) relative to the same model
# at reg_alpha = reg_lambda = 0, other axes equal. Boosters get leaf_*, linear counterparts coef_*.
SHRINKAGE_METRIC_NAMES = names("post-sweep")


def shrinkage_table(results, other_axes: list[str]):
    """Per trial: |value| statistics relative to the same model at reg_alpha = reg_lambda = 0.

    ``results`` is the study's results table (one row per trial); ``other_axes`` are the sweep axes
    besides the two penalties, which must be equal between a trial and its reference. A linear
    counterpart fitted at positive penalties only (lasso, ridge) is compared with the ``ols`` trial. Returns a
    DataFrame indexed like ``results`` with the shrinkage columns (NaN where no reference exists) and
    the list of models that have no unregularized reference.

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
    for axis in ("reg_alpha", "reg_lambda"):
        if axis not in frame.columns:
            frame[axis] = 0.0
    keys = ["model", *[a for a in other_axes if a in frame.columns]]
    key_frame = frame[keys].astype(object).where(frame[keys].notna(), "<none>").astype(str)
    group_key = key_frame.agg("|".join, axis=1)
    unregularized = (pd.to_numeric(frame["reg_alpha"], errors="coerce") == 0) & (
        pd.to_numeric(frame["reg_lambda"], errors="coerce") == 0)
    missing = []
    ols = frame[(frame["model"] == "ols")].head(1)  # the linear counterparts' unregularized fit
    for model in frame["model"].dropna().unique():
        rows = frame["model"] == model
        linear = "kind" in frame.columns and (frame.loc[rows, "kind"] == "linear").all()
        prefix, mean_column = ("coef", "coef_l1") if linear else ("leaf", "leaf_abs_mean")
        if (rows & unregularized).any():
            reference = frame[rows & unregularized].set_index(group_key[rows & unregularized])
            reference = reference[~reference.index.duplicated()]
        elif linear and len(ols):  # lasso and ridge are fitted at positive penalties only: compare with OLS
            reference = pd.concat([ols] * int(rows.sum())).set_index(group_key[rows].to_numpy())
            reference = reference[~reference.index.duplicated()]
        else:
            missing.append(str(model))
            continue
        for column, source in ((f"{prefix}_shrinkage", mean_column), (f"{prefix}_shrinkage_q50", "abs_q50"),
                               (f"{prefix}_shrinkage_q90", "abs_q90")):
            if source not in frame.columns:
                continue
            base = group_key[rows].map(reference[source])
            with np.errstate(divide="ignore", invalid="ignore"):
                out.loc[rows, column] = (pd.to_numeric(frame.loc[rows, source], errors="coerce")
                                         / pd.to_numeric(base, errors="coerce")).replace([np.inf, -np.inf], np.nan)
        out.loc[rows, f"{prefix}_shrinkage_q90_minus_q50"] = (out.loc[rows, f"{prefix}_shrinkage_q90"]
                                                              - out.loc[rows, f"{prefix}_shrinkage_q50"])
    return out, missing
