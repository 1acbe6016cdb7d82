"""The statistics that judge each hypothesis (:mod:`gbreg.hypotheses`) on a sweep's results: the
:class:`Verdict` record, the row filter and the study's entry point, :func:`evaluate_hypotheses`, which
hands the tables to :func:`gbreg.judgement.judge` (the tests themselves: :mod:`gbreg.inference`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gbreg.hypotheses import Condition, Hypothesis

_NAN = float("nan")


@dataclass
class Verdict:
    """One hypothesis's verdict ('supported', 'contradicted' or 'inconclusive'), the reason in words, its
    p-value before and after Holm's adjustment across the study's hypotheses, the effect and its interval
    (mean ρ for a trend, median over configurations for a sign, best interior minus best edge cell for a
    best point), and the unit of replication the test resampled (``split`` or ``repeat``)."""

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


def evaluate_hypotheses(hypotheses: list[Hypothesis], results, splits, axes: list[str],
                        seed: int = 0) -> list[Verdict]:
    """Test each hypothesis with :func:`gbreg.judgement.judge`. ``results``: one row per trial (for metrics
    computed after the sweep); ``splits``: one row per (trial, split) with ``repeat`` and ``fold``
    columns. ``seed`` is accepted for compatibility and unused: the one test that resamples (the best
    point's multiplier bootstrap) uses a fixed seed of its own, so a verdict is the same on every run."""
    from gbreg.judgement import judge

    return list(judge(splits, hypotheses, axes, trials=results))


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
            keep &= {"eq": values == bound, "ne": values != bound, "gt": values > bound, "ge": values >= bound,
                     "lt": values < bound, "le": values <= bound}[op].fillna(op == "ne")
        if condition.in_ is not None:
            keep &= column.isin(condition.in_) | numeric.isin([v for v in condition.in_ if not isinstance(v, str)])
    return table[keep]


def _stratum_labels(rows, columns: list[str]):
    """One readable label per row, e.g. ``xgboost · reg_lambda=10 · r0 f2`` (NaN = axis not applicable)."""
    import pandas as pd

    if not columns:
        return pd.Series("all", index=rows.index)
    parts = []
    for column in columns:
        values = rows[column].map(_fmt)
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


def _fmt(value) -> str:
    if isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "–"
    return f"{number:.4g}"


def _single(index: int, h: Hypothesis, rows, axes: list[str]) -> Verdict:
    from gbreg.judgement import judge

    verdict = judge(rows, [h], axes)[0]
    verdict.index = index
    return verdict


def trend_verdict(index: int, h: Hypothesis, rows, axes: list[str], rng=None) -> Verdict:
    """One trend hypothesis on its own (no multiplicity adjustment); see :mod:`gbreg.judgement`."""
    return _single(index, h, rows, axes)


def sign_verdict(index: int, h: Hypothesis, rows, axes: list[str], rng=None) -> Verdict:
    """One sign hypothesis on its own (no multiplicity adjustment); see :mod:`gbreg.judgement`."""
    return _single(index, h, rows, axes)


def best_verdict(index: int, h: Hypothesis, rows, axes: list[str], rng=None) -> Verdict:
    """One best-point hypothesis on its own (no multiplicity adjustment); see :mod:`gbreg.judgement`."""
    return _single(index, h, rows, axes)
