"""The catalogue of what a trial measures: every list of metric names derives from it, the names and the
orders users see are the ones gbreg has always shown, and a real study logs exactly what it declares."""

from __future__ import annotations

import importlib

import pytest
from conftest import small_spec, write_spec

from gbreg import catalogue
from gbreg.catalogue import BY_NAME, MEASURES, METRICS_BY_TASK, PENALTY_AXES, find, names, shown_in

# the MLflow contract: names are extended, never renamed (a score is the suffix of train_/test_/gap_/curve_)
LOGGED_NAMES = {
    "rmse", "mae", "r2", "logloss", "auc", "accuracy",
    "n_trees", "n_leaves", "leaves_per_tree", "depth_mean", "depth_max", "zero_leaf_fraction", "leaf_abs_mean",
    "leaf_l1", "leaf_l2", "n_features_used", "fit_seconds", "leaf_l1_zeroed_fraction", "leaf_l1_shrinkage_share",
    "leaf_l2_shrinkage_share", "leaf_closed_form_max_abs_error", "n_nonzero_coef", "zero_coef_fraction", "coef_l1",
    "coef_l2", "zero_mass", "n_nonzero_values", "laplace_loc", "laplace_scale", "laplace_loglik", "gaussian_loc",
    "gaussian_scale", "gaussian_loglik", "laplace_loglik_minus_gaussian", "laplace_wins", "excess_kurtosis",
    "abs_q50", "abs_q90", "leaf_shrinkage", "leaf_shrinkage_q50", "leaf_shrinkage_q90",
    "leaf_shrinkage_q90_minus_q50", "coef_shrinkage", "coef_shrinkage_q50", "coef_shrinkage_q90",
    "coef_shrinkage_q90_minus_q50",
}


def _derived_lists() -> dict[str, tuple[str, ...]]:
    from gbreg.analysis import comparison, shrinkage
    from gbreg.models import leaf_distribution, leaf_mechanism, metrics, trees
    from gbreg.report import summary
    from gbreg.report.plots import drawing, figure_data
    from gbreg.spec import hypotheses
    from gbreg.tracking import readback as results

    return {
        "results.SUMMARY_COLUMNS": tuple(c for c in results.SUMMARY_COLUMNS[5:] if "{m}" not in c),
        "summary.SIZE_AND_SPARSITY": summary.SIZE_AND_SPARSITY,
        "comparison.BOOSTER_STATS": comparison.BOOSTER_STATS, "comparison.LINEAR_STATS": comparison.LINEAR_STATS,
        "plots.TREE_COLUMNS": figure_data.TREE_COLUMNS, "plots.STAT_NAMES": tuple(drawing.STAT_NAMES),
        "plots.METRIC_NAMES": tuple(drawing.METRIC_NAMES), "trees.TREE_STAT_NAMES": trees.TREE_STAT_NAMES,
        "leaf_mechanism.LEAF_MECHANISM_STAT_NAMES": leaf_mechanism.LEAF_MECHANISM_STAT_NAMES,
        "leaf_distribution.DISTRIBUTION_STAT_NAMES": leaf_distribution.DISTRIBUTION_STAT_NAMES,
        "shrinkage.SHRINKAGE_METRIC_NAMES": shrinkage.SHRINKAGE_METRIC_NAMES,
        "hypotheses.LINEAR_METRICS": hypotheses.LINEAR_METRICS, "hypotheses.BOOSTER_METRICS": hypotheses.BOOSTER_METRICS,
        "hypotheses.SPLIT_METRICS": hypotheses.SPLIT_METRICS,
        "hypotheses.POST_SWEEP_METRICS": hypotheses.POST_SWEEP_METRICS,
        "metrics.HIGHER_IS_BETTER": tuple(metrics.HIGHER_IS_BETTER),
        "METRICS_BY_TASK": tuple(m for ms in METRICS_BY_TASK.values() for m in ms),
    }


def test_every_derived_list_names_only_catalogued_metrics():
    for where, listed in _derived_lists().items():
        assert listed, where
        assert set(listed) <= set(BY_NAME), (where, set(listed) - set(BY_NAME))


def test_no_logged_name_is_renamed_and_every_measure_is_declared_once():
    assert LOGGED_NAMES <= set(BY_NAME)
    assert len(MEASURES) == len(BY_NAME)


