"""Study figures: the numbers behind them (checked against the logged results of a real study) and the
PNGs logged on the parent run."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from conftest import small_spec, study_in_temp_store

from gbreg.report.plots import heatmap_name, leaf_values_reader, metric_history_reader, path_name
from gbreg.report.plots.figure_data import (
    PlotContext,
    comparison_data,
    heatmap_data,
    path_data,
)
from gbreg.report.plots.trial_figures import leaf_histogram_data, learning_curve_data, representative_points
from gbreg.tracking.run_table import numeric_columns

FOLDS = 3
CONTEXT = PlotContext("rmse")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A real 3-fold study of both boosters on diabetes (3 x 2 grid, 20 rounds), logged to a temp store."""
    yield from study_in_temp_store(tmp_path_factory.mktemp("plots-study"), small_spec(evaluation={"split": "kfold", "folds": FOLDS, "metric": "rmse"}))


@pytest.fixture(scope="module")
def results(study) -> pd.DataFrame:
    """The study's results with params as numbers (MLflow hands params back as strings)."""
    return numeric_columns(study[0].results)


def _row(results: pd.DataFrame, model: str, alpha: float, lam: float) -> pd.Series:
    rows = results[(results["model"] == model) & (results["reg_alpha"] == alpha) & (results["reg_lambda"] == lam)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_heatmap_cells_are_the_logged_values_on_one_shared_scale(results):
    data = heatmap_data(results, "test_rmse", CONTEXT)
    assert data.alphas == [0.0, 1.0, 100.0] and data.lambdas == [0.0, 10.0]
    assert [p.label for p in data.panels] == ["xgboost", "lightgbm"]
    for panel in data.panels:
        for i, lam in enumerate(data.lambdas):
            for j, alpha in enumerate(data.alphas):
                assert panel.values[i, j] == _row(results, panel.label, alpha, lam)["test_rmse"]
        best = results[results["model"] == panel.label].sort_values("test_rmse").iloc[0]
        assert panel.best == (data.lambdas.index(best["reg_lambda"]), data.alphas.index(best["reg_alpha"]))
    assert data.vmin == results["test_rmse"].min() and data.vmax == results["test_rmse"].max()
    assert data.higher_is_better is False
    # tree statistics: no "best" box, no direction
    zero = heatmap_data(results, "zero_leaf_fraction", CONTEXT)
    assert all(p.best is None for p in zero.panels) and zero.higher_is_better is None
    assert zero.panels[0].values[0, 0] == 0.0  # no L1, no exact-zero leaves
    assert zero.panels[0].values[0, 2] > 0.0  # reg_alpha=100 zeroes leaves


def test_paths_follow_each_axis_with_sd_bands_over_folds(results):
    data = path_data(results, "reg_alpha", "leaf_abs_mean", CONTEXT)
    assert data.other_axis == "reg_lambda" and data.has_bands
    for panel in data.panels:
        assert [line.held_value for line in panel.lines] == [0.0, 10.0]
        for line in panel.lines:
            assert list(line.x) == [0.0, 1.0, 100.0]
            expected = [_row(results, panel.label, a, line.held_value) for a in line.x]
            assert list(line.y) == [r["leaf_abs_mean"] for r in expected]
            assert list(line.sd) == [r["leaf_abs_mean_std"] for r in expected]
            assert line.y[-1] < line.y[0]  # a strong L1 penalty shrinks the leaves
    along_lambda = path_data(results, "reg_lambda", "test_rmse", CONTEXT)
    assert [len(p.lines) for p in along_lambda.panels] == [3, 3]  # one line per reg_alpha value


def test_representative_points_are_no_penalty_strongest_l1_l2_and_best(results):
    points = representative_points(results, CONTEXT)
    assert list(points) == ["xgboost", "lightgbm"]
    for model, model_points in points.items():
        by_role = {role: p for p in model_points for role in p.roles}
        assert set(by_role) == {"no penalty", "strongest L1", "strongest L2", "best"}
        assert by_role["no penalty"].run_id == _row(results, model, 0, 0)["run_id"]
        assert by_role["strongest L1"].run_id == _row(results, model, 100, 0)["run_id"]
        assert by_role["strongest L2"].run_id == _row(results, model, 0, 10)["run_id"]
        assert by_role["best"].test_value == results[results["model"] == model]["test_rmse"].min()
        assert len({p.run_id for p in model_points}) == len(model_points)  # a trial in two roles is listed once


def test_learning_curves_end_at_the_logged_test_score(study, results):
    client = study[1]
    points = representative_points(results, CONTEXT)
    curves = learning_curve_data(points, "rmse", metric_history_reader(client))
    for model, model_curves in curves.items():
        assert len(model_curves) == len(points[model])
        for curve in model_curves:
            assert list(curve.rounds) == list(range(1, 21)) and len(curve.train) == 20
            # per-round curves come from the library (float32), the final score from predictions
            assert curve.test[-1] == pytest.approx(curve.point.test_value, rel=1e-4)
            assert curve.train[-1] < curve.train[0]


def test_leaf_histograms_count_every_leaf_and_the_exact_zeros(study, results):
    client = study[1]
    points = representative_points(results, CONTEXT)
    data = leaf_histogram_data(points, leaf_values_reader(client))
    assert [d.model for d in data] == ["xgboost", "lightgbm"]
    for model_data in data:
        edges = model_data.edges
        assert edges[0] == -edges[-1] and np.any((edges[:-1] < 0) & (edges[1:] > 0))  # 0 inside a bin
        for histogram in model_data.histograms:
            row = results[results["run_id"] == histogram.point.run_id].iloc[0]
            assert histogram.counts.sum() == histogram.n_leaves == round(row["n_leaves"] * FOLDS)
            roles = histogram.point.roles
            if "no penalty" in roles:
                assert histogram.zero_fraction == 0.0
            if "strongest L1" in roles:
                assert histogram.zero_fraction > 0.05


def _with_lasso(results: pd.DataFrame) -> pd.DataFrame:
    """The booster results plus a lasso counterpart on the same grid (built here: the linear models are
    another module's work). Sparsity rises and the L1 norm falls with reg_alpha, as for a real lasso."""
    grid = results[results["model"] == "xgboost"][["reg_alpha", "reg_lambda"]]
    rows = []
    for _, point in grid.iterrows():
        strength = point["reg_alpha"] / (1 + point["reg_alpha"])
        rows.append({"run_id": f"lasso-{point['reg_alpha']}-{point['reg_lambda']}", "status": "FINISHED",
                     "kind": "linear", "library": "sklearn", "model": "lasso", **point.to_dict(),
                     "test_rmse": 55 + strength, "gap_rmse": 1 - strength, "zero_coef_fraction": 0.8 * strength,
                     "coef_l1": 100 * (1 - 0.9 * strength), "coef_l2": 40.0, "n_nonzero_coef": 10 - 8 * strength})
    return pd.concat([results, pd.DataFrame(rows)], ignore_index=True)


def test_linear_counterparts_get_panels_and_a_comparison_on_the_pure_axes(results):
    boosters = results
    results = _with_lasso(boosters)
    assert comparison_data(boosters, "reg_alpha", CONTEXT) is None
    heat = heatmap_data(results, "zero_leaf_fraction", CONTEXT)
    assert [(p.label, p.column) for p in heat.panels] == [
        ("xgboost", "zero_leaf_fraction"), ("lightgbm", "zero_leaf_fraction"), ("linear (lasso)", "zero_coef_fraction")]
    assert [p.label for p in heatmap_data(results, "leaves_per_tree", CONTEXT).panels] == ["xgboost", "lightgbm"]
    assert heatmap_data(results, "test_rmse", CONTEXT).vmin == 55.0  # the lasso is on the shared scale
    data = comparison_data(results, "reg_alpha", CONTEXT)
    assert data.other_value == 0.0
    by_label = {p.label: p for p in data.paths}
    lasso = by_label["lasso (linear)"]
    assert list(lasso.x) == [0.0, 1.0, 100.0] and lasso.norm_column == "coef_l1"
    assert list(lasso.sparsity) == pytest.approx([0.0, 0.4, 0.8 * 100 / 101])
    assert lasso.norm[0] == 1.0 and lasso.norm[-1] == pytest.approx(1 - 0.9 * 100 / 101)
    xgb = by_label["xgboost"]
    leaf_l1 = [_row(boosters, "xgboost", a, 0)["leaf_l1"] for a in (0, 1, 100)]
    assert list(xgb.norm) == pytest.approx([v / leaf_l1[0] for v in leaf_l1])
    assert comparison_data(results, "reg_lambda", CONTEXT).paths[-1].norm_column == "coef_l2"


def test_other_sweep_axes_are_held_at_the_best_trial(results):
    boosters = results
    deeper = boosters.assign(max_depth=3)
    shallow = boosters.assign(max_depth=2, test_rmse=boosters["test_rmse"] + 1, run_id=boosters["run_id"] + "-shallow")
    results = pd.concat([shallow, deeper], ignore_index=True)
    context = PlotContext("rmse", ("reg_alpha", "reg_lambda", "max_depth"))
    data = heatmap_data(results, "test_rmse", context)
    assert all(p.held == {"max_depth": 3} for p in data.panels)
    assert data.vmax == boosters["test_rmse"].max()
    failed = pd.concat([boosters, pd.DataFrame([{"run_id": "x", "status": "FAILED", "kind": "booster",
                                                        "model": "xgboost", "reg_alpha": 5.0, "reg_lambda": 0.0}])])
    assert heatmap_data(failed, "test_rmse", CONTEXT).alphas == [0.0, 1.0, 100.0]  # failed trials are left out


def test_context_from_a_parent_runs_params():
    context = PlotContext.from_parent_params({"metric": "auc", "sweep.reg_alpha": "[0, 1]", "sweep.max_depth": "[2]",
                                              "seed": "0"})
    assert context.axes == ("reg_alpha", "max_depth") and context.higher_is_better


def test_pngs_are_logged_on_the_parent_run_and_are_readable_images(study, results, tmp_path):
    from PIL import Image

    outcome, client, _ = study
    logged = {a.path for a in client.list_artifacts(outcome.parent_run_id, "plots")}
    expected = {f"plots/{heatmap_name(c)}" for c in ("test_rmse", "gap_rmse", "leaves_per_tree",
                                                      "zero_leaf_fraction", "leaf_abs_mean")}
    expected |= {f"plots/{path_name(axis, 'test_rmse')}" for axis in ("reg_alpha", "reg_lambda")}
    expected |= {"plots/learning_curves.png", "plots/leaf_histograms.png"}
    assert expected <= logged
    assert not any("vs_linear" in path for path in logged)  # no counterparts in this study
    local = client.download_artifacts(outcome.parent_run_id, "plots/heatmap_test_rmse.png", str(tmp_path))
    with Image.open(local) as image:
        image.verify()
    with Image.open(local) as image:
        width, height = image.size
        assert image.format == "PNG" and 800 <= width <= 1600 and 350 <= height <= 1000
        assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 50  # drawn, not blank
    # the comparison figure (linear rows built here) renders as well
    from gbreg.report.plots.drawing import draw_comparison, save

    save(draw_comparison(comparison_data(_with_lasso(results), "reg_alpha", CONTEXT)), tmp_path / "vs_linear.png")
    with Image.open(io.BytesIO((tmp_path / "vs_linear.png").read_bytes())) as image:
        assert image.format == "PNG" and image.size[0] >= 800


def test_a_one_axis_grid_is_drawn_as_paths_not_as_a_one_column_heatmap(results):
    """A sweep over reg_lambda alone (reg_alpha at one value) has no heatmap, and its paths along
    reg_lambda are there."""
    from gbreg.report.plots import table_figures

    one_axis = results[results["reg_alpha"] == 0.0]
    assert one_axis["reg_lambda"].nunique() > 1 and one_axis["reg_alpha"].nunique() == 1
    assert heatmap_data(one_axis, "test_rmse", CONTEXT) is None
    names = {name for name, _, _ in table_figures(one_axis, CONTEXT)}
    assert not [name for name in names if name.startswith("heatmap_")]
    assert path_name("reg_lambda", "test_rmse") in names
    assert heatmap_data(results, "test_rmse", CONTEXT) is not None  # the two-axis grid keeps its heatmap
