"""A best-point claim ("test_rmse is best inside the grid, not at its edge") tested on one row per trial x
split: the best interior minus the best edge cell of each configuration's unit-averaged surface, against a
flat surface carrying the units' noise. Called by :func:`gbreg.analysis.judgement.judge`."""

from __future__ import annotations

import numpy as np

from gbreg.analysis.best_point_inference import best_evidence
from gbreg.analysis.claim_wording import markdown_table, no_spread, p_text, too_few, too_few_units, unit_word
from gbreg.analysis.verdicts import config_columns, format_number, numeric_rows, stratum_labels
from gbreg.spec.hypotheses import Hypothesis


def best_point_claim(h: Hypothesis, rows, axes: list[str], unit: str, test: str) -> dict:
    metric, interior = h.best, list(h.interior or [])
    config = config_columns(rows, axes, set(interior))
    labelled = rows.assign(_config=stratum_labels(rows, config))
    data = numeric_rows(labelled, metric, *interior)
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
    if few := too_few_units(len(splits), unit, complete_units):
        return {"reason": few + left_out_text, "n_units": len(splits)}
    values = np.stack([grids[label].loc[cells, splits].to_numpy() for label in grids])[None]
    maximize = h.goal_for() == "max"
    evidence = {k: v[0] for k, v in best_evidence(values, edge, maximize, h.significance, test).items()}
    numbers = {"statistic": evidence["effect"], "ci_low": evidence["ci_low"], "ci_high": evidence["ci_high"],
               "n_configurations": len(grids), "n_units": len(splits), "n_cells": len(cells),
               "n_edge_cells": int(edge.sum()),
               "n_configurations_left_out": len(incomplete) + sum(map(len, without.values())),
               # where a flat surface's statistic lies (not at 0: the choice of the best cells): what a suite
               # combines, (statistic - null_mean) / null_sd (gbreg.suite.aggregate.standardized)
               "null_mean": float(evidence["null_mean"]), "null_sd": float(evidence["null_sd"])}
    text = (f"best interior minus best edge {metric} (oriented: positive = interior better, goal {h.goal_for()}) "
            f"of the {unit}-averaged surface: {evidence['effect']:+.4g} (paired {1 - h.significance:.0%} interval "
            f"{evidence['ci_low']:+.4g} to {evidence['ci_high']:+.4g}, not adjusted for the choice) over "
            f"{len(grids)} configuration(s) and {unit_word(unit, len(splits))}{complete_units}; "
            f"{len(cells) - int(edge.sum())} interior and {int(edge.sum())} edge cells{left_out_text}")
    table = _best_table(grids, cells, splits, edge, interior, metric, maximize)
    result = {"numbers": numbers, "table": table, "n_units": len(splits), "effect": evidence["effect"],
              "ci": (evidence["ci_low"], evidence["ci_high"])}
    if evidence["smallest_p"] >= h.significance:
        return result | {"reason": too_few(evidence["smallest_p"], h, unit_word(unit, len(splits))) + "; " + text}
    if evidence.get("no_spread", False):  # identical surfaces: a null without noise would give p = 2/2001
        summary = f"a gap of {evidence['effect']:+.4g}"
        return result | {"candidate": int(evidence["candidate"]), "p": float(evidence["p"]),
                         "reason": text + "; " + no_spread(len(splits), unit, summary, float(evidence["p"]))}
    return result | {"candidate": int(evidence["candidate"]), "p": float(evidence["p"]),
                     "reason": text + f"; {'t-scaled multiplier' if test == 't' else 'sign-flip'} test against "
                               f"a flat surface carrying the {unit}s' noise p = {p_text(evidence['p'])}"}


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
    return markdown_table(rows, header)
