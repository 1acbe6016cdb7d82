"""Study figures: heatmaps over (reg_alpha, reg_lambda), regularization paths, learning curves and
leaf-value histograms, logged as PNG artifacts under ``plots/`` on the parent run (issue 7).

Compute first, then draw: :mod:`gbreg.report.plots.figure_data` turns the results table into small NamedTuples of
numbers, :mod:`gbreg.report.plots.drawing` renders them with matplotlib's Agg canvas.

Artifact names (other modules link to them):

    plots/heatmap_<column>.png          test_<m>, gap_<m>, leaves_per_tree, zero_leaf_fraction, leaf_abs_mean
    plots/path_<axis>_<column>.png      the same columns along reg_alpha and along reg_lambda
    plots/path_<axis>_vs_linear.png     sparsity and shrinkage, boosters vs linear counterparts (when present)
    plots/learning_curves.png           train/test metric per round at representative grid points
    plots/leaf_histograms.png           leaf values at the same points
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from gbreg.models.trees import reached_values
from gbreg.models.trial import LEAVES_ARTIFACT
from gbreg.report.plots import drawing
from gbreg.report.plots.figure_data import (
    PENALTY_AXES,
    PlotContext,
    comparison_data,
    extra_axes,
    heatmap_data,
    path_data,
)
from gbreg.report.plots.trial_figures import leaf_histogram_data, learning_curve_data, representative_points
from gbreg.tracking.run_table import numeric_columns
from gbreg.tracking.store import retrying

PLOTS_DIR = "plots"


def heatmap_name(column: str) -> str:
    return f"heatmap_{column}.png"


def path_name(axis: str, column: str) -> str:
    return f"path_{axis}_{column}.png"


def log_study_plots(tracker, prepared, outcome, submit=None, meanwhile=None) -> None:
    """Draw the study's figures and log them as PNG artifacts under ``plots/`` on the parent run.

    ``submit(function, argument) -> Future`` runs a drawing elsewhere; the runner passes its worker
    pool's, so the workers the sweep has just left idle draw the figures. ``meanwhile()`` is this
    process's own work, done while they draw.
    """
    if outcome.results is None or not len(outcome.results):
        return
    context = PlotContext.from_prepared(prepared)
    with tempfile.TemporaryDirectory(prefix="gbreg-plots-") as folder:
        for path in draw_study_plots(outcome.results, context, tracker.client, Path(folder), submit, meanwhile,
                                     sweep=getattr(outcome, "sweep", None)):
            tracker.log_file(tracker.parent_run_id, path, PLOTS_DIR)


def draw_study_plots(results: pd.DataFrame, context: PlotContext, client, folder: Path, submit=None,
                     meanwhile=None, sweep=None) -> list[Path]:
    """Write every figure the results allow into ``folder``; returns the PNG paths in reading order.

    The representative trials' curves and leaf values come from ``sweep`` (the running study's
    :class:`gbreg.run.records.SweepRecords`) when it holds them, else from ``client`` (an
    ``MlflowClient``). Every figure is handed to ``submit`` before ``meanwhile()`` runs here.
    """
    results = numeric_columns(results)
    # the slowest figures (the leaf histograms, the learning curves) are handed out first, so they do
    # not start last and keep one worker busy while the other has finished; each figure is handed out
    # as soon as its numbers are ready, so the workers draw while this process computes the next
    trial_specs = trial_figures(results, context, client, sweep)
    submitted = {spec[0]: submit(render_png, spec) for spec in trial_specs} if submit else {}
    table_specs = []
    for spec in _table_figures(results, context):
        table_specs.append(spec)
        if submit:
            submitted[spec[0]] = submit(render_png, spec)
    figures = table_specs + trial_specs
    drawing = [submitted[spec[0]] for spec in figures] if submitted else []
    if meanwhile is not None:
        meanwhile()
    written = []
    for (name, _draw_name, _args), png in zip(figures, _rendered(figures, drawing)):
        path = folder / name
        path.write_bytes(png)
        written.append(path)
    return written


def _rendered(figures: list, drawing: list) -> list[bytes]:
    """The PNGs, in order: the workers' drawings, and here those that were not handed out (no workers)
    or whose worker died. This process does not draw alongside the workers: on a machine whose cores
    the workers fill, it would only add its own matplotlib import to the wait."""
    pngs = []
    for index, figure in enumerate(figures):
        try:
            pngs.append(drawing[index].result() if index < len(drawing) else render_png(figure))
        except Exception:  # noqa: BLE001 - a broken worker pool: draw it here
            pngs.append(render_png(figure))
    return pngs


FigureSpec = tuple[str, str, tuple]  # (file name, drawing function in gbreg.report.plots.drawing, its arguments)


def table_figures(results: pd.DataFrame, context: PlotContext) -> list[FigureSpec]:
    """Heatmaps and regularization paths: drawn from the results table alone."""
    return list(_table_figures(results, context))


def _table_figures(results: pd.DataFrame, context: PlotContext) -> Iterator[FigureSpec]:
    columns = [c for c in context.heatmap_columns() if c in results.columns]
    for column in columns:
        data = heatmap_data(results, column, context)
        if data is not None:
            yield heatmap_name(column), "draw_heatmap", (data,)
    for axis in PENALTY_AXES:
        for column in columns:
            data = path_data(results, axis, column, context)
            if data is not None:
                yield path_name(axis, column), "draw_path", (data,)
        comparison = comparison_data(results, axis, context)
        if comparison is not None:
            yield path_name(axis, "vs_linear"), "draw_comparison", (comparison,)
    for axis in extra_axes(context):  # paths along each other sweep axis too (gamma, max_depth, ...)
        for column in columns:
            data = path_data(results, axis, column, context)
            if data is not None:
                yield path_name(axis, column), "draw_path", (data,)


def trial_figures(results: pd.DataFrame, context: PlotContext, client, sweep=None) -> list[FigureSpec]:
    """Learning curves and leaf histograms at the representative points: from ``sweep`` (what the running
    study holds) or read from their trial runs."""
    figures: list[FigureSpec] = []
    points = representative_points(results, context)
    curves = learning_curve_data(points, context.metric, metric_history_reader(client, sweep))
    if curves:
        figures.append(("learning_curves.png", "draw_learning_curves", (curves, context.metric)))
    histograms = leaf_histogram_data(points, leaf_values_reader(client, sweep))
    if histograms:
        figures.append(("leaf_histograms.png", "draw_leaf_histograms", (histograms,)))
    return figures


def render_png(figure: FigureSpec) -> bytes:
    """Draw one figure and return its PNG (runs in a worker process, or here)."""

    _name, draw_name, args = figure
    return drawing.png_bytes(getattr(drawing, draw_name)(*args))


def prepare_drawing(_=None) -> None:
    """Import matplotlib and load its fonts by drawing a tiny figure: run on a worker the sweep's last
    trials leave idle, so the study's figures do not wait for it after the sweep."""
    drawing.png_bytes(drawing.blank_figure())


