"""A trend claim ("n_leaves decreases along reg_lambda") tested on one row per trial x split: Spearman's ρ
per configuration and split, averaged per independent unit, then a t-test (or sign-flip) over the units;
"no trend" is an equivalence test (TOST) against a tolerance. Called by :func:`gbreg.analysis.judgement.judge`."""

from __future__ import annotations

import numpy as np

from gbreg.analysis.claim_wording import (
    bounded_ci,
    markdown_table,
    no_spread,
    p_text,
    too_few,
    too_few_units,
    unit_word,
)
from gbreg.analysis.inference import spearman_rows, trend_evidence
from gbreg.analysis.verdicts import config_columns, format_number, numeric_rows, stratum_labels
from gbreg.spec.hypotheses import Hypothesis


def trend_claim(h: Hypothesis, rows, axes: list[str], unit: str, test: str) -> dict:
    axis, metric = h.along, h.metric
    config = config_columns(rows, axes, {axis})
    data = numeric_rows(rows, axis, metric)
    if data.empty:  # e.g. where: {model: catboost} along reg_alpha, which CatBoost does not have
        return {"reason": f"no row the hypothesis selects has a value of {axis} with a value of {metric}"}
    data = data.assign(_config=stratum_labels(data, config))
    wide = data.groupby(["_config", "_split", axis], sort=False)[metric].mean().unstack(axis).sort_index(axis=1)
    rho = {key: _spearman(values[~np.isnan(values)], spearman_rows) for key, values in zip(wide.index, wide.to_numpy())}
    usable = {key: value for key, value in rho.items() if value is not None}
    n_constant = int(sum(np.isnan(v) for v in usable.values()))
    observed = usable  # the table shows constant configurations as such
    if h.trend == "none":  # a configuration constant along the axis has no trend: it counts as ρ = 0
        usable = {key: 0.0 if np.isnan(value) else value for key, value in usable.items()}
    if not usable:
        return {"reason": f"no configuration has two or more values of {axis} with a value of {metric}",
                "table": _trend_table(data, config, axis, metric, {})}
    per_split: dict[str, list[float]] = {}
    for (_, split), value in usable.items():
        per_split.setdefault(split, []).append(value)
    unit_of = dict(zip(data["_split"], data["_unit"]))
    per_unit: dict[str, list[float]] = {}  # per split the mean rho over configurations, then over the unit's folds
    for split, values in per_split.items():
        per_unit.setdefault(unit_of[split], []).append(np.nanmean(values) if not np.all(np.isnan(values)) else 0.0)
    d = np.array([np.mean(v) for v in per_unit.values()])
    evidence = {k: v[0] for k, v in trend_evidence(d[None], h.trend, h.significance, _tolerance(h), test).items()}
    agree = (int(np.sum(np.abs(d) < _tolerance(h))) if h.trend == "none"
             else int(np.sum(np.sign(d) == (1 if h.trend == "increasing" else -1))))
    numbers = {"statistic": evidence["effect"], "ci_low": evidence["ci_low"], "ci_high": evidence["ci_high"],
               "n_units": len(d), "n_configurations": len({c for (c, _), v in usable.items() if not np.isnan(v)}),
               "n_constant": n_constant,
               "units_agreeing": agree}
    level = 1 - h.significance
    evidence_text = (f"mean Spearman ρ along {axis} = {evidence['effect']:+.2f} "
                     f"({bounded_ci(level, evidence['ci_low'], evidence['ci_high'], len(d), unit)}), averaged per {unit} over "
                     f"{numbers['n_configurations']} configuration(s) (held fixed: {', '.join(config) or 'nothing'}) "
                     f"then over {unit_word(unit, len(d))}; {agree} of {len(d)} {unit}s "
                     + (f"have |ρ| < {_tolerance(h):g}" if h.trend == "none" else "have ρ of the stated sign"))
    if n_constant and h.trend == "none":
        evidence_text += (f"; {n_constant} configuration × split cell(s) constant along {axis}, each counted "
                          "as ρ = 0 (no trend)")
    elif n_constant:
        evidence_text += (f"; {n_constant} configuration × split cell(s) constant along {axis} (left out of "
                          "the averages; a split where all are constant counts as ρ = 0)")
    if h.trend == "none":
        evidence_text += _opposite_trends(usable, _tolerance(h), h.significance)
    table = _trend_table(data, config, axis, metric, observed)
    result = {"numbers": numbers, "table": table, "n_units": len(d), "effect": evidence["effect"],
              "ci": (evidence["ci_low"], evidence["ci_high"])}
    if few := too_few_units(len(d), unit):
        return result | {"reason": few + "; " + evidence_text}
    if evidence["no_spread"]:
        summary = f"mean ρ {evidence['effect']:+.2f}"
        return result | {"candidate": int(evidence["candidate"]), "p": float(evidence["p"]),
                         "reason": evidence_text + "; " + no_spread(len(d), unit, summary, float(evidence["p"]))}
    if evidence["smallest_p"] >= h.significance:
        return result | {"reason": too_few(evidence["smallest_p"], h, f"{unit_word(unit, len(d))} "
                                            f"(an exact sign-flip over n {unit}s reaches 2/2^n)") + "; " + evidence_text}
    name = f"t-test over {unit}s" if test == "t" else "exact sign-flip"
    name = f"{name} (TOST against ±{_tolerance(h):g})" if h.trend == "none" else name
    return result | {"candidate": int(evidence["candidate"]), "p": float(evidence["p"]),
                     "reason": evidence_text + f"; {name} p = {p_text(evidence['p'])}"}


