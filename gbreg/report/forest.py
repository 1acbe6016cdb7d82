"""Forest plots of a suite: per hypothesis, each data set's effect and interval, one colour per library,
and each library's combined estimate across data sets as a diamond at the bottom (gbreg suite run)."""

from __future__ import annotations

import pandas as pd

from gbreg.report.plots.drawing import DPI
from gbreg.tracking.tracker import finite

VERDICT_MARKERS = {"supported": "o", "contradicted": "X", "inconclusive": "s"}
LIBRARY_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
EFFECT_LABEL = {"trend": "mean Spearman ρ along the axis", "sign": "share positive − share negative",
                "best": "interior − edge less its flat-surface mean, in its SDs"}
BOUNDED_KINDS = ("trend", "sign")  # effects in [-1, 1]


def forest_file_name(hypothesis: int) -> str:
    return f"forest_h{hypothesis}.png"


def draw_forest(rows: pd.DataFrame, combined: pd.DataFrame, title: str, kind: str, tolerance: float | None = None):
    """``rows``: one hypothesis's per-data-set rows (dataset, library, effect, ci_low, ci_high, verdict);
    ``combined``: its rows with dataset = combined (one per library). Returns a matplotlib Figure."""
    from matplotlib.figure import Figure

    libraries = sorted(set(rows["library"]) | set(combined["library"]))
    colours = {library: LIBRARY_COLOURS[i % len(LIBRARY_COLOURS)] for i, library in enumerate(libraries)}
    ordered = rows.sort_values(["dataset", "library"], kind="stable")
    datasets = list(dict.fromkeys(ordered["dataset"]))
    offsets = {library: (i - (len(libraries) - 1) / 2) * 0.6 / max(1, len(libraries)) for i, library in
               enumerate(libraries)}
    n_lines = len(datasets) + 1 + len(combined)
    figure = Figure(figsize=(9.5, 1.6 + 0.32 * n_lines), dpi=DPI)
    axes = figure.add_subplot()
    positions = {dataset: n_lines - i for i, dataset in enumerate(datasets)}
    shown = _bounded if kind in BOUNDED_KINDS else (lambda low, high: (low, high))
    for row in ordered.itertuples():
        y = positions[row.dataset] + offsets[row.library]
        _interval(axes, row.effect, *shown(row.ci_low, row.ci_high), y, colours[row.library],
                  VERDICT_MARKERS.get(row.verdict, "o"))
    combined_rows = list(combined.sort_values("library").itertuples())
    for i, row in enumerate(combined_rows):
        y = len(combined_rows) - i
        _diamond(axes, row.effect, *shown(row.ci_low, row.ci_high), y, colours[row.library])
    labels = {**{positions[d]: d for d in datasets},
              **{len(combined_rows) - i: f"combined · {row.library}" for i, row in enumerate(combined_rows)}}
    axes.set_yticks(list(labels), list(labels.values()))
    axes.axhline(len(combined_rows) + 0.5, color="#999", linewidth=0.8)
    axes.axvline(0, color="#444", linewidth=0.8)
    if kind == "trend" and tolerance:
        for bound in (-tolerance, tolerance):
            axes.axvline(bound, color="#999", linewidth=0.8, linestyle=":")
    axes.set_xlabel(EFFECT_LABEL.get(kind, "effect"))
    axes.set_ylim(0.3, n_lines + 0.7)
    for library, colour in colours.items():
        axes.plot([], [], color=colour, marker="o", linestyle="-", label=library)
    for verdict, marker in VERDICT_MARKERS.items():
        axes.plot([], [], color="#555", marker=marker, linestyle="none", label=verdict)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False)
    axes.set_title(title, fontsize=11, loc="left")
    figure.tight_layout()
    return figure


def _bounded(low, high) -> tuple[float, float]:
    """A mean ρ or a share difference lies in [-1, 1]: its t interval is drawn inside that range."""
    return (max(float(low), -1.0), min(float(high), 1.0)) if finite(low) and finite(high) else (low, high)


def _interval(axes, effect, low, high, y, colour, marker) -> None:
    if finite(low) and finite(high):
        axes.plot([low, high], [y, y], color=colour, linewidth=1.4)
    if finite(effect):
        axes.plot([effect], [y], color=colour, marker=marker, markersize=6, linestyle="none")


def _diamond(axes, effect, low, high, y, colour) -> None:
    if not (finite(effect) and finite(low) and finite(high)):
        return
    axes.fill([low, effect, high, effect], [y, y + 0.3, y, y - 0.3], color=colour, alpha=0.85)


