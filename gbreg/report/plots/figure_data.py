"""The numbers behind every study figure, computed from the results table (one row per trial).

Nothing here draws: each function returns a small NamedTuple that :mod:`gbreg.report.plots.drawing` renders, so
tests check the numbers without matplotlib (optuna's visualization pattern).

Grid conventions shared by every figure:

- reg_alpha (L1) and reg_lambda (L2) are the two penalty axes; any other sweep axis (``max_depth``, ...)
  is held at the value of the model's best trial, and the figure says so.
- Boosters and linear counterparts share a panel layout keyed by ``model``. A linear panel appears only
  for columns it has on the same scale: ``test_``/``gap_`` metrics, and ``zero_coef_fraction`` as the
  counterpart of ``zero_leaf_fraction`` (see :data:`LINEAR_EQUIVALENT`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from gbreg.catalogue import HIGHER_IS_BETTER, PENALTY_AXES, shown_in
from gbreg.models.linear import FAMILY
from gbreg.tracking.run_table import numeric_columns

TREE_COLUMNS = shown_in("heatmap")
LINEAR_EQUIVALENT = {"zero_leaf_fraction": "zero_coef_fraction"}
# along the pure-L1 axis the L1 norm is the penalized one, along the pure-L2 axis the L2 norm
NORM_COLUMNS = {"reg_alpha": ("leaf_l1", "coef_l1"), "reg_lambda": ("leaf_l2", "coef_l2")}
ROLES = ("no penalty", "strongest L1", "strongest L2", "best")
UNPENALIZED_LINEAR = "ols"  # with reg_alpha = reg_lambda = 0 a lasso or ridge is OLS


@dataclass(frozen=True)
class PlotContext:
    """What a figure needs besides the results: the study's metric and its sweep axes."""

    metric: str
    axes: tuple[str, ...] = PENALTY_AXES

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.metric]

    @property
    def test_column(self) -> str:
        return f"test_{self.metric}"

    def heatmap_columns(self) -> tuple[str, ...]:
        return (self.test_column, f"gap_{self.metric}", *TREE_COLUMNS)

    @classmethod
    def from_prepared(cls, prepared) -> PlotContext:
        return cls(prepared.metric, tuple(prepared.spec.sweep_values()))

    @classmethod
    def from_parent_params(cls, params: dict[str, str]) -> PlotContext:
        """From a parent run's params (``metric``, ``sweep.<axis>``), for studies read back from MLflow."""
        axes = tuple(name.removeprefix("sweep.") for name in params if name.startswith("sweep."))
        return cls(params.get("metric", "rmse"), axes or PENALTY_AXES)


def panel_column(kind: str, column: str) -> str | None:
    """The column a model of this kind shows for ``column``, or None when it has no comparable one."""
    if kind != "linear" or column.startswith(("test_", "gap_", "train_")):
        return column
    return LINEAR_EQUIVALENT.get(column)


def models_in_order(results: pd.DataFrame) -> list[str]:
    """Boosters first, then linear counterparts, each in the order the study ran them."""
    kinds = results.drop_duplicates("model").set_index("model")["kind"]
    return [m for m in kinds.index if kinds[m] != "linear"] + [m for m in kinds.index if kinds[m] == "linear"]


