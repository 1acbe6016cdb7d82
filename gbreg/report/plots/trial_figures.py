"""The numbers behind the figures of single trials: the representative grid points of each booster
(no penalty, strongest L1, strongest L2, best), their learning curves and their leaf-value histograms.
Nothing here draws (:mod:`gbreg.report.plots.drawing` does); the curves and leaf values come through readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from gbreg.report.plots.figure_data import (
    PlotContext,
    best_row,
    finished_trials,
    models_in_order,
    penalty_slice,
)

# --------------------------------------------------------------------------- representative grid points


class RepresentativePoint(NamedTuple):
    model: str
    roles: tuple[str, ...]  # one trial can be several (e.g. "no penalty" and "best")
    run_id: str
    reg_alpha: float
    reg_lambda: float
    test_value: float

    @property
    def label(self) -> str:
        return f"{' = '.join(self.roles)} (α={self.reg_alpha:g}, λ={self.reg_lambda:g})"


def representative_points(results: pd.DataFrame, ctx: PlotContext) -> dict[str, list[RepresentativePoint]]:
    """Per booster: no penalty (0, 0) if swept, strongest L1 (max reg_alpha at min reg_lambda), strongest
    L2 (max reg_lambda at min reg_alpha), and the best by test metric; one entry per distinct trial."""
    results = finished_trials(results)
    out: dict[str, list[RepresentativePoint]] = {}
    for model in models_in_order(results):
        rows = results[(results["model"] == model)]
        if rows["kind"].iloc[0] == "linear":
            continue
        rows, _ = penalty_slice(rows, ctx)
        picks = _pick_roles(rows, ctx)
        merged: dict[str, list[str]] = {}
        for role, row in picks:
            merged.setdefault(row["run_id"], []).append(role)
        by_run = {row["run_id"]: row for _, row in picks}
        out[model] = [RepresentativePoint(model, tuple(roles), run_id, float(by_run[run_id]["reg_alpha"]),
                                          float(by_run[run_id]["reg_lambda"]),
                                          float(by_run[run_id].get(ctx.test_column, np.nan)))
                      for run_id, roles in merged.items()]
    return {model: points for model, points in out.items() if points}


def _pick_roles(rows: pd.DataFrame, ctx: PlotContext) -> list[tuple[str, pd.Series]]:
    picks = []
    unpenalized = rows[(rows["reg_alpha"] == 0) & (rows["reg_lambda"] == 0)]
    if len(unpenalized):
        picks.append(("no penalty", unpenalized.iloc[0]))
    if rows["reg_alpha"].nunique() > 1:
        at_min = rows[rows["reg_lambda"] == rows["reg_lambda"].min()]
        picks.append(("strongest L1", at_min.loc[at_min["reg_alpha"].idxmax()]))
    if rows["reg_lambda"].nunique() > 1:
        at_min = rows[rows["reg_alpha"] == rows["reg_alpha"].min()]
        picks.append(("strongest L2", at_min.loc[at_min["reg_lambda"].idxmax()]))
    best = best_row(rows, ctx)
    if best is not None:
        picks.append(("best", best))
    return picks


class RepresentativeCandidates:
    """Which trials can still turn out representative, decided as a running study logs them, so that it
    keeps the curves and leaf values of those alone (its memory must not grow with the grid): per booster,
    the plan's no-penalty, strongest-L1 and strongest-L2 grid points (at every value of the other axes),
    and the trials tied for the best test score so far. When one of those points failed, its role goes
    to a neighbour that was not kept, and the figure reads that trial from the store."""

    def __init__(self, plan, metric: str):
        self._ctx = PlotContext(metric)
        self._fixed = _fixed_role_trials(plan)
        self._best: dict[str, tuple[float, set[str]]] = {}  # model -> best score so far, trials at it

    def offer(self, trial, row: dict) -> tuple[bool, set[str]]:
        """Whether to keep the data of ``trial`` (its results ``row``), and the trial keys no longer needed."""
        if trial.kind == "linear":
            return False, set()
        fixed = trial.trial_key in self._fixed
        score = row.get(self._ctx.test_column)
        if score is None or not math.isfinite(score):  # NaN scores are never best (best_row)
            return fixed, set()
        best = self._best.get(trial.model)
        better = best is None or (score > best[0] if self._ctx.higher_is_better else score < best[0])
        if better:
            self._best[trial.model] = (score, {trial.trial_key})
            return True, (best[1] - self._fixed) if best else set()
        if score == best[0]:
            best[1].add(trial.trial_key)
            return True, set()
        return fixed, set()


def _fixed_role_trials(plan) -> set[str]:
    """Trial keys of each booster's (0, 0), (max reg_alpha, min reg_lambda) and (min reg_alpha, max
    reg_lambda) points of the plan, the places :func:`_pick_roles` looks first."""
    by_model: dict[str, list[tuple[str, float, float]]] = {}
    for trial in plan:
        if trial.kind != "linear":
            alpha, lam = (_penalty(trial.params.get(axis)) for axis in ("reg_alpha", "reg_lambda"))
            by_model.setdefault(trial.model, []).append((trial.trial_key, alpha, lam))
    fixed = set()
    for points in by_model.values():
        alphas, lambdas = [p[1] for p in points], [p[2] for p in points]
        corners = {(0.0, 0.0), (max(alphas), min(lambdas)), (min(alphas), max(lambdas))}
        fixed |= {key for key, alpha, lam in points if (alpha, lam) in corners}
    return fixed


def _penalty(value) -> float:
    """A penalty as the results table holds it: a model without it is at 0 (penalty_slice)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(number) else number


