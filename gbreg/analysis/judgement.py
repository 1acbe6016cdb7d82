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
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gbreg.analysis.inference import (
    MIN_UNITS,
    TESTS,
    best_evidence,
    holm,
    sign_evidence,
    spearman_rows,
    trend_evidence,
)
from gbreg.analysis.verdicts import Verdict, filter_rows, format_number, stratum_labels
from gbreg.spec.hypotheses import Hypothesis

UNITS = ("auto", "split", "repeat")


class Judgement(list):
    """The verdicts, in the order of the hypotheses; :meth:`to_frame` gives a table."""

    def to_frame(self):
        import pandas as pd

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
    p-values) or ``sign_flip`` (exact randomization tests; n units never give p below 2 / 2^n)."""
    import pandas as pd

    if not isinstance(cells, pd.DataFrame):
        raise TypeError(f"judge: cells must be a pandas DataFrame (one row per trial x split), got "
                        f"{type(cells).__name__}")
    if unit not in UNITS:
        raise ValueError(f"judge: unit must be one of {UNITS}, got {unit!r}")
    if test not in TESTS:
        raise ValueError(f"judge: test must be one of {TESTS}, got {test!r}")
    hypotheses = [h if isinstance(h, Hypothesis) else Hypothesis.model_validate(h) for h in expect]
    unit = _resolve_unit(cells, unit)
    drafts = [_judge_one(h.number or index, h, cells, trials, list(axes), unit, test)
              for index, h in enumerate(hypotheses, 1)]
    return Judgement(_holm_verdicts(drafts))


def evaluate_hypotheses(hypotheses: list[Hypothesis], results, splits, axes: list[str],
                        seed: int = 0) -> list[Verdict]:
    """A study's verdicts: :func:`judge` on its tables. ``results``: one row per trial (for metrics
    computed after the sweep); ``splits``: one row per (trial, split) with ``repeat`` and ``fold``
    columns. ``seed`` is accepted for compatibility and unused: the one test that resamples (the best
    point's multiplier bootstrap) uses a fixed seed of its own, so a verdict is the same on every run."""
    return list(judge(splits, hypotheses, axes, trials=results))


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
    return draft | {"trend": _trend, "sign": _sign, "best": _best}[h.kind](h, rows, axes, unit, test)


def _with_splits(rows, unit: str):
    """``_split`` (repeat x fold) and ``_unit`` (the independent replicate: the repeat or the split) labels."""
    repeat = rows["repeat"].astype(str) if "repeat" in rows.columns else "0"
    fold = rows["fold"].astype(str) if "fold" in rows.columns else "0"
    split = repeat + "/" + fold
    return rows.assign(_split=split, _unit=repeat if unit == "repeat" else split)


def _config_columns(rows, axes: list[str], varied: set[str]) -> list[str]:
    columns = ["model"] if "model" in rows.columns else [c for c in ("library",) if c in rows.columns]
    return columns + [a for a in axes if a not in varied and a in rows.columns and a not in columns]


def _numeric(rows, *columns: str):
    import pandas as pd

    return rows.assign(**{c: pd.to_numeric(rows[c], errors="coerce") for c in columns}).dropna(subset=list(columns))


def _too_few_units(n: int, unit: str, qualifier: str = "") -> str | None:
    """Why ``n`` units allow no test (None when they do); ``qualifier`` follows the count ("of 3 with ...")."""
    if n >= MIN_UNITS:
        return None
    return (f"only {_unit_word(unit, n)}{qualifier}: a test needs at least {MIN_UNITS} independent {unit}s to say "
            f"anything (add repeats)")


def _too_few(smallest_p: float, h: Hypothesis, what: str) -> str:
    return (f"{what}: the smallest p-value an exact test can give here is {smallest_p:.3g}, not below the level "
            f"{h.significance:g}, whatever the data")


def _unit_word(unit: str, n: int) -> str:
    return f"{n} {unit}{'s' if n != 1 else ''}"


def _p(p: float) -> str:
    if p == 0:  # a t statistic of infinite size: the units' values did not vary at all
        return "0 (the units agree exactly: no spread)"
    return f"{p:.2g}"


def _bounded_ci(level: float, low: float, high: float, n_units: int, unit: str) -> str:
    """'95% CI +0.71 to +1.00' for an effect in [-1, 1] (a mean ρ, a share difference): the t-interval
    clipped to that range; 'no interval from 1 split' when there is none."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"no interval from {_unit_word(unit, n_units)}"
    return f"{level:.0%} CI {max(low, -1.0):+.2f} to {min(high, 1.0):+.2f}"


# ---------------------------------------------------------------------------------------- trend


def _trend(h: Hypothesis, rows, axes: list[str], unit: str, test: str) -> dict:
    axis, metric = h.along, h.metric
    config = _config_columns(rows, axes, {axis})
    data = _numeric(rows, axis, metric)
    if data.empty:  # e.g. where: {model: catboost} along reg_alpha, which CatBoost does not have
        return {"reason": f"no row the hypothesis selects has a value of {axis} with a value of {metric}"}
    data = data.assign(_config=stratum_labels(data, config))
    wide = data.groupby(["_config", "_split", axis], sort=False)[metric].mean().unstack(axis).sort_index(axis=1)
    rho = {key: _spearman(values[~np.isnan(values)], spearman_rows) for key, values in zip(wide.index, wide.to_numpy())}
    usable = {key: value for key, value in rho.items() if value is not None}
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
    n_constant = int(sum(np.isnan(v) for v in usable.values()))
    evidence = {k: v[0] for k, v in trend_evidence(d[None], h.trend, h.significance, _tolerance(h), test).items()}
    agree = (int(np.sum(np.abs(d) < _tolerance(h))) if h.trend == "none"
             else int(np.sum(np.sign(d) == (1 if h.trend == "increasing" else -1))))
    numbers = {"statistic": evidence["effect"], "ci_low": evidence["ci_low"], "ci_high": evidence["ci_high"],
               "n_units": len(d), "n_configurations": len({c for c, _ in usable}), "n_constant": n_constant,
               "units_agreeing": agree}
    level = 1 - h.significance
    evidence_text = (f"mean Spearman ρ along {axis} = {evidence['effect']:+.2f} "
                     f"({_bounded_ci(level, evidence['ci_low'], evidence['ci_high'], len(d), unit)}), averaged per {unit} over "
                     f"{numbers['n_configurations']} configuration(s) (held fixed: {', '.join(config) or 'nothing'}) "
                     f"then over {_unit_word(unit, len(d))}; {agree} of {len(d)} {unit}s "
                     + (f"have |ρ| < {_tolerance(h):g}" if h.trend == "none" else "have ρ of the stated sign"))
    if n_constant:
        evidence_text += (f"; {n_constant} configuration × split cell(s) constant along {axis} (left out of "
                          "the averages; a split where all are constant counts as ρ = 0)")
    if h.trend == "none":
        evidence_text += _opposite_trends(usable, _tolerance(h), h.significance)
    table = _trend_table(data, config, axis, metric, usable)
    result = {"numbers": numbers, "table": table, "n_units": len(d), "effect": evidence["effect"],
              "ci": (evidence["ci_low"], evidence["ci_high"])}
    if few := _too_few_units(len(d), unit):
        return result | {"reason": few + "; " + evidence_text}
    if evidence["smallest_p"] >= h.significance:
        return result | {"reason": _too_few(evidence["smallest_p"], h, f"{_unit_word(unit, len(d))} "
                                            f"(an exact sign-flip over n {unit}s reaches 2/2^n)") + "; " + evidence_text}
    name = f"t-test over {unit}s" if test == "t" else "exact sign-flip"
    name = f"{name} (TOST against ±{_tolerance(h):g})" if h.trend == "none" else name
    return result | {"candidate": int(evidence["candidate"]), "p": float(evidence["p"]),
                     "reason": evidence_text + f"; {name} p = {_p(evidence['p'])}"}


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
        p = 0.0 if spread == 0 else float(2 * t.sf(abs(mean) / spread, n - 1)) if n > 1 else 1.0
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
    return f"{metric} (mean over splits):\n\n" + _markdown_table(rows, header)


def _markdown_table(rows: list[list[str]], header: list[str]) -> str:
    """A markdown table of cells already formatted as text: kept as they are (no number parsing) and
    without alignment colons, so it renders as the tables of findings.md always have."""
    return pd.DataFrame(rows, columns=header).to_markdown(index=False, disable_numparse=True, stralign=None)


# ----------------------------------------------------------------------------------------- sign


def _sign(h: Hypothesis, rows, axes: list[str], unit: str, test: str) -> dict:
    metric = h.metric
    config = _config_columns(rows, axes, set())
    data = _numeric(rows, metric)
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
              f"zero of {n_configs} configurations (each the mean over {_unit_word(unit, n_units)})")
    if test == "t":
        text = (f"{counts}; share of configuration × {unit} cells positive minus share negative "
                f"{evidence['effect']:+.2f} ({_bounded_ci(1 - h.significance, evidence['ci_low'], evidence['ci_high'], n_units, unit)}"
                f"; zeros count against both signs), median over configurations "
                f"{evidence['median']:+.4g}; t-test with configurations and {unit}s as crossed random effects "
                f"(df {evidence['df']:.1f})")
    else:
        text = (f"{counts}, median {evidence['effect']:+.4g} ({1 - h.significance:.0%} CI {evidence['ci_low']:+.4g} "
                f"to {evidence['ci_high']:+.4g}); sign test over configurations p = {_p(evidence['p_configurations'])}, "
                f"sign-flip over {unit}s of the per-{unit} median p = {_p(evidence['p_splits'])}")
    if dropped:
        text += f"; {dropped} configuration(s) without values on most {unit}s left out"
    result = {"numbers": numbers, "table": _sign_table(data, config, metric), "n_units": n_units,
              "effect": evidence["effect"], "ci": (evidence["ci_low"], evidence["ci_high"])}
    if few := _too_few_units(n_units, unit):
        return result | {"reason": few + "; " + text}
    if evidence["smallest_p"] >= h.significance:
        return result | {"reason": _too_few(evidence["smallest_p"], h, f"{n_configs} configuration(s) and "
                                            f"{_unit_word(unit, n_units)}") + "; " + text}
    if evidence["candidate"] == 0:
        return result | {"p": 1.0, "reason": "no sign: " + text}
    return result | {"candidate": int(evidence["candidate"]), "p": float(evidence["p"]),
                     "reason": text + f"; p = {_p(evidence['p'])}"}


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
    return f"{metric} by configuration:\n\n" + _markdown_table(rows, header)


# ----------------------------------------------------------------------------------------- best


def _best(h: Hypothesis, rows, axes: list[str], unit: str, test: str) -> dict:
    metric, interior = h.best, list(h.interior or [])
    config = _config_columns(rows, axes, set(interior))
    labelled = rows.assign(_config=stratum_labels(rows, config))
    data = _numeric(labelled, metric, *interior)
    grids = {label: group.pivot_table(index=interior, columns="_unit", values=metric, aggfunc="mean")
             for label, group in data.groupby("_config", sort=False)}
    grids, cells, incomplete = _shared_grid(grids)
    splits = sorted(set.intersection(*(set(g.loc[cells].dropna(axis=1).columns) for g in grids.values()))) if cells else []
    all_units = set().union(*(set(g.columns) for g in grids.values()))
    complete_units = f" of {len(all_units)} with a value at every cell" if len(splits) < len(all_units) else ""
    edge = _edge_cells(cells, len(interior))
    without = _without_values(labelled, set(data["_config"]), [*interior, metric])
    left_out_text = _left_out_text(incomplete, without)
    if edge is None:
        return {"reason": f"the configurations share no grid with 3 or more values along every one of "
                          f"{', '.join(interior)}: there is no interior cell{left_out_text}"}
    if few := _too_few_units(len(splits), unit, complete_units):
        return {"reason": few + left_out_text, "n_units": len(splits)}
    values = np.stack([grids[label].loc[cells, splits].to_numpy() for label in grids])[None]
    maximize = h.goal_for() == "max"
    evidence = {k: v[0] for k, v in best_evidence(values, edge, maximize, h.significance, test).items()}
    numbers = {"statistic": evidence["effect"], "ci_low": evidence["ci_low"], "ci_high": evidence["ci_high"],
               "n_configurations": len(grids), "n_units": len(splits), "n_cells": len(cells),
               "n_edge_cells": int(edge.sum()),
               "n_configurations_left_out": len(incomplete) + sum(map(len, without.values()))}
    text = (f"best interior minus best edge {metric} (oriented: positive = interior better, goal {h.goal_for()}) "
            f"of the {unit}-averaged surface: {evidence['effect']:+.4g} (paired {1 - h.significance:.0%} interval "
            f"{evidence['ci_low']:+.4g} to {evidence['ci_high']:+.4g}, not adjusted for the choice) over "
            f"{len(grids)} configuration(s) and {_unit_word(unit, len(splits))}{complete_units}; "
            f"{len(cells) - int(edge.sum())} interior and {int(edge.sum())} edge cells{left_out_text}")
    table = _best_table(grids, cells, splits, edge, interior, metric, maximize)
    result = {"numbers": numbers, "table": table, "n_units": len(splits), "effect": evidence["effect"],
              "ci": (evidence["ci_low"], evidence["ci_high"])}
    if evidence["smallest_p"] >= h.significance:
        return result | {"reason": _too_few(evidence["smallest_p"], h, _unit_word(unit, len(splits))) + "; " + text}
    return result | {"candidate": int(evidence["candidate"]), "p": float(evidence["p"]),
                     "reason": text + f"; {'t-scaled multiplier' if test == 't' else 'sign-flip'} test against "
                               f"a flat surface carrying the {unit}s' noise p = {_p(evidence['p'])}"}


def _without_values(labelled, kept: set, columns: list[str]) -> dict[str, list[str]]:
    """The configurations of ``labelled`` (rows with a ``_config`` label) that have no row with a value in
    every one of ``columns``, grouped by why: e.g. {"without a value of reg_alpha": ["catboost",
    "sklearn_hgb"]} (libraries without L1 on a reg_alpha x reg_lambda grid)."""
    import pandas as pd

    why: dict[str, list[str]] = {}
    for label, group in labelled.groupby("_config", sort=False):
        if label in kept:
            continue
        absent = [c for c in columns if pd.to_numeric(group[c], errors="coerce").isna().all()]
        reason = (f"without a value of {' or '.join(absent)}" if absent
                  else f"without a trial with a value of each of {', '.join(columns)}")
        why.setdefault(reason, []).append(str(label))
    return why


def _left_out_text(incomplete: list[str], without: dict[str, list[str]]) -> str:
    """The clauses naming every configuration left out of a best-point comparison, and why."""
    parts = [f"without a value at every cell of the grid: {', '.join(incomplete)}"] if incomplete else []
    parts += [f"{reason}: {', '.join(labels)}" for reason, labels in without.items()]
    return "".join(f"; left out, {part}" for part in parts)


def _shared_grid(grids: dict) -> tuple[dict, list, list[str]]:
    """The configurations whose surfaces are compared, their common cells, and the labels left out.

    The grid is every cell some configuration has. A configuration without a value at each of them is
    left out rather than shrinking the grid for all: a linear counterpart covers only its kind of grid
    point (``lasso`` only reg_lambda = 0 < reg_alpha), so the cells shared with it would move the
    boosters' edges, or, with two counterparts on disjoint points, leave no cell at all. When no
    configuration has every cell (failed trials in several), the cells they all have are used.
    """
    cells_of = {label: set(grid.index) for label, grid in grids.items()}
    grid = set().union(*cells_of.values())
    complete = {label: g for label, g in grids.items() if cells_of[label] == grid}
    if not complete and grids:
        return grids, sorted(set.intersection(*cells_of.values())), []
    return complete, sorted(grid), [label for label in grids if label not in complete]


def _edge_cells(cells: list, n_axes: int):
    """Per cell, whether it lies at the minimum or maximum of some axis; None when the cells have no
    interior (fewer than 3 values along an axis, or every cell on an edge)."""
    if not cells:
        return None
    frame = np.array([c if isinstance(c, tuple) else (c,) for c in cells], dtype="float64").reshape(len(cells), n_axes)
    edge = np.zeros(len(cells), dtype=bool)
    for k in range(n_axes):
        edge |= (frame[:, k] == frame[:, k].min()) | (frame[:, k] == frame[:, k].max())
    if edge.all() or any(len(np.unique(frame[:, k])) < 3 for k in range(n_axes)):
        return None
    return edge


def _best_table(grids, cells, splits, edge, interior, metric, maximize: bool) -> str:
    pick = np.argmax if maximize else np.argmin
    header = ["configuration", f"best cell ({', '.join(interior)})", metric, "best interior cell", "best edge cell"]
    rows = []

    def name(i: int) -> str:
        cell = cells[i] if isinstance(cells[i], tuple) else (cells[i],)
        return ", ".join(f"{a}={format_number(v)}" for a, v in zip(interior, cell))

    for label, grid in list(grids.items())[:40]:
        means = grid.loc[cells, splits].mean(axis=1).to_numpy()
        best = int(pick(means))
        inner = np.flatnonzero(~edge)[int(pick(means[~edge]))]
        outer = np.flatnonzero(edge)[int(pick(means[edge]))]
        rows.append([label, f"{name(best)} ({'edge' if edge[best] else 'interior'})", format_number(means[best]),
                     f"{name(inner)}: {format_number(means[inner])}", f"{name(outer)}: {format_number(means[outer])}"])
    return _markdown_table(rows, header)


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
