"""``gbreg.judge`` (this module: gbreg.analysis.judgement): verdicts for a list of hypotheses on any table with one row per trial x split.

    from gbreg import judge
    verdicts = judge(cells, [{"metric": "n_leaves", "trend": "decreasing", "along": "reg_lambda"}],
                     axes=["reg_alpha", "reg_lambda"])
    verdicts.to_frame()   # one row per hypothesis: verdict, p_value, p_adjusted, effect, ci_low, ci_high, ...

``cells`` has the columns ``library`` and/or ``model``, every axis in ``axes``, ``repeat``, ``fold`` and the
metric columns (a table without ``repeat``/``fold`` is one split). Studies call this through
:func:`evaluate_hypotheses`. The statistics (gbreg.analysis.inference) work at the level of
independent replicates: the split (or the repeat), and for sign claims also the configuration; the p-values
are Holm-adjusted across the hypotheses, and the verdict uses the adjusted one (docs/hypotheses.md).
Sign claims are tested here; trends in :mod:`gbreg.analysis.trend_claim`, best points in
:mod:`gbreg.analysis.best_point_claim`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gbreg.analysis.best_point_claim import best_point_claim
from gbreg.analysis.claim_wording import (
    bounded_ci,
    markdown_table,
    no_spread,
    p_text,
    too_few,
    too_few_units,
    unit_word,
)
from gbreg.analysis.inference import TESTS, holm, sign_evidence
from gbreg.analysis.trend_claim import trend_claim
from gbreg.analysis.verdicts import (
    Verdict,
    config_columns,
    filter_rows,
    format_number,
    numeric_rows,
    stratum_labels,
)
from gbreg.spec.hypotheses import Hypothesis
from gbreg.spec.messages import unknown_key_message

UNITS = ("auto", "split", "repeat")


class Judgement(list):
    """The verdicts, in the order of the hypotheses; :meth:`to_frame` gives a table."""

    def to_frame(self):
        return pd.DataFrame([{"index": v.index, "hypothesis": v.hypothesis.describe(), "kind": v.hypothesis.kind,
                              "verdict": v.verdict, "p_value": v.p_value, "p_adjusted": v.p_adjusted,
                              "effect": v.effect, "ci_low": v.ci_low, "ci_high": v.ci_high, "unit": v.unit,
                              "n_units": v.n_units, "reason": v.reason} for v in self])


def judge(cells, expect, axes, *, trials=None, unit: str = "auto", test: str = "t") -> Judgement:
    """Test each hypothesis of ``expect`` (dicts as in a spec's ``expect:``, or Hypothesis objects) on
    ``cells``. ``trials``: an optional one-row-per-trial table for metrics that have no per-split value
    (gbreg's post-sweep shrinkage). ``unit``: the independent replicate. ``auto`` (default): the repeat when
    a repeat has several folds (they partition the same rows, so they are not independent; their summaries
    are averaged), else the split (each holdout split is its own random partition); ``split`` forces
    repeat x fold, ``repeat`` the repeat. ``test``: ``t`` (default; one-sample t over the units, continuous
    p-values) or ``sign_flip`` (exact randomization tests; n units never give p below 2 / 2^n).

    An axis, ``along``, ``interior`` or ``where`` key that is a column of neither table is a ValueError
    naming the hypothesis, the key and the closest column; a metric without a column makes its hypothesis
    inconclusive, with the reason."""
    if not isinstance(cells, pd.DataFrame):
        raise TypeError(f"judge: cells must be a pandas DataFrame (one row per trial x split), got "
                        f"{type(cells).__name__}")
    if unit not in UNITS:
        raise ValueError(f"judge: unit must be one of {UNITS}, got {unit!r}")
    if test not in TESTS:
        raise ValueError(f"judge: test must be one of {TESTS}, got {test!r}")
    hypotheses = [h if isinstance(h, Hypothesis) else Hypothesis.model_validate(h) for h in expect]
    if isinstance(axes, str):
        raise TypeError(f"judge: axes must be a list of column names, got the string {axes!r} (write [{axes!r}])")
    axes = list(axes)
    numbered = [(h.number or index, h) for index, h in enumerate(hypotheses, 1)]
    problems = _column_problems(cells, trials, axes, numbered)
    if problems:
        raise ValueError(f"judge: {problems[0]}" if len(problems) == 1
                         else f"judge: {len(problems)} problems\n  " + "\n  ".join(problems))
    unit = _resolve_unit(cells, unit)
    drafts = [_judge_one(number, h, cells, trials, axes, unit, test) for number, h in numbered]
    return Judgement(_holm_verdicts(drafts))


def evaluate_hypotheses(hypotheses: list[Hypothesis], results, splits, axes: list[str],
                        seed: int = 0) -> list[Verdict]:
    """A study's verdicts: :func:`judge` on its tables. ``results``: one row per trial (for metrics
    computed after the sweep); ``splits``: one row per (trial, split) with ``repeat`` and ``fold``
    columns. ``seed`` is accepted for compatibility and unused: the one test that resamples (the best
    point's multiplier bootstrap) uses a fixed seed of its own, so a verdict is the same on every run."""
    return list(judge(splits, hypotheses, axes, trials=results))


def _column_problems(cells, trials, axes: list[str], numbered: list[tuple[int, Hypothesis]]) -> list[str]:
    """Every axis, ``along``, ``interior`` and ``where`` key that is a column of neither table, with the
    closest column. A metric without a column is not a mistake here: its hypothesis is inconclusive (a
    study's table lacks the metrics no trial could compute)."""
    columns = {str(c) for c in cells.columns} | ({str(c) for c in trials.columns} if trials is not None else set())
    problems = [f"axes: {unknown_key_message(axis, columns, 'column')}" for axis in axes if axis not in columns]
    for number, h in numbered:
        named = [("along", h.along)] if h.along else []
        named += [(f"interior[{i}]", axis) for i, axis in enumerate(h.interior or [])]
        named += [(f"where.{key}", key) for key in h.where]
        problems += [f"hypothesis {number} ({h.describe()}): {key}: {unknown_key_message(column, columns, 'column')}"
                     for key, column in named if column not in columns]
    return problems


def _resolve_unit(cells, unit: str) -> str:
    if unit != "auto":
        return unit
    if {"repeat", "fold"} <= set(cells.columns) and (cells.groupby("repeat")["fold"].nunique() > 1).any():
        return "repeat"
    return "split"


def _judge_one(index: int, h: Hypothesis, cells, trials, axes: list[str], unit: str, test: str) -> dict:
    table = cells if h.measured in cells.columns or trials is None or h.measured not in trials.columns else trials
    rows = filter_rows(table, h.conditions())
    draft = {"index": index, "hypothesis": h, "candidate": 0, "p": float("nan"), "numbers": {}, "table": "",
             "unit": unit, "n_units": 0}
    if h.measured not in rows.columns or rows[h.measured].notna().sum() == 0:
        return draft | {"reason": f"no trial has a value of {h.measured!r} in the rows the hypothesis selects"}
    rows = _with_splits(rows, unit)
    return draft | {"trend": trend_claim, "sign": _sign, "best": best_point_claim}[h.kind](h, rows, axes, unit, test)


def _with_splits(rows, unit: str):
    """``_split`` (repeat x fold) and ``_unit`` (the independent replicate: the repeat or the split) labels."""
    repeat = rows["repeat"].astype(str) if "repeat" in rows.columns else "0"
    fold = rows["fold"].astype(str) if "fold" in rows.columns else "0"
    split = repeat + "/" + fold
    return rows.assign(_split=split, _unit=repeat if unit == "repeat" else split)


# ----------------------------------------------------------------------------------------- sign


def _sign(h: Hypothesis, rows, axes: list[str], unit: str, test: str) -> dict:
    metric = h.metric
    config = config_columns(rows, axes, set())
    data = numeric_rows(rows, metric)
    data = data.assign(_config=stratum_labels(data, config))
    wide = data.pivot_table(index="_config", columns="_unit", values=metric, aggfunc="mean", sort=False)
    complete = wide.dropna(axis=0, thresh=max(1, wide.shape[1] // 2)).dropna(axis=1)  # drop sparse rows, then units
    dropped = len(wide) - len(complete)
    if complete.empty:
        return {"reason": f"no configuration has {metric} on a common set of {unit}s"}
    evidence = {k: v[0] for k, v in sign_evidence(complete.to_numpy()[None], h.sign, h.significance, test).items()}
    n_configs, n_units = complete.shape
    numbers = {"statistic": evidence["effect"], "ci_low": evidence["ci_low"], "ci_high": evidence["ci_high"],
               "n_configurations": n_configs, "n_units": n_units, "n_positive": int(evidence["n_positive"]),
               "n_negative": int(evidence["n_negative"]), "n_zero": int(evidence["n_zero"])}
    numbers |= {k: float(evidence[k]) for k in ("p_configurations", "p_splits", "df") if k in evidence}
    counts = (f"{numbers['n_positive']} positive, {numbers['n_negative']} negative and {numbers['n_zero']} exactly "
              f"zero of {n_configs} configurations (each the mean over {unit_word(unit, n_units)})")
    if test == "t":
        text = (f"{counts}; share of configuration × {unit} cells positive minus share negative "
                f"{evidence['effect']:+.2f} ({bounded_ci(1 - h.significance, evidence['ci_low'], evidence['ci_high'], n_units, unit)}"
                f"; zeros count against both signs), median over configurations "
                f"{evidence['median']:+.4g}; t-test with configurations and {unit}s as crossed random effects "
                f"(df {evidence['df']:.1f})")
    else:
        text = (f"{counts}, median {evidence['effect']:+.4g} ({1 - h.significance:.0%} CI {evidence['ci_low']:+.4g} "
                f"to {evidence['ci_high']:+.4g}); sign test over configurations p = {p_text(evidence['p_configurations'])}, "
                f"sign-flip over {unit}s of the per-{unit} median p = {p_text(evidence['p_splits'])}")
    if dropped:
        text += f"; {dropped} configuration(s) without values on most {unit}s left out"
    result = {"numbers": numbers, "table": _sign_table(data, config, metric), "n_units": n_units,
              "effect": evidence["effect"], "ci": (evidence["ci_low"], evidence["ci_high"])}
    if few := too_few_units(n_units, unit):
        return result | {"reason": few + "; " + text}
    if evidence.get("no_spread", False):
        summary = f"every configuration {'positive' if evidence['effect'] > 0 else 'negative'}"
        return result | {"candidate": int(evidence["candidate"]), "p": float(evidence["p"]),
                         "reason": text + "; " + no_spread(n_units, unit, summary, float(evidence["p"]))}
    if evidence["smallest_p"] >= h.significance:
        return result | {"reason": too_few(evidence["smallest_p"], h, f"{n_configs} configuration(s) and "
                                            f"{unit_word(unit, n_units)}") + "; " + text}
    if evidence["candidate"] == 0:
        return result | {"p": 1.0, "reason": "no sign: " + text}
    return result | {"candidate": int(evidence["candidate"]), "p": float(evidence["p"]),
                     "reason": text + f"; p = {p_text(evidence['p'])}"}


def _sign_table(data, config: list[str], metric: str) -> str:
    grouped = data.groupby("_config", sort=False)[metric]
    summary = grouped.agg(["mean", "min", "max", "count"])
    header = [", ".join(config) or "all", "mean", "min", "max", "cells", "sign of mean"]
    rows = []
    for label, row in list(summary.iterrows())[:40]:
        sign = "+" if row["mean"] > 0 else "−" if row["mean"] < 0 else "0"
        rows.append([label, format_number(row["mean"]), format_number(row["min"]), format_number(row["max"]), str(int(row["count"])), sign])
    if len(summary) > 40:
        rows.append([f"… {len(summary) - 40} more", "", "", "", "", ""])
    return f"{metric} by configuration:\n\n" + markdown_table(rows, header)


# ----------------------------------------------------------------------------------------- Holm


def _holm_verdicts(drafts: list[dict]) -> list[Verdict]:
    adjusted = holm([d["p"] for d in drafts])
    tested = int(np.sum(~np.isnan([d["p"] for d in drafts])))
    verdicts = []
    for draft, p_adjusted in zip(drafts, adjusted):
        h, p = draft["hypothesis"], draft["p"]
        verdict, reason = "inconclusive", draft["reason"]
        if not np.isnan(p):
            significant = p_adjusted < h.significance and draft["candidate"] != 0
            if significant:
                verdict = "supported" if draft["candidate"] > 0 else "contradicted"
            else:
                reason = f"not significant at {h.significance:g} after Holm over {tested} tested hypotheses: " + reason
            reason += f" (Holm-adjusted p = {p_adjusted:.2g})"
        low, high = draft.get("ci", (float("nan"), float("nan")))
        numbers = draft["numbers"] | {"p_value": p, "p_adjusted": float(p_adjusted)}
        verdicts.append(Verdict(draft["index"], h, verdict, reason, numbers, draft["table"], p_value=p,
                                p_adjusted=float(p_adjusted), effect=draft.get("effect", float("nan")),
                                ci_low=float(low), ci_high=float(high), unit=draft["unit"],
                                n_units=draft["n_units"]))
    return verdicts
