"""Render the numbers of :mod:`gbreg.report.plots.figure_data` with matplotlib's object API and the Agg canvas.

Figures are built as ``matplotlib.figure.Figure`` objects (no pyplot, no global backend state), sized
about 900-1000 px wide at 100 dpi with 12 pt text, so they stay readable when the MLflow artifact viewer
shrinks them to ~800 px.

How a penalty axis that includes 0 is drawn:

- heatmaps use a **categorical** axis: one equal-width cell per grid value, labelled with the value, in
  increasing order. Grids are log-spaced, so equal cells are a log scale, and the 0 row and column are
  ordinary cells (first row, first column).
- line plots (regularization paths, comparisons) use a **symlog** axis whose linear threshold is the
  smallest positive grid value: log-scaled above it, with 0 one decade to its left. Ticks sit at the
  grid values.
"""

from __future__ import annotations

import io
import math
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from gbreg.catalogue import HIGHER_IS_BETTER, SCORE_TITLES, TITLES
from gbreg.report.plots.figure_data import ComparisonData, HeatmapData, PathData
from gbreg.report.plots.trial_figures import LeafHistogramData, LearningCurve, RepresentativePoint

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn: the main process of a study with
    from matplotlib.figure import Figure  # workers never draws, and need not pay for the import

DPI = 100
STYLE = {"font.size": 12, "axes.titlesize": 12.5, "axes.labelsize": 12, "xtick.labelsize": 10.5,
         "ytick.labelsize": 10.5, "legend.fontsize": 10, "figure.titlesize": 14, "axes.grid": False,
         # titles at the top of their panel: no ticks or labels are drawn above a panel, so matplotlib's
         # search for a title position clear of them (a tight bounding box of every axis) finds 1.0 anyway
         "axes.titley": 1.0}
ROLE_COLOURS = {"no penalty": "#444444", "strongest L1": "#1f77b4", "strongest L2": "#ff7f0e", "best": "#2ca02c"}
AXIS_NAMES = {"reg_alpha": "reg_alpha (L1)", "reg_lambda": "reg_lambda (L2)"}
METRIC_NAMES = SCORE_TITLES
STAT_NAMES = TITLES


@contextmanager
def _style():
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def column_title(column: str) -> str:
    """A human name for a results column: ``test_rmse`` -> ``test RMSE``."""
    for prefix in ("test", "train"):
        if column.startswith(prefix + "_"):
            return f"{prefix} {METRIC_NAMES.get(column[len(prefix) + 1:], column)}"
    if column.startswith("gap_"):
        metric = column[4:]
        order = "train − test" if HIGHER_IS_BETTER.get(metric) else "test − train"
        return f"generalization gap ({order} {METRIC_NAMES.get(metric, metric)})"
    return STAT_NAMES.get(column, column.replace("_", " "))


def short_title(column: str) -> str:
    """A colour-bar label: the metric without the gap's explanation."""
    if column.startswith("gap_"):
        return f"gap ({METRIC_NAMES.get(column[4:], column[4:])})"
    return column_title(column)


def _grid(n_panels: int, panel_width: float, panel_height: float, right: float = 0.3, max_columns: int = 3,
          title_lines: int = 1) -> tuple[Figure, list]:
    """A figure of panels with fixed margins in inches (no layout engine: it would double the drawing
    time, and every figure's labels have known lengths). ``right`` leaves room for a legend/colour bar."""
    columns = min(n_panels, max_columns)
    rows = math.ceil(n_panels / columns)
    left, bottom, top, wgap = 0.95, 0.75, 0.55 + 0.28 * title_lines, 0.85
    hgap = bottom + 0.28 * title_lines + 0.1
    width = left + columns * panel_width + (columns - 1) * wgap + right
    height = bottom + rows * panel_height + (rows - 1) * hgap + top
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    figure.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                           top=1 - top / height, wspace=wgap / panel_width, hspace=hgap / panel_height)
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for unused in axes[n_panels:]:
        unused.set_visible(False)
    return figure, axes[:n_panels]


def _suptitle(figure: Figure, text: str) -> None:
    figure.suptitle(text, y=1 - 0.06 / figure.get_figheight(), va="top")


def _side_axes(figure: Figure, axes: list, offset: float, width: float):
    """An axes ``offset`` inches right of the panels (for a colour bar), as tall as the panel area."""
    first, last = axes[0].get_position(), axes[-1].get_position()
    right = max(ax.get_position().x1 for ax in axes)
    fig_width = figure.get_figwidth()
    return figure.add_axes((right + offset / fig_width, last.y0, width / fig_width, first.y1 - last.y0))