# ------------------------------------------------------------------ learning curves and leaf histograms


class LearningCurve(NamedTuple):
    point: RepresentativePoint
    rounds: np.ndarray
    train: np.ndarray
    test: np.ndarray


def learning_curve_data(points: dict[str, list[RepresentativePoint]], metric: str,
                        history: Callable[[str, str], np.ndarray]) -> dict[str, list[LearningCurve]]:
    """Train and test metric per boosting round; ``history(run_id, name)`` reads a logged curve."""
    out: dict[str, list[LearningCurve]] = {}
    for model, model_points in points.items():
        curves = []
        for point in model_points:
            train = history(point.run_id, f"curve_train_{metric}")
            test = history(point.run_id, f"curve_test_{metric}")
            if len(test):
                curves.append(LearningCurve(point, np.arange(1, len(test) + 1), train, test))
        if curves:
            out[model] = curves
    return out


class LeafHistogram(NamedTuple):
    point: RepresentativePoint
    counts: np.ndarray
    n_leaves: int
    zero_fraction: float  # exactly-zero leaves (the L1 signature)


class LeafHistogramData(NamedTuple):
    model: str
    edges: np.ndarray  # shared by the model's histograms; symmetric, with 0 in the middle of a bin
    histograms: list[LeafHistogram]


def leaf_histogram_data(points: dict[str, list[RepresentativePoint]],
                        leaf_values: Callable[[str], np.ndarray | None], bins: int = 61) -> list[LeafHistogramData]:
    """Leaf-value histograms of the representative trials; ``leaf_values(run_id)`` reads leaves.parquet."""
    out = []
    for model, model_points in points.items():
        values = {p.run_id: leaf_values(p.run_id) for p in model_points}
        values = {run_id: v for run_id, v in values.items() if v is not None and len(v)}
        if not values:
            continue
        limit = max(float(np.max(np.abs(v))) for v in values.values()) or 1.0
        edges = np.linspace(-limit, limit, bins + 1)
        histograms = [LeafHistogram(p, np.histogram(values[p.run_id], edges)[0], len(values[p.run_id]),
                                    float(np.mean(values[p.run_id] == 0.0)))
                      for p in model_points if p.run_id in values]
        out.append(LeafHistogramData(model, edges, histograms))
    return out


__all__ = ["LeafHistogramData", "LearningCurve", "RepresentativePoint", "leaf_histogram_data",
           "learning_curve_data", "representative_points"]
