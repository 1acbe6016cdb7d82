"""The statistics that judge each hypothesis (:mod:`gbreg.hypotheses`) on a sweep's results: trend, sign
and best-point tests, each giving a :class:`Verdict` with its evidence."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np  # already loaded by gbreg.trees; pandas and scipy are imported where used

from gbreg.hypotheses import BOOTSTRAPS, MIN_SPLITS_FOR_BEST, PERMUTATIONS, Condition, Hypothesis


@dataclass
class Verdict:
    index: int
    hypothesis: Hypothesis
    verdict: str
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    table: str = ""


def evaluate_hypotheses(hypotheses: list[Hypothesis], results, splits, axes: list[str],
                        seed: int = 0) -> list[Verdict]:
    """Test each hypothesis. ``results``: one row per trial; ``splits``: one row per (trial, split) with
    ``repeat`` and ``fold`` columns (the per-split values where a metric has them)."""

    verdicts = []
    for index, h in enumerate(hypotheses, 1):
        table = splits if h.measured in splits.columns else results  # post-sweep metrics: one row per trial
        rows = filter_rows(table, h.conditions())
        test = {"trend": trend_verdict, "sign": sign_verdict, "best": best_verdict}[h.kind]
        rng = np.random.default_rng([seed, index])
        if h.measured not in rows.columns or rows[h.measured].notna().sum() == 0:
            verdicts.append(Verdict(index, h, "inconclusive", f"no trial has a value of {h.measured!r} "
                                                              "in the rows the hypothesis selects"))
            continue
        verdicts.append(test(index, h, rows, axes, rng))
    return verdicts


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


def _strata_columns(rows, axes: list[str], varied: set[str], splits: bool = True) -> list[str]:
    """What is held fixed while the varied axes move: the model (which names its library), the other
    sweep axes, and the repeat and fold when the metric has per-split values."""
    columns = ["model"] if "model" in rows.columns else [c for c in ("library",) if c in rows.columns]
    columns += [a for a in axes if a not in varied and a in rows.columns and a not in columns]
    if splits:
        columns += [c for c in ("repeat", "fold") if c in rows.columns]
    return columns


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


def _zscore(values):

    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values, dtype="float64")


def _p_text(p: float, resamples: int) -> str:
    return f"p ≤ {1 / (resamples + 1):.2g}" if p <= 1 / (resamples + 1) + 1e-15 else f"p = {p:.2g}"


# ---------------------------------------------------------------------------------------- trend


def trend_verdict(index: int, h: Hypothesis, rows, axes: list[str], rng) -> Verdict:
    """Mean within-stratum Spearman ρ; permutation p (metric permuted within strata); stratum bootstrap CI."""
    import pandas as pd
    from scipy.stats import rankdata

    axis, metric = h.along, h.metric
    strata = _strata_columns(rows, axes, {axis})
    data = rows.assign(**{axis: pd.to_numeric(rows[axis], errors="coerce"),
                          metric: pd.to_numeric(rows[metric], errors="coerce")}).dropna(subset=[axis, metric])
    labels = _stratum_labels(data, strata)
    usable = []
    for label, group in data.groupby(labels, sort=False):
        if group[axis].nunique() >= 2:
            zx = _zscore(rankdata(group[axis].to_numpy()))
            zy = _zscore(rankdata(group[metric].to_numpy()))
            usable.append((label, zx, zy, float(zx @ zy / len(zx))))
    table = _trend_table(data, strata, axis, metric, {label: rho for label, _, _, rho in usable})
    if not usable:
        return Verdict(index, h, "inconclusive", f"no stratum has two or more values of {axis} with a value of "
                                                 f"{metric}", table=table)
    arrangements = sum(math.lgamma(len(zx) + 1) for _, zx, _, _ in usable)
    rhos = np.array([rho for *_, rho in usable])
    mean_rho = float(rhos.mean())
    null = np.zeros(PERMUTATIONS)
    for _, zx, zy, _ in usable:
        shuffled = rng.permuted(np.broadcast_to(zy, (PERMUTATIONS, len(zy))).copy(), axis=1)
        null += shuffled @ zx / len(zx)
    null /= len(usable)
    p = float((1 + np.sum(np.abs(null) >= abs(mean_rho) - 1e-12)) / (PERMUTATIONS + 1))
    boot = rhos[rng.integers(0, len(rhos), (BOOTSTRAPS, len(rhos)))].mean(axis=1)
    low, high = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
    expected = {"increasing": 1, "decreasing": -1, "none": 0}[h.trend]
    agree = int(np.sum(np.sign(rhos) == expected)) if expected else int(np.sum(np.abs(rhos) <= _tolerance(h)))
    numbers = {"statistic": mean_rho, "ci_low": low, "ci_high": high, "p_value": p, "n_strata": len(usable),
               "n_cells": int(sum(len(zx) for _, zx, _, _ in usable)), "strata_agreeing": agree}
    evidence = (f"mean Spearman ρ = {mean_rho:+.2f} (95% CI {low:+.2f} to {high:+.2f}), permutation "
                f"{_p_text(p, PERMUTATIONS)}, over {len(usable)} strata ({numbers['n_cells']} cells; held fixed: "
                f"{', '.join(strata) or 'nothing'}); {agree} of {len(usable)} strata "
                f"{'have ρ of the stated sign' if expected else f'have |ρ| ≤ {_tolerance(h):g}'}")
    if math.exp(arrangements) < 2 / h.significance:
        return Verdict(index, h, "inconclusive", f"too few cells to reach p < {h.significance:g} by permutation; "
                                                 + evidence, numbers, table)
    return Verdict(index, h, *_trend_decision(h, mean_rho, p, low, high, evidence), numbers, table)


def _tolerance(h: Hypothesis) -> float:
    return h.tolerance if h.tolerance is not None else 0.3


def _trend_decision(h: Hypothesis, mean_rho: float, p: float, low: float, high: float,
                    evidence: str) -> tuple[str, str]:
    significant = p < h.significance
    if h.trend == "none":
        if significant:
            direction = "increases" if mean_rho > 0 else "decreases"
            return "contradicted", f"{h.metric} {direction} along {h.along}: " + evidence
        if -_tolerance(h) <= low and high <= _tolerance(h):
            return "supported", f"no trend, and the CI excludes |ρ| > {_tolerance(h):g}: " + evidence
        return "inconclusive", f"no significant trend, but the CI does not rule out |ρ| > {_tolerance(h):g}: " + evidence
    expected = 1 if h.trend == "increasing" else -1
    if not significant:
        return "inconclusive", f"no significant trend at level {h.significance:g}: " + evidence
    if np.sign(mean_rho) == expected:
        return "supported", evidence
    other = "decreasing" if expected == 1 else "increasing"
    return "contradicted", f"{h.metric} is {other} along {h.along}, not {h.trend}: " + evidence


def _trend_table(data, strata: list[str], axis: str, metric: str, rho_by_label: dict) -> str:
    """Markdown: one row per configuration (splits averaged), one column per axis value, mean ρ."""
    config = [c for c in strata if c not in ("repeat", "fold")]
    data = data.assign(_config=_stratum_labels(data, config), _stratum=_stratum_labels(data, strata))
    pivot = data.pivot_table(index="_config", columns=axis, values=metric, aggfunc="mean", sort=False)
    rho = data.drop_duplicates("_stratum").assign(_rho=lambda f: f["_stratum"].map(rho_by_label))
    rho = rho.groupby("_config", sort=False)["_rho"].mean()
    header = [f"{_fmt(v)}" for v in pivot.columns]
    lines = [f"| {', '.join(config) or 'all'} \\ {axis} | " + " | ".join(header) + " | mean ρ |",
             "|---" * (len(header) + 2) + "|"]
    for label, row in list(pivot.iterrows())[:40]:
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in row) + f" | {_fmt(rho.get(label, float('nan')))} |")
    if len(pivot) > 40:
        lines.append(f"| … {len(pivot) - 40} more | " + " | " * len(header) + " |")
    per_split = "repeat" in strata
    return f"{metric}{' (mean over splits)' if per_split else ''}:\n\n" + "\n".join(lines)


# ----------------------------------------------------------------------------------------- sign


def sign_verdict(index: int, h: Hypothesis, rows, axes: list[str], rng) -> Verdict:
    """Exact two-sided sign test over the cells; bootstrap CI of the median."""
    import pandas as pd
    from scipy.stats import binomtest

    metric = h.metric
    values = pd.to_numeric(rows[metric], errors="coerce")
    data = rows.assign(**{metric: values}).dropna(subset=[metric])
    x = data[metric].to_numpy()
    n_pos, n_neg = int(np.sum(x > 0)), int(np.sum(x < 0))
    n = n_pos + n_neg
    median = float(np.median(x))
    boot = np.median(x[rng.integers(0, len(x), (BOOTSTRAPS, len(x)))], axis=1)
    low, high = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
    p = float(binomtest(n_pos, n, 0.5).pvalue) if n else 1.0
    numbers = {"statistic": median, "ci_low": low, "ci_high": high, "p_value": p, "n_cells": len(x),
               "n_positive": n_pos, "n_negative": n_neg}
    evidence = (f"{n_pos} positive and {n_neg} negative of {len(x)} cells, median {median:+.4g} (95% CI "
                f"{low:+.4g} to {high:+.4g}), sign test p = {p:.2g}")
    table = _sign_table(data, _strata_columns(data, axes, set(), splits=False), metric)
    if n == 0 or 2 * 0.5**n >= h.significance:
        return Verdict(index, h, "inconclusive", f"too few nonzero cells to reach p < {h.significance:g}; "
                       + evidence, numbers, table)
    if p >= h.significance:
        return Verdict(index, h, "inconclusive", "no significant sign: " + evidence, numbers, table)
    positive = n_pos > n_neg
    if positive == (h.sign == "positive"):
        return Verdict(index, h, "supported", evidence, numbers, table)
    return Verdict(index, h, "contradicted", f"{metric} is mostly {'positive' if positive else 'negative'}: "
                   + evidence, numbers, table)


def _sign_table(data, config: list[str], metric: str) -> str:
    grouped = data.assign(_config=_stratum_labels(data, config)).groupby("_config", sort=False)[metric]
    summary = grouped.agg(["mean", "min", "max", "count", lambda v: int((v > 0).sum())])
    summary.columns = ["mean", "min", "max", "cells", "positive"]
    lines = [f"| {', '.join(config) or 'all'} | mean | min | max | cells | positive |", "|---" * 6 + "|"]
    for label, row in list(summary.iterrows())[:40]:
        lines.append(f"| {label} | {_fmt(row['mean'])} | {_fmt(row['min'])} | {_fmt(row['max'])} | "
                     f"{int(row['cells'])} | {int(row['positive'])} |")
    if len(summary) > 40:
        lines.append(f"| … {len(summary) - 40} more | | | | | |")
    return f"{metric} by configuration:\n\n" + "\n".join(lines)


# ----------------------------------------------------------------------------------------- best


def best_verdict(index: int, h: Hypothesis, rows, axes: list[str], rng) -> Verdict:
    """Per configuration: where is the best cell, and how often is it interior when splits are resampled."""
    import pandas as pd

    metric, interior = h.best, list(h.interior or [])
    config = _strata_columns(rows, axes, set(interior), splits=False)
    data = rows.assign(**{metric: pd.to_numeric(rows[metric], errors="coerce")}).dropna(subset=[metric])
    split_id = (data["repeat"].astype(str) + "/" + data["fold"].astype(str)) if "repeat" in data.columns else "0/0"
    data = data.assign(_config=_stratum_labels(data, config), _split=split_id)
    outcomes = [_best_in_config(label, group, interior, metric, h, rng)
                for label, group in data.groupby("_config", sort=False)]
    verdicts = [o["verdict"] for o in outcomes]
    if not outcomes:
        return Verdict(index, h, "inconclusive", "no cells")
    if "contradicted" in verdicts:
        verdict = "contradicted"
    elif all(v == "supported" for v in verdicts):
        verdict = "supported"
    else:
        verdict = "inconclusive"
    shares = [o["share"] for o in outcomes if o["share"] is not None]
    numbers = {"statistic": min(shares) if shares else float("nan"), "n_configurations": len(outcomes),
               "n_supported": verdicts.count("supported"), "n_contradicted": verdicts.count("contradicted")}
    summary = (f"{verdicts.count('supported')} of {len(outcomes)} configurations have their {h.goal_for()} inside "
               f"the grid in ≥ {1 - h.significance:.0%} of split resamples, {verdicts.count('contradicted')} at an "
               f"edge in ≥ {1 - h.significance:.0%}")
    reasons = sorted({o["reason"] for o in outcomes if o["reason"]})
    if reasons:
        summary += "; " + "; ".join(reasons)
    lines = [f"| {', '.join(config) or 'all'} | best cell ({', '.join(interior)}) | {metric} | interior share | verdict |",
             "|---" * 5 + "|"]
    for o in outcomes[:40]:
        share = "–" if o["share"] is None else f"{o['share']:.2f}"
        lines.append(f"| {o['label']} | {o['cell']} | {_fmt(o['score'])} | {share} | {o['verdict']} |")
    return Verdict(index, h, verdict, summary, numbers, "\n".join(lines))


def _best_in_config(label: str, group, interior: list[str], metric: str, h: Hypothesis, rng) -> dict:
    import pandas as pd

    cells = group.pivot_table(index=interior, columns="_split", values=metric, aggfunc="mean").dropna(axis=1)
    frame = cells.index.to_frame(index=False)
    at_edge = np.zeros(len(cells), dtype=bool)
    for axis in interior:
        values = pd.to_numeric(frame[axis], errors="coerce")
        at_edge |= ((values == values.min()) | (values == values.max())).to_numpy()
    matrix = cells.to_numpy()
    pick = np.argmax if h.goal_for() == "max" else np.argmin
    best = int(pick(matrix.mean(axis=1)))
    cell = ", ".join(f"{a}={_fmt(v)}" for a, v in zip(interior, frame.iloc[best]))
    outcome = {"label": label, "cell": cell + (" (edge)" if at_edge[best] else " (interior)"),
               "score": float(matrix[best].mean()), "share": None, "verdict": "inconclusive", "reason": ""}
    if any(frame[a].nunique() < 3 for a in interior):
        outcome["reason"] = "a configuration has fewer than 3 values along an interior axis"
        return outcome
    n_splits = matrix.shape[1]
    if n_splits < MIN_SPLITS_FOR_BEST:
        outcome["reason"] = (f"{n_splits} split(s) per cell: at least {MIN_SPLITS_FOR_BEST} (repeats or folds) are "
                             "needed to measure how stable the best cell is")
        return outcome
    draws = rng.integers(0, n_splits, (BOOTSTRAPS, n_splits))
    means = matrix[:, draws].mean(axis=2)  # cells x bootstraps
    share = float(np.mean(~at_edge[pick(means, axis=0)]))
    outcome["share"] = share
    if share >= 1 - h.significance:
        outcome["verdict"] = "supported"
    elif share <= h.significance:
        outcome["verdict"] = "contradicted"
    return outcome