def _opposite_trends(rho: dict, tolerance: float, significance: float) -> str:
    """A caution when 'no trend' rests on configurations trending both ways: their average cancels, though
    neither is flat (xgboost rising, lightgbm falling). A configuration counts when its mean ρ over the
    splits is beyond the tolerance and differs from 0 by a t-test at ``significance`` / the number of
    configurations (noise alone makes a few of many configurations look sloped). ``rho``: (configuration,
    split) -> ρ."""
    from scipy.stats import t

    by_config: dict[str, list[float]] = {}
    for (config, _), value in rho.items():
        if not np.isnan(value):
            by_config.setdefault(config, []).append(value)
    level = significance / max(len(by_config), 1)
    sloped = {}
    for config, values in by_config.items():
        mean, n = float(np.mean(values)), len(values)
        spread = float(np.std(values, ddof=1)) / np.sqrt(n) if n > 1 else np.nan
        # splits that agree exactly: the exact sign-flip's 2/2^n, not an infinite t (as for the verdicts)
        p = (min(1.0, 2 * 0.5**n) if spread == 0 else float(2 * t.sf(abs(mean) / spread, n - 1))) if n > 1 else 1.0
        if abs(mean) > tolerance and p < level:
            sloped[config] = mean
    if not sloped or max(sloped.values()) < 0 or min(sloped.values()) > 0:
        return ""
    rising, falling = max(sloped, key=sloped.get), min(sloped, key=sloped.get)
    return (f"; caution: configurations trend in opposite directions (mean ρ {sloped[rising]:+.2f} at {rising}, "
            f"{sloped[falling]:+.2f} at {falling}), which the average cancels: a where: filter tests each alone")


def _spearman(values, spearman_rows):
    """ρ of one configuration on one split: None when fewer than 2 axis values, NaN when constant."""
    return float(spearman_rows(values[None])[0]) if len(values) >= 2 else None


def _tolerance(h: Hypothesis) -> float:
    return h.tolerance if h.tolerance is not None else 0.3


def _trend_table(data, config: list[str], axis: str, metric: str, rho: dict) -> str:
    """Markdown: one row per configuration (splits averaged), one column per axis value, mean ρ."""
    pivot = data.pivot_table(index="_config", columns=axis, values=metric, aggfunc="mean", sort=False)
    by_config: dict[str, list[float]] = {}
    for (label, _), value in rho.items():
        by_config.setdefault(label, []).append(value)
    header = [f"{', '.join(config) or 'all'} \\ {axis}", *(format_number(v) for v in pivot.columns), "mean ρ"]
    rows = []
    for label, row in list(pivot.iterrows())[:40]:
        values = by_config.get(label, [])
        mean = "constant" if values and np.all(np.isnan(values)) else format_number(np.nanmean(values)) if values else "–"
        rows.append([label, *(format_number(v) for v in row), mean])
    if len(pivot) > 40:
        rows.append([f"… {len(pivot) - 40} more"] + [""] * (len(header) - 1))
    return f"{metric} (mean over splits):\n\n" + markdown_table(rows, header)
