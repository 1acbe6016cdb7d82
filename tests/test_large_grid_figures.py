"""Figures of a large grid stay legible: a 25 x 25 sweep labelled at a few grid values, with lines at 9
of the 25 held values (its heatmap's 25 tick labels, and its legend of 25 entries, used to overlap)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gbreg.report.plots import PlotContext, drawing, table_figures
from gbreg.report.plots.drawing import MAX_PATH_LINES, MAX_TICK_LABELS, kept_positions


@pytest.mark.parametrize("n", [1, 2, 5, 8, 9, 10, 13, 25, 100])
def test_kept_positions_keep_both_ends_and_at_most_the_limit(n):
    kept = kept_positions(n, MAX_TICK_LABELS)
    assert kept[0] == 0 and kept[-1] == n - 1 and kept == sorted(set(kept))
    assert len(kept) == n if n <= MAX_TICK_LABELS else 3 <= len(kept) <= MAX_TICK_LABELS


def sweep(n: int) -> pd.DataFrame:
    grid = [0.0, *np.logspace(-2, 3, n - 1)]
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"model": m, "kind": "booster", "status": "FINISHED", "run_id": f"{m}-{a}-{b}",
                          "reg_alpha": a, "reg_lambda": b, "test_rmse": rng.uniform(55, 65)}
                         for m in ("xgboost", "lightgbm") for a in grid for b in grid])


def drawn(n: int, name: str):
    (spec,) = [s for s in table_figures(sweep(n), PlotContext("rmse")) if s[0] == name]
    return getattr(drawing, spec[1])(*spec[2])


def test_a_25_by_25_heatmap_labels_a_few_short_grid_values():
    axes = drawn(25, "heatmap_test_rmse.png").axes[0]
    labels = [t.get_text() for t in axes.get_xticklabels()]
    shown = [text for text in labels if text]
    assert len(labels) == 25 and len(shown) <= MAX_TICK_LABELS
    assert shown[0] == "0" and shown[-1] == "1000" and all(len(text) <= 6 for text in shown)


def test_a_25_by_25_path_draws_lines_at_9_held_values_and_says_so():
    figure = drawn(25, "path_reg_alpha_test_rmse.png")
    assert len(figure.axes[0].get_lines()) == MAX_PATH_LINES
    assert "lines at 9 of the 25 reg_lambda values" in figure._suptitle.get_text()
    small = drawn(5, "path_reg_alpha_test_rmse.png")
    assert len(small.axes[0].get_lines()) == 5 and "one line per reg_lambda value" in small._suptitle.get_text()