def heatmap_groups(results: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(panel label, rows): one panel per booster, one per linear family. Each counterpart covers only
    its kind of grid point (lasso the λ = 0 row, ridge the α = 0 column, elastic net the interior), so
    a family's models fill the grid together."""

    groups: dict[str, list[str]] = {}
    for model in models_in_order(results):
        kind = results.loc[results["model"] == model, "kind"].iloc[0]
        groups.setdefault(FAMILY.get(model, model) if kind == "linear" else model, []).append(model)
    out = []
    for key, models in groups.items():
        rows = results[results["model"].isin(models)]
        label = f"{key} ({'/'.join(models)})" if rows["kind"].iloc[0] == "linear" else key
        out.append((label, rows))
    return out


def panel_label(model: str, kind: str) -> str:
    return f"{model} (linear)" if kind == "linear" else model


def best_row(rows: pd.DataFrame, ctx: PlotContext) -> pd.Series | None:
    """The row with the best test metric (NaN scores never win)."""
    scored = rows.dropna(subset=[ctx.test_column]) if ctx.test_column in rows else rows.iloc[0:0]
    if not len(scored):
        return None
    index = scored[ctx.test_column].idxmax() if ctx.higher_is_better else scored[ctx.test_column].idxmin()
    return scored.loc[index]


def held_axes(rows: pd.DataFrame, ctx: PlotContext) -> dict[str, object]:
    """Non-penalty sweep axes of one model, held at its best trial's values."""
    best = best_row(rows, ctx)
    if best is None:
        return {}
    return {axis: best[axis] for axis in ctx.axes
            if axis not in PENALTY_AXES and axis in rows and rows[axis].notna().any()}


def penalty_slice(rows: pd.DataFrame, ctx: PlotContext) -> tuple[pd.DataFrame, dict[str, object]]:
    """One model's trials over (reg_alpha, reg_lambda) with every other axis at its best trial's value."""
    held = held_axes(rows, ctx)
    for axis, value in held.items():
        rows = rows[rows[axis] == value]
    for axis in PENALTY_AXES:  # a model without this penalty is at 0 on its axis
        rows = rows.assign(**{axis: rows[axis].fillna(0.0) if axis in rows else 0.0})
    return rows, held


def finished_trials(results: pd.DataFrame) -> pd.DataFrame:
    """Finished trials only, with numeric columns as numbers."""
    if "status" in results:
        results = results[results["status"].fillna("FINISHED") == "FINISHED"]
    return numeric_columns(results)


# ---------------------------------------------------------------------------------------------- heatmaps


class HeatmapPanel(NamedTuple):
    label: str
    column: str  # the column shown (zero_coef_fraction for a linear panel of zero_leaf_fraction)
    values: np.ndarray  # shape (len(lambdas), len(alphas)); NaN where the grid point is missing
    best: tuple[int, int] | None  # (row, col) of the best test metric, when the figure shows it
    held: dict[str, object]


class HeatmapData(NamedTuple):
    column: str
    alphas: list[float]  # columns, increasing (0 first when swept)
    lambdas: list[float]  # rows, increasing
    panels: list[HeatmapPanel]
    vmin: float  # one colour scale shared by every panel
    vmax: float
    higher_is_better: bool | None  # None for statistics that are neither good nor bad


def heatmap_data(results: pd.DataFrame, column: str, ctx: PlotContext) -> HeatmapData | None:
    """``column`` on the (reg_alpha, reg_lambda) grid, one panel per model; None if no model has it, or if
    the grid has a single value on either penalty: a one-axis grid is a line, drawn as a path."""
    results = finished_trials(results)
    panels: list[HeatmapPanel] = []
    sliced = {}
    for label, rows in heatmap_groups(results):
        kind = rows["kind"].iloc[0]
        shown = panel_column(kind, column)
        if shown is None or shown not in rows or rows[shown].isna().all():
            continue
        sliced[label] = (kind, shown, *penalty_slice(rows, ctx))
    if not sliced:
        return None
    alphas = sorted({float(a) for _, _, rows, _ in sliced.values() for a in rows["reg_alpha"]})
    lambdas = sorted({float(b) for _, _, rows, _ in sliced.values() for b in rows["reg_lambda"]})
    if len(alphas) < 2 or len(lambdas) < 2:
        return None
    for label, (_kind, shown, rows, held) in sliced.items():
        values = np.full((len(lambdas), len(alphas)), np.nan)
        cells = rows.drop_duplicates(["reg_lambda", "reg_alpha"], keep="last")  # one value a cell, the last as logged
        values[np.searchsorted(lambdas, cells["reg_lambda"].to_numpy(float)),
               np.searchsorted(alphas, cells["reg_alpha"].to_numpy(float))] = cells[shown].to_numpy(float)
        best = None
        if column == ctx.test_column and np.isfinite(values).any():
            flat = np.nanargmax(values) if ctx.higher_is_better else np.nanargmin(values)
            best = tuple(int(i) for i in np.unravel_index(flat, values.shape))
        panels.append(HeatmapPanel(label, shown, values, best, held))
    finite = np.concatenate([p.values[np.isfinite(p.values)] for p in panels])
    if not len(finite):
        return None
    direction = ctx.higher_is_better if column.startswith(("test_", "gap_")) else None
    if column.startswith("gap_"):
        direction = False  # the gap is signed so that larger means more overfitting
    return HeatmapData(column, alphas, lambdas, panels, float(finite.min()), float(finite.max()), direction)


# ------------------------------------------------------------------------------------ regularization paths


class PathLine(NamedTuple):
    held_value: float  # the other penalty's value along this line
    x: np.ndarray  # the penalty, increasing
    y: np.ndarray  # mean over repeats/folds
    sd: np.ndarray | None  # standard deviation over repeats/folds (None with a single split)


class PathPanel(NamedTuple):
    label: str
    column: str
    lines: list[PathLine]
    held: dict[str, object]


class PathData(NamedTuple):
    axis: str
    other_axis: str
    column: str
    panels: list[PathPanel]

    @property
    def has_bands(self) -> bool:
        return any(line.sd is not None for panel in self.panels for line in panel.lines)


def _line(rows: pd.DataFrame, axis: str, column: str, held_value: float) -> PathLine:
    rows = rows.sort_values(axis)
    sd_column = f"{column}_std"
    sd = rows[sd_column].to_numpy(float) if sd_column in rows and rows[sd_column].notna().any() else None
    return PathLine(held_value, rows[axis].to_numpy(float), rows[column].to_numpy(float), sd)


def path_data(results: pd.DataFrame, axis: str, column: str, ctx: PlotContext) -> PathData | None:
    """``column`` against ``axis``, one line per value of the other penalty, one panel per model.

    Along a penalty the lines are the other penalty's values. Along any other sweep axis (``gamma``,
    ``max_depth``, ...) they are reg_lambda's values, with reg_alpha and the remaining axes held at the
    model's best trial; models without that axis have no panel.
    """
    other = PENALTY_AXES[1 - PENALTY_AXES.index(axis)] if axis in PENALTY_AXES else "reg_lambda"
    results = finished_trials(results)
    panels = []
    for model in models_in_order(results):
        rows = results[results["model"] == model]
        kind = rows["kind"].iloc[0]
        shown = panel_column(kind, column)
        if shown is None or shown not in rows or rows[shown].isna().all():
            continue
        if axis not in rows or rows[axis].isna().all():
            continue
        rows, held = penalty_slice(rows, ctx) if axis in PENALTY_AXES else axis_slice(rows, axis, ctx)
        lines = [_line(group, axis, shown, float(value)) for value, group in rows.groupby(other, sort=True)
                 if group[axis].nunique() > 1]
        if lines:
            panels.append(PathPanel(panel_label(model, kind), shown, lines, held))
    return PathData(axis, other, column, panels) if panels else None


def axis_slice(rows: pd.DataFrame, axis: str, ctx: PlotContext) -> tuple[pd.DataFrame, dict[str, object]]:
    """One model's trials over (``axis``, reg_lambda), reg_alpha and every other axis at the best trial's."""
    best = best_row(rows, ctx)
    if best is None:
        return rows.iloc[0:0], {}
    held = {name: best[name] for name in ("reg_alpha", *ctx.axes)
            if name not in (axis, "reg_lambda") and name in rows and rows[name].notna().any()}
    for name, value in held.items():
        rows = rows[rows[name] == value]
    rows = rows.assign(reg_lambda=rows["reg_lambda"].fillna(0.0) if "reg_lambda" in rows else 0.0)
    return rows, held


def extra_axes(ctx: PlotContext) -> tuple[str, ...]:
    """The sweep axes besides the two penalties, in spec order."""
    return tuple(axis for axis in ctx.axes if axis not in PENALTY_AXES)


class ComparisonPath(NamedTuple):
    """One model along a pure penalty axis (the other penalty at its smallest value)."""

    label: str
    kind: str
    x: np.ndarray
    sparsity: np.ndarray  # zero_leaf_fraction (boosters) or zero_coef_fraction (linear)
    norm: np.ndarray  # leaf / coefficient norm relative to the least-penalized point
    norm_column: str


class ComparisonData(NamedTuple):
    axis: str
    other_value: float
    paths: list[ComparisonPath]


def comparison_data(results: pd.DataFrame, axis: str, ctx: PlotContext) -> ComparisonData | None:
    """Sparsity and shrinkage of boosters and linear counterparts on one pure penalty axis.

    Norms are divided by their value at the smallest penalty on the axis, so leaf norms and coefficient
    norms (different units) share one y axis: 1 = unshrunk. Linear counterparts run only where they
    match (a lasso at reg_lambda = 0 and reg_alpha > 0), so their paths start from the OLS trial at 0
    when the study has one. None without linear counterparts.
    """
    results = finished_trials(results)
    if not (results["kind"] == "linear").any():
        return None
    other = PENALTY_AXES[1 - PENALTY_AXES.index(axis)]
    paths = []
    other_value = float("nan")
    for model in models_in_order(results):
        rows = results[results["model"] == model]
        kind = rows["kind"].iloc[0]
        sparsity_column = panel_column(kind, "zero_leaf_fraction")
        norm_column = NORM_COLUMNS[axis][kind == "linear"]
        if sparsity_column not in rows or norm_column not in rows:
            continue
        rows, _ = penalty_slice(rows, ctx)
        other_value = float(rows[other].min())
        rows = rows[rows[other] == other_value]
        if kind == "linear" and model != UNPENALIZED_LINEAR and rows[axis].min() > 0:
            rows = pd.concat([_unpenalized_linear(results), rows])  # lasso/ridge start from OLS at 0
        rows = rows.sort_values(axis)
        if rows[axis].nunique() < 2:
            continue
        norms = rows[norm_column].to_numpy(float)
        base = norms[0] if norms[0] else np.nan
        paths.append(ComparisonPath(panel_label(model, kind), kind, rows[axis].to_numpy(float),
                                    rows[sparsity_column].to_numpy(float), norms / base, norm_column))
    if not any(p.kind == "linear" for p in paths):
        return None
    return ComparisonData(axis, other_value, paths)


def _unpenalized_linear(results: pd.DataFrame) -> pd.DataFrame:
    """The OLS counterpart's trial at (0, 0), the common start of every linear path (empty without one)."""
    rows = results[results["model"] == UNPENALIZED_LINEAR]
    rows = rows.assign(**{axis: rows[axis].fillna(0.0) if axis in rows else 0.0 for axis in PENALTY_AXES})
    return rows[(rows["reg_alpha"] == 0) & (rows["reg_lambda"] == 0)]


__all__ = [
    "ComparisonData",
    "HeatmapData",
    "PathData",
    "PlotContext",
    "comparison_data",
    "heatmap_data",
    "path_data",
]