def metric_history_reader(client, sweep=None):
    """``history(run_id, name)``: a per-round curve as an array ordered by step (empty if absent), from
    ``sweep`` if it holds the trial, else as logged."""

    def history(run_id: str, name: str) -> np.ndarray:
        held = sweep.curve(run_id, name) if sweep is not None else None
        if held is not None:
            return held[np.isfinite(held)]  # as logged: MLflow keeps no NaN step
        entries = retrying(lambda: client.get_metric_history(run_id, name))
        return np.array([m.value for m in sorted(entries, key=lambda m: m.step)], dtype=float)

    return history


def leaf_values_reader(client, sweep=None):
    """``leaf_values(run_id)``: the values of the leaves rows reach in a trial's leaves.parquet (None if it has none),
    from ``sweep`` if it kept them."""

    def leaf_values(run_id: str) -> np.ndarray | None:
        held = sweep.leaf_values(run_id) if sweep is not None else None
        if held is not None:
            return held
        with tempfile.TemporaryDirectory(prefix="gbreg-leaves-") as folder:
            try:
                path = retrying(lambda: client.download_artifacts(run_id, LEAVES_ARTIFACT, folder))
            except Exception:  # noqa: BLE001 - a trial without a leaf table simply has no histogram
                return None
            return reached_values(pd.read_parquet(path, columns=["value", "cover"]))

    return leaf_values


__all__ = ["PLOTS_DIR", "PlotContext", "draw_study_plots", "heatmap_name", "log_study_plots",
           "path_name", "render_png", "table_figures", "trial_figures"]
