"""What a verdict on a hypothesis (:mod:`gbreg.spec.hypotheses`) is, and the table helpers the statistics
(:mod:`gbreg.analysis.judgement`) and the findings (:mod:`gbreg.analysis.findings`) share: the :class:`Verdict` record,
the row filter, configuration labels and number formatting."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gbreg.spec.hypotheses import Condition, Hypothesis

_NAN = float("nan")


@dataclass
class Verdict:
    """One hypothesis's verdict ('supported', 'contradicted' or 'inconclusive'), the reason in words, its
    p-value before and after Holm's adjustment across the study's hypotheses, the effect and its interval
    (mean ρ for a trend; for a sign the share of configuration × unit cells positive minus the share
    negative under the default t-test, the median over configurations under ``test='sign_flip'``; best
    interior minus best edge cell for a best point), and the unit of replication the test resampled (``split`` or ``repeat``)."""

    index: int
    hypothesis: Hypothesis
    verdict: str
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    table: str = ""
    p_value: float = _NAN
    p_adjusted: float = _NAN
    effect: float = _NAN
    ci_low: float = _NAN
    ci_high: float = _NAN
    unit: str = "split"
    n_units: int = 0


def filter_rows(table, conditions: dict[str, Condition]):
    import pandas as pd

    keep = pd.Series(True, index=table.index)
    for key, condition in conditions.items():
        if key not in table.columns:
            return table.iloc[0:0]
        column = table[key]
        numeric = pd.to_numeric(column, errors="coerce")
        for op in ("eq", "ne", "gt", "ge", "lt", "le"):
            bound = getattr(condition, op)
            if bound is None:
                continue
            values = column.astype(str) if isinstance(bound, str) else numeric
            # a parameter a library does not have has no value: every comparison drops it, `ne` included
            keep &= {"eq": values == bound, "ne": values != bound, "gt": values > bound, "ge": values >= bound,
                     "lt": values < bound, "le": values <= bound}[op].fillna(False) & column.notna()
        if condition.in_ is not None:
            keep &= column.isin(condition.in_) | numeric.isin([v for v in condition.in_ if not isinstance(v, str)])
    return table[keep]


def stratum_labels(rows, columns: list[str]):
    """One readable label per row, e.g. ``xgboost · reg_lambda=10 · r0 f2`` (NaN = axis not applicable)."""
    import pandas as pd

    if not columns:
        return pd.Series("all", index=rows.index)
    parts = []
    for column in columns:
        values = rows[column].map(format_number).astype(str)  # str even when no row is left
        if column in ("library", "model"):
            parts.append(values)
        elif column == "repeat":
            parts.append("r" + values)
        elif column == "fold":
            parts.append("f" + values)
        else:
            parts.append(f"{column}=" + values)
    label = parts[0]
    for part in parts[1:]:
        label = label + " · " + part
    return label


def effect_with_interval(kind: str | None, effect, low, high) -> str:
    """'0.94 (0.71 to 1)' as a findings table shows an effect. A trend's effect is a mean Spearman ρ, in
    [-1, 1]: its t-interval is shown clipped to that range (the logged ci_low / ci_high are the test's
    own). Without a finite interval (one unit) only the effect is shown."""
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{format_number(effect)} (no interval)"
    if kind == "trend":
        low, high = max(low, -1.0), min(high, 1.0)
    return f"{format_number(effect)} ({format_number(low)} to {format_number(high)})"


def format_number(value) -> str:
    if isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "–"
    return f"{number:.4g}"


def config_columns(rows, axes: list[str], varied: set[str]) -> list[str]:
    """The columns that name a configuration: the model (or library) and each axis held fixed (not in ``varied``)."""
    columns = ["model"] if "model" in rows.columns else [c for c in ("library",) if c in rows.columns]
    return columns + [a for a in axes if a not in varied and a in rows.columns and a not in columns]


def numeric_rows(rows, *columns: str):
    """``rows`` with ``columns`` as numbers, keeping the rows that have a value in each."""
    import pandas as pd

    return rows.assign(**{c: pd.to_numeric(rows[c], errors="coerce") for c in columns}).dropna(subset=list(columns))
