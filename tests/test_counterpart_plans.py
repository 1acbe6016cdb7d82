"""Counterparts next to libraries without an L1 term (CatBoost, HistGradientBoosting): the plan and its
count agree, and such a library contributes its (0, λ) points only (docs/linear_counterparts.md)."""

from __future__ import annotations

import pytest
from conftest import small_spec, study_in_temp_store

from gbreg.analysis.comparison import comparison_table
from gbreg.errors import SpecError
from gbreg.plan import count_trials, linear_trials, make_plan, penalty_points
from gbreg.spec.validation import validate_spec

NO_L1 = {"catboost": {"n_estimators": 20, "max_depth": 3},
         "sklearn_hgb": {"n_estimators": 20}}
BOTH = {"xgboost": {"n_estimators": 20, "max_depth": 3},
        "lightgbm": {"n_estimators": 20, "num_leaves": 7}}


def _counterpart_points(spec) -> set[tuple[str, float, float]]:
    return {(t.model, t.params["reg_alpha"], t.params["reg_lambda"]) for t in linear_trials(spec)}


@pytest.mark.parametrize("library", sorted(NO_L1))
def test_a_library_without_l1_alone_is_matched_at_its_l2_values(library):
    spec = validate_spec(small_spec(models={library: NO_L1[library]}, sweep={"reg_lambda": [0, 10]},
                                    counterparts=["ols", "ridge"]))
    assert count_trials(spec) == len(make_plan(spec)) == 4
    assert _counterpart_points(spec) == {("ols", 0.0, 0.0), ("ridge", 0.0, 10.0)}


@pytest.mark.parametrize("library", sorted(NO_L1))
def test_a_library_without_l1_next_to_xgboost_adds_only_its_alpha_zero_points(library):
    spec = validate_spec(small_spec(models={library: NO_L1[library], "xgboost": BOTH["xgboost"]},
                                    sweep={"reg_alpha": [0, 1], "reg_lambda": [0, 10]},
                                    counterparts=["ols", "lasso", "ridge", "elasticnet"]))
    assert count_trials(spec) == len(make_plan(spec)) == 2 + 4 + 4
    assert {(p["reg_alpha"], p["reg_lambda"]) for p in penalty_points(spec)} == {
        (0.0, 0.0), (0.0, 10.0), (1.0, 0.0), (1.0, 10.0)}


def test_four_libraries_with_counterparts_count_each_shared_point_once():
    # CatBoost's reg_lambda default (3) is a point of its own; the others share the swept values
    spec = validate_spec(small_spec(models={**BOTH, **NO_L1}, sweep={"reg_alpha": [0, 1, 100]},
                                    counterparts=["ols", "lasso", "ridge", "elasticnet"]))
    points = {(p["reg_alpha"], p["reg_lambda"]) for p in penalty_points(spec)}
    assert points == {(0.0, 1.0), (1.0, 1.0), (100.0, 1.0),  # XGBoost, λ = 1 by default
                      (0.0, 0.0), (1.0, 0.0), (100.0, 0.0),  # LightGBM, and HistGradientBoosting at (0, 0)
                      (0.0, 3.0)}  # CatBoost
    assert count_trials(spec) == len(make_plan(spec)) == 3 + 3 + 1 + 1 + len(points)


def test_l1_counterparts_next_to_a_library_without_l1_alone_are_a_spec_error():
    spec = validate_spec(small_spec(models={"sklearn_hgb": NO_L1["sklearn_hgb"]}, sweep={"reg_lambda": [0, 10]},
                                    counterparts=["ridge", "lasso"]))
    for count in (count_trials, make_plan):
        with pytest.raises(SpecError, match=r"counterparts\[1\]: 'lasso' matches no grid point"):
            count(spec)


@pytest.fixture(scope="module")
def study_without_l1(tmp_path_factory):
    spec = small_spec(name="no_l1_counterparts", models={"sklearn_hgb": {"n_estimators": 10}},
                      sweep={"reg_lambda": [0, 10]}, counterparts=["ols", "ridge"])
    yield from study_in_temp_store(tmp_path_factory.mktemp("no_l1_counterparts"), spec)


def test_the_comparison_puts_a_library_without_l1_next_to_its_counterparts(study_without_l1):
    outcome, _, _ = study_without_l1
    table = comparison_table(outcome.results, ("rmse",), [])
    assert table[["reg_alpha", "reg_lambda", "linear.model"]].values.tolist() == [[0.0, 0.0, "ols"],
                                                                                 [0.0, 10.0, "ridge"]]
    assert table["sklearn_hgb.test_rmse"].notna().all() and table["linear.test_rmse"].notna().all()