def test_the_tables_and_titles_users_see_keep_their_columns_and_order():
    from gbreg.analysis import comparison
    from gbreg.report import summary
    from gbreg.report.plots import drawing, figure_data
    from gbreg.spec import schema as spec
    from gbreg.tracking import readback as results

    assert results.SUMMARY_COLUMNS == (
        "run_name", "library", "model", "reg_alpha", "reg_lambda", "test_{m}", "train_{m}", "gap_{m}", "n_leaves",
        "leaves_per_tree", "zero_leaf_fraction", "leaf_abs_mean", "n_nonzero_coef", "zero_coef_fraction",
        "n_features_used", "fit_seconds")
    assert summary.SIZE_AND_SPARSITY == ("leaves_per_tree", "depth_mean", "zero_leaf_fraction", "leaf_abs_mean",
                                         "n_nonzero_coef", "zero_coef_fraction", "n_features_used")
    assert comparison.BOOSTER_STATS == ("zero_leaf_fraction", "leaf_l1", "leaf_l2", "n_leaves", "n_features_used",
                                        "fit_seconds")
    assert comparison.LINEAR_STATS == ("zero_coef_fraction", "n_nonzero_coef", "coef_l1", "coef_l2",
                                       "n_features_used", "fit_seconds")
    assert figure_data.TREE_COLUMNS == ("leaves_per_tree", "zero_leaf_fraction", "leaf_abs_mean")
    assert shown_in("comparison-terminal") == ("zero_leaf_fraction", "zero_coef_fraction", "n_features_used")
    assert spec.PENALTY_AXES == figure_data.PENALTY_AXES == summary.PENALTY_AXES == PENALTY_AXES == ("reg_alpha", "reg_lambda")
    assert METRICS_BY_TASK == {"regression": ("rmse", "mae", "r2"), "binary": ("logloss", "auc", "accuracy"),
                               "multiclass": ("logloss", "auc", "accuracy")}
    assert drawing.column_title("test_r2") == "test R²"
    assert drawing.column_title("gap_r2") == "generalization gap (train − test R²)"
    assert drawing.column_title("gap_logloss") == "generalization gap (test − train log loss)"
    assert drawing.column_title("leaf_abs_mean") == "mean |leaf value| (raw score units)"
    assert drawing.column_title("zero_coef_fraction") == "fraction of coefficients exactly 0"
    assert drawing.column_title("depth_mean") == "depth mean"


def test_kinds_directions_and_computations_are_consistent():
    for m in MEASURES:
        is_score = m.kind == "score"
        assert (m.direction is not None) == is_score == bool(m.tasks), m.name
        assert m.on == {"tree": "booster", "mechanism": "booster", "linear": "linear"}.get(m.kind, m.on), m.name
        if m.kind == "post-sweep":
            assert m.on == ("booster" if m.name.startswith("leaf_") else "linear"), m.name
        assert ("comparison" in m.shown) == (m.comparison_rank > 0), m.name
        module, _, function = m.computed_by.rpartition(".")
        assert callable(getattr(importlib.import_module(module), function)), m.computed_by
    for on in ("booster", "linear"):
        ranks = [BY_NAME[n].comparison_rank for n in shown_in("comparison", on=on)]
        assert ranks == sorted(set(ranks)), on
    assert catalogue.HIGHER_IS_BETTER == {"rmse": False, "mae": False, "r2": True, "logloss": False, "auc": True,
                                          "accuracy": True}


@pytest.mark.parametrize(("column", "measure"), [
    ("test_rmse", "rmse"), ("gap_auc_std", "auc"), ("curve_train_r2", "r2"), ("leaf_l1_std", "leaf_l1"),
    ("leaf_l1_shrinkage_share", "leaf_l1_shrinkage_share"), ("coef_shrinkage_q50", "coef_shrinkage_q50"),
    ("rmse", None), ("test_depth_mean", None), ("n_trials", None),
])
def test_find_maps_a_logged_name_to_its_measure(column, measure):
    found = find(column)
    assert (found.name if found else None) == measure


def test_a_real_study_logs_exactly_the_catalogued_metrics(tracking, tmp_path):
    """k-fold (so ``_std`` is logged), both boosters and linear counterparts, post-sweep shrinkage."""
    from mlflow.tracking import MlflowClient

    from gbreg import load_spec, run_study

    spec = small_spec(counterparts=["ols", "lasso", "ridge"],
                      evaluation={"split": "kfold", "folds": 2, "metric": "rmse"},
                      sweep={"reg_alpha": [0, 1], "reg_lambda": [0, 10]})
    outcome = run_study(load_spec(write_spec(tmp_path, spec)), jobs=1, verbosity=-1)
    children = MlflowClient(tracking.tracking_uri).search_runs(
        [outcome.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'")
    logged = {kind: set() for kind in ("booster", "linear")}
    for run in children:
        logged[run.data.tags["gbreg.kind"]] |= set(run.data.metrics)
    uncatalogued = {name for names_ in logged.values() for name in names_ if find(name) is None}
    assert not uncatalogued
    for on, seen in logged.items():
        expected = {n for n in names(on=on) if BY_NAME[n].kind != "score"}
        assert {find(n).name for n in seen if find(n).kind != "score"} == expected, on
        per_split = {n for n in expected if BY_NAME[n].per_split}
        assert {f"{n}_std" for n in per_split} <= seen, on
        assert {"train_rmse", "test_rmse", "gap_rmse", "test_mae", "test_r2"} <= seen, on
    assert {"curve_train_rmse", "curve_test_rmse"} <= logged["booster"]