def _held_text(held: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in held.items())


def _tick(value: float) -> str:
    return f"{value:g}"


MAX_TICK_LABELS = 8  # per axis: a 3.6-inch panel holds about this many grid values side by side
MAX_PATH_LINES = 9  # lines of one panel that a reader can still tell apart (and a legend that fits)


def kept_positions(n: int, limit: int) -> list[int]:
    """Which of ``n`` ordered grid values to label (or draw) when they are more than ``limit``: every k-th
    from the first, and the last, so both ends of the grid are always shown."""
    if n <= limit:
        return list(range(n))
    step = math.ceil((n - 1) / (limit - 1))
    kept = list(range(0, n - 1, step))
    if n - 1 - kept[-1] <= step / 2 and len(kept) > 1:  # too close to the last one to be legible
        kept.pop()
    return [*kept, n - 1]


def _short_value(value: float) -> str:
    """A grid value as labels show it: three significant digits (results.csv has the exact values)."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:g}"


def _grid_tick_labels(values) -> list[str]:
    """Heatmap tick labels: short values, and on a large grid only some of them."""
    kept = set(kept_positions(len(values), MAX_TICK_LABELS))
    return [_short_value(v) if i in kept else "" for i, v in enumerate(values)]


# ------------------------------------------------------------------------------------------- heatmaps


def draw_heatmap(data: HeatmapData) -> Figure:
    with _style():
        held = any(p.held for p in data.panels) or any(p.column != data.column for p in data.panels)
        figure, axes = _grid(len(data.panels), 3.6, 3.2, right=1.4, title_lines=1 + held, max_columns=2)
        cmap = "viridis_r" if data.higher_is_better is False else "viridis"
        span = data.vmax - data.vmin
        vmin, vmax = (data.vmin, data.vmax) if span > 0 else (data.vmin - 0.5, data.vmax + 0.5)
        image = None
        # values in the cells up to 8 x 8: beyond, 8-point numbers crowd the cells and their text costs more
        # to draw than the rest of the figure (results.csv has every value)
        annotate = len(data.alphas) * len(data.lambdas) <= 64
        for ax, panel in zip(axes, data.panels):
            image = ax.imshow(np.ma.masked_invalid(panel.values), origin="lower", aspect="auto", cmap=cmap,
                              vmin=vmin, vmax=vmax)
            ax.set_xticks(range(len(data.alphas)), _grid_tick_labels(data.alphas))
            ax.set_yticks(range(len(data.lambdas)), _grid_tick_labels(data.lambdas))
            ax.set_xlabel(f"{AXIS_NAMES['reg_alpha']}, grid value")
            ax.set_ylabel(f"{AXIS_NAMES['reg_lambda']}, grid value")
            title = panel.label if panel.column == data.column else f"{panel.label}: {column_title(panel.column)}"
            ax.set_title(title + (f"\n{_held_text(panel.held)}" if panel.held else ""))
            if annotate:
                _annotate_cells(ax, panel.values, image)
            if panel.best is not None:
                row, col = panel.best
                ax.add_patch(_best_box(col, row))
        colourbar = figure.colorbar(image, cax=_side_axes(figure, axes, 0.3, 0.22))
        mixed = any(p.column != data.column for p in data.panels)  # linear panels show coefficients
        colourbar.set_label("fraction exactly 0 (leaves; coefficients)" if mixed and data.column == "zero_leaf_fraction"
                            else short_title(data.column))
        direction = {True: "higher is better; ", False: "lower is better; "}.get(data.higher_is_better, "")
        note = "; red box: best" if any(p.best for p in data.panels) else ""
        _suptitle(figure, f"{column_title(data.column)} over the penalty grid\n{direction}shared colour scale; "
                          f"axes: grid values (log-spaced, 0 first){note}")
    return figure


def _best_box(col: int, row: int):
    from matplotlib.patches import Rectangle

    return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5)


def _cell_decimals(values: np.ndarray) -> int:
    """Decimals that give the largest value about three significant digits, the same for every cell."""
    finite = np.abs(values[np.isfinite(values)])
    largest = float(finite.max()) if len(finite) else 0.0
    return 3 if largest == 0 else int(min(4, max(0, 2 - math.floor(math.log10(largest)))))


def _annotate_cells(ax, values: np.ndarray, image) -> None:
    small = values.size > 36
    decimals = _cell_decimals(values)
    for (row, col), value in np.ndenumerate(values):
        if not np.isfinite(value):
            ax.text(col, row, "n/a", ha="center", va="center", fontsize=8, color="grey")
            continue
        red, green, blue, _ = image.cmap(image.norm(value))
        colour = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
        ax.text(col, row, f"{value:.{decimals}f}", ha="center", va="center", fontsize=8 if small else 9.5, color=colour)


# ----------------------------------------------------------------------------------------- line plots


def _symlog_penalty_axis(ax, axis: str, values: np.ndarray) -> None:
    """Symlog with the linear threshold at the smallest positive grid value; ticks at the grid values."""
    positive = values[values > 0]
    threshold = float(positive.min()) if len(positive) else 1.0
    ax.set_xscale("symlog", linthresh=threshold, linscale=1.0)
    ticks = np.unique(values)
    ticks = ticks[kept_positions(len(ticks), MAX_TICK_LABELS - 2)]  # symlog crowds the small values
    ax.set_xticks(ticks, [_short_value(v) for v in ticks])
    ax.xaxis.set_minor_locator(_no_ticks())
    upper = float(values.max()) if len(values) else 1.0
    ax.set_xlim(-0.05 * threshold if values.min() <= 0 else threshold / 1.5, upper * 1.5 if upper > 0 else 1)
    ax.set_xlabel(f"{AXIS_NAMES.get(axis, axis)}, symlog scale")


def _symlog_note(values: np.ndarray) -> str:
    positive = values[values > 0]
    threshold = float(positive.min()) if len(positive) else 1.0
    return f"x: log scale above {threshold:g}, linear from 0 to {threshold:g}"


def _no_ticks():
    from matplotlib.ticker import NullLocator

    return NullLocator()


def draw_path(data: PathData) -> Figure:
    with _style():
        held = any(p.held for p in data.panels)
        figure, axes = _grid(len(data.panels), 3.6, 3.1, right=2.0, title_lines=1 + held, max_columns=2)
        every_x = np.concatenate([line.x for panel in data.panels for line in panel.lines])
        all_held = sorted({line.held_value for panel in data.panels for line in panel.lines})
        held_values = [all_held[i] for i in kept_positions(len(all_held), MAX_PATH_LINES)]
        colours = _sequential_colours(len(held_values))
        for ax, panel in zip(axes, data.panels):
            for line in (line for line in panel.lines if line.held_value in held_values):
                colour = colours[held_values.index(line.held_value)]
                ax.plot(line.x, line.y, marker="o", markersize=4, color=colour,
                        label=f"{data.other_axis}={_short_value(line.held_value)}")
                if line.sd is not None:
                    ax.fill_between(line.x, line.y - line.sd, line.y + line.sd, color=colour, alpha=0.18,
                                    linewidth=0)
            if every_x.min() >= 0:
                _symlog_penalty_axis(ax, data.axis, every_x)
            else:  # an axis with negative values (LightGBM's max_depth -1): plain linear scale
                ax.set_xlabel(AXIS_NAMES.get(data.axis, data.axis))
            ax.set_ylabel(column_title(panel.column))
            ax.grid(True, alpha=0.3)
            ax.set_title(panel.label + (f"\n{_held_text(panel.held)}" if panel.held else ""))
        handles, labels = axes[0].get_legend_handles_labels()
        by_label = dict(zip(labels, handles))
        for panel_ax in axes[1:]:
            for handle, label in zip(*panel_ax.get_legend_handles_labels()):
                by_label.setdefault(label, handle)
        ordered = sorted(by_label, key=lambda text: float(text.split("=")[1]))
        figure.legend([by_label[k] for k in ordered], ordered, loc="center right",
                      bbox_to_anchor=(1 - 0.05 / figure.get_figwidth(), 0.5), title="held at")
        band = "bands: ±1 sd over repeats/folds" if data.has_bands else "single split: no bands"
        lines = (f"one line per {data.other_axis} value" if len(held_values) == len(all_held) else
                 f"lines at {len(held_values)} of the {len(all_held)} {data.other_axis} values")
        _suptitle(figure, f"Regularization path: {column_title(data.column)} against {data.axis}\n"
                          f"{lines}; {band}"
                          + (f"; {_symlog_note(every_x)}" if every_x.min() >= 0 else ""))
    return figure


def _sequential_colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["plasma"]
    return [cmap(0.85 * i / max(1, n - 1)) for i in range(n)]


def draw_comparison(data: ComparisonData) -> Figure:
    """Sparsity and relative norm of boosters (solid) and linear counterparts (dashed) on one pure axis."""
    with _style():
        figure, (sparsity_ax, norm_ax) = _grid(2, 3.9, 3.2, right=0.3)
        every_x = np.concatenate([p.x for p in data.paths])
        for path in data.paths:
            style = {"linestyle": "--" if path.kind == "linear" else "-", "marker": "o", "markersize": 4}
            sparsity_ax.plot(path.x, path.sparsity, label=path.label, **style)
            norm_ax.plot(path.x, path.norm, label=f"{path.label}: {path.norm_column}", **style)
        for ax in (sparsity_ax, norm_ax):
            _symlog_penalty_axis(ax, data.axis, every_x)
            ax.grid(True, alpha=0.3)
        sparsity_ax.set_ylabel("fraction exactly 0 (leaves / coefficients)")
        sparsity_ax.set_ylim(-0.03, 1.03)
        sparsity_ax.set_title("sparsity")
        norm_ax.set_ylabel("norm / norm at smallest penalty")
        norm_ax.set_title("shrinkage")
        norm_ax.legend(loc="best")
        other = "reg_lambda" if data.axis == "reg_alpha" else "reg_alpha"
        _suptitle(figure, f"Boosters (solid) vs linear counterparts (dashed) along {data.axis}, "
                          f"{other}={_tick(data.other_value)}\n{_symlog_note(every_x)}")
    return figure


# --------------------------------------------------------------------- learning curves, leaf histograms


def _point_colour(point: RepresentativePoint) -> str:
    return ROLE_COLOURS["best"] if "best" in point.roles else ROLE_COLOURS[point.roles[0]]


def draw_learning_curves(curves: dict[str, list[LearningCurve]], metric: str) -> Figure:
    with _style():
        figure, axes = _grid(len(curves), 4.0, 3.4, max_columns=2)
        for ax, (model, model_curves) in zip(axes, curves.items()):
            for curve in model_curves:
                colour = _point_colour(curve.point)
                ax.plot(curve.rounds, curve.test, color=colour, linewidth=2, label=curve.point.label)
                if len(curve.train):
                    ax.plot(np.arange(1, len(curve.train) + 1), curve.train, color=colour, linestyle="--",
                            linewidth=1.3)
            ax.set_title(model)
            ax.set_xlabel("boosting round")
            ax.set_ylabel(METRIC_NAMES.get(metric, metric))
            ax.grid(True, alpha=0.3)
            ax.legend(loc="best", title="test (solid), train (dashed)", title_fontsize=9.5, fontsize=9)
        _suptitle(figure, f"Learning curves: train and test {METRIC_NAMES.get(metric, metric)} per round\n"
                          "no penalty, strongest L1, strongest L2 and best grid point")
    return figure


def draw_leaf_histograms(data: list[LeafHistogramData]) -> Figure:
    with _style():
        figure, axes = _grid(len(data), 4.0, 3.4, max_columns=2)
        for ax, model_data in zip(axes, data):
            tallest = 1
            for histogram in model_data.histograms:
                colour = _point_colour(histogram.point)
                ax.stairs(histogram.counts, model_data.edges, color=colour, linewidth=1.8,
                          label=f"{histogram.point.label}: {histogram.zero_fraction:.1%} = 0")
                zeros = round(histogram.zero_fraction * histogram.n_leaves)
                if zeros:
                    ax.plot([0], [zeros], marker="D", markersize=8, color=colour, markeredgecolor="black",
                            linestyle="none")
                tallest = max(tallest, int(histogram.counts.max()))
            ax.set_yscale("log")
            ax.set_ylim(0.8, tallest * 300)  # head room above the data for the legend
            ax.set_title(model_data.model)
            ax.set_xlabel("leaf value (raw score units, learning rate applied)")
            ax.set_ylabel("number of leaves (log scale)")
            ax.grid(True, alpha=0.3)
            ax.legend(loc="upper center", fontsize=8.5, title="share of leaves exactly 0", title_fontsize=8.5)
        _suptitle(figure, "Leaf-value histograms at representative grid points\n"
                          "◆ = number of leaves exactly 0 (L1 zeroes leaves; L2 only shrinks them)")
    return figure


def save(figure: Figure, path) -> None:
    figure.savefig(path, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})  # ~25% faster than the default level


def blank_figure() -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1), dpi=DPI)
    figure.add_subplot().set_title("0.5")
    return figure


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    save(figure, buffer)
    return buffer.getvalue()
