"""Shrinkage of the libraries without an L1 term (CatBoost, HistGradientBoosting: no reg_alpha in their
rows): against their own reg_lambda = 0 trial, in the findings' shrinkage tables and in the metrics
logged on their runs."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import small_spec, study_in_temp_store

from gbreg.analysis.findings import _shrinkage_section, findings_text
from gbreg.analysis.shrinkage import shrinkage_table
from gbreg.tracking.run_table import numeric_columns

NAN = float("nan")
AXES = ["reg_alpha", "reg_lambda"]


# ------------------------------------------------------------------------------------- shrinkage


def trials(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["run_id", "kind", "model", "reg_alpha", "reg_lambda", "leaf_abs_mean",
                                       "abs_q50", "abs_q90"])


def mixed_libraries() -> pd.DataFrame:
    return trials([
        ("x0", "booster", "xgboost", 0.0, 0.0, 2.0, 1.0, 4.0),
        ("x1", "booster", "xgboost", 1.0, 10.0, 1.0, 0.25, 3.0),
        ("c0", "booster", "catboost", NAN, 0.0, 4.0, 2.0, 8.0),
        ("c1", "booster", "catboost", NAN, 1.0, 3.0, 1.5, 6.0),
        ("c2", "booster", "catboost", NAN, 10.0, 1.0, 0.5, 2.0),
        ("h1", "booster", "sklearn_hgb", NAN, 1.0, 3.0, 1.0, 6.0),  # no reg_lambda = 0 trial
        ("h2", "booster", "sklearn_hgb", NAN, 10.0, 1.0, 0.5, 2.0),
    ])


def test_a_library_without_reg_alpha_is_compared_with_its_reg_lambda_zero_trial():
    table, missing = shrinkage_table(mixed_libraries(), [])
    assert missing == ["sklearn_hgb"]  # catboost has its unregularized point: reg_lambda = 0
    assert table.loc[2:4, "leaf_shrinkage"].tolist() == [1.0, 0.75, 0.25]
    assert table.loc[4, ["leaf_shrinkage_q50", "leaf_shrinkage_q90"]].tolist() == [0.25, 0.25]
    assert table.loc[1, "leaf_shrinkage"] == 0.5  # xgboost still against reg_alpha = reg_lambda = 0
    assert table.loc[5:6].isna().all().all()


def test_a_library_with_reg_alpha_still_needs_both_penalties_at_zero():
    results = trials([("x1", "booster", "xgboost", 1.0, 0.0, 2.0, 1.0, 4.0),
                      ("x2", "booster", "xgboost", NAN, 0.0, 2.0, 1.0, 4.0)])  # a failed trial's missing alpha
    table, missing = shrinkage_table(results, [])
    assert missing == ["xgboost"] and table["leaf_shrinkage"].isna().all()


def test_the_findings_show_a_one_row_table_for_a_library_without_reg_alpha():
    results = mixed_libraries()
    table, missing = shrinkage_table(results, [])
    text = _shrinkage_section(results.join(table), missing)
    assert text.startswith("No trial at reg_alpha = reg_lambda = 0 for sklearn_hgb (for sklearn_hgb, without "
                           "reg_alpha: none at reg_lambda = 0): the grid has no unregularized point")
    assert "relative to the same model at reg_alpha = reg_lambda = 0 (for catboost, without reg_alpha: at " \
           "reg_lambda = 0; other axes equal)" in text
    assert "\ncatboost (it has no reg_alpha; columns reg_lambda):\n\n| α \\ λ | 0 | 1 | 10 |\n|---|---|---|---|\n" \
           "| – | 1 (1/1) | 0.75 (0.75/0.75) | 0.25 (0.25/0.25) |" in text
    assert "\nxgboost (rows reg_alpha, columns reg_lambda):\n" in text


# ------------------------------------------------------------------------------------ a real study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    pytest.importorskip("catboost")
    spec = small_spec(name="no_alpha_libraries",
                      models={"xgboost": {"n_estimators": 5, "max_depth": 2},
                              "catboost": {"n_estimators": 5, "max_depth": 2},
                              "sklearn_hgb": {"n_estimators": 5, "max_leaves": 4}},
                      sweep={"reg_alpha": [0, 1, 10], "reg_lambda": [0, 1, 10]},
                      expect=[{"best": "test_rmse", "interior": AXES}])
    yield from study_in_temp_store(tmp_path_factory.mktemp("no_alpha"), spec)


@pytest.mark.slow
def test_a_study_logs_shrinkage_for_libraries_without_reg_alpha(study):
    outcome, client, _ = study
    results = numeric_columns(outcome.results).set_index("run_id")
    for library in ("catboost", "sklearn_hgb"):
        rows = results[results["model"] == library]
        reference = rows.loc[rows["reg_lambda"] == 0, "leaf_abs_mean"].iloc[0]
        child = rows.index[rows["reg_lambda"] == 10][0]
        logged = client.get_run(child).data.metrics
        assert logged["leaf_shrinkage"] == pytest.approx(rows.loc[child, "leaf_abs_mean"] / reference)
    text = findings_text(client, client.get_run(outcome.parent_run_id))
    assert "No trial at reg_alpha" not in text
    assert "catboost (it has no reg_alpha; columns reg_lambda)" in text
    assert ("only 1 split: a test needs at least 3 independent splits to say anything (add repeats); left out, "
            "without a value of reg_alpha: catboost, sklearn_hgb.") in text  # the best point names them
