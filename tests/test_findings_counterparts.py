"""Best-point hypotheses in a study with linear counterparts: a counterpart covers only its kind of grid
point (lasso: reg_lambda = 0 < reg_alpha), so its surface is a part of the grid. It is left out of the
comparison (and named), instead of shrinking the boosters' grid to nothing (a crash that dropped
findings.md) or to no interior cell (a silent inconclusive)."""

from __future__ import annotations

import pytest
from conftest import small_spec, study_in_temp_store

from gbreg import judge
from gbreg.analysis.findings import findings_text, split_table
from gbreg.tracking.run_table import numeric_columns

BEST = {"best": "test_rmse", "interior": ["reg_alpha"]}
SPEC = small_spec(name="best_with_counterparts", repeats=3,
                  models={"xgboost": {"n_estimators": 10, "max_depth": 2, "learning_rate": 0.3}},
                  sweep={"reg_alpha": [0, 1, 10], "reg_lambda": [0, 10]},
                  counterparts=["lasso", "ridge"], expect=[BEST])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    yield from study_in_temp_store(tmp_path_factory.mktemp("findings_counterparts"), SPEC)


@pytest.fixture(scope="module")
def splits(study):
    outcome, client, _ = study
    results = numeric_columns(outcome.results)
    return numeric_columns(split_table(client, results, outcome.folds))


def test_findings_are_logged_with_a_tested_best_point_verdict(study):
    outcome, client, _ = study
    parent = client.get_run(outcome.parent_run_id)
    text = findings_text(client, parent)
    assert "left out, without a value at every cell of the grid: lasso · reg_lambda=0, ridge · reg_lambda=10" in text
    assert "hypothesis_1_p_value" in parent.data.metrics
    assert parent.data.metrics["hypothesis_1_verdict"] in (-1.0, 0.0, 1.0)


def test_counterparts_do_not_change_the_boosters_verdict(splits):
    assert set(splits["model"]) == {"xgboost", "lasso", "ridge"}
    boosters = judge(splits[splits["kind"] == "booster"], [BEST], ["reg_alpha", "reg_lambda"]).to_frame()
    for models in ({"xgboost", "lasso", "ridge"}, {"xgboost", "lasso"}, {"xgboost", "ridge"}):
        rows = splits[splits["model"].isin(models)]
        verdict = judge(rows, [BEST], ["reg_alpha", "reg_lambda"]).to_frame()
        assert verdict["p_value"].notna().all(), verdict["reason"][0]
        for column in ("verdict", "p_value", "effect", "ci_low", "ci_high", "n_units"):
            assert verdict[column][0] == boosters[column][0], column


def test_a_counterpart_alone_has_no_interior_cell(splits):
    verdict = judge(splits, [{**BEST, "where": {"model": "lasso"}}], ["reg_alpha", "reg_lambda"])[0]
    assert verdict.verdict == "inconclusive" and "there is no interior cell" in verdict.reason
