"""Hypotheses under ``expect:``: validation with key paths, the statistics on known tables, and the
findings a real study logs to MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small_spec, write_spec

from gbreg.errors import SpecError
from gbreg.findings import numeric_columns
from gbreg.hypotheses import Hypothesis
from gbreg.spec import validate_spec
from gbreg.verdicts import evaluate_hypotheses


def test_the_moved_names_are_still_importable_from_gbreg_hypotheses():
    import gbreg.findings
    import gbreg.hypotheses
    import gbreg.verdicts

    for name in ("Verdict", "evaluate_hypotheses", "filter_rows", "trend_verdict", "sign_verdict", "best_verdict"):
        assert getattr(gbreg.hypotheses, name) is getattr(gbreg.verdicts, name)
    for name in ("add_shrinkage_columns", "log_shrinkage_metrics", "log_findings", "numeric_columns", "split_table",
                 "verdict_metrics", "findings_markdown", "METHOD_NOTE", "findings_text"):
        assert getattr(gbreg.hypotheses, name) is getattr(gbreg.findings, name)
    with pytest.raises(AttributeError):
        gbreg.hypotheses.no_such_name  # noqa: B018


def problems_of(expect: list, **overrides) -> dict[str, str]:
    try:
        validate_spec(small_spec(expect=expect, **overrides))
    except SpecError as exc:
        return dict(exc.problems)
    return {}


# ----------------------------------------------------------------------------------------------------
# validation


def test_the_issue_examples_validate():
    expect = [
        {"metric": "zero_leaf_fraction", "trend": "increasing", "along": "reg_alpha", "where": {"library": "xgboost"}},
        {"metric": "leaf_abs_mean", "trend": "decreasing", "along": "reg_lambda"},
        {"metric": "n_leaves", "trend": "none", "along": "reg_lambda", "where": {"library": "xgboost"}},
        {"metric": "gap_rmse", "trend": "decreasing", "along": "reg_lambda"},
        {"metric": "laplace_loglik_minus_gaussian", "sign": "positive", "where": {"reg_alpha": {"gt": 1}}},
        {"best": "test_rmse", "interior": ["reg_alpha", "reg_lambda"]},
    ]
    sweep = {"reg_alpha": [0, 1, 10, 100], "reg_lambda": [0, 1, 10]}
    assert problems_of(expect, sweep=sweep) == {}


@pytest.mark.parametrize("hypothesis, path, fragment", [
    ({"metric": "zero_leaf_fractoin", "trend": "increasing", "along": "reg_alpha"}, "expect[0].metric",
     "did you mean 'zero_leaf_fraction'"),
    ({"metric": "n_leaves", "trend": "decreasing", "along": "reg_lamda"}, "expect[0].along",
     "did you mean 'reg_lambda'"),
    ({"metric": "n_leaves", "trend": "decreasing", "alongside": "reg_lambda"}, "expect[0].alongside",
     "did you mean 'along'"),
    ({"metric": "n_leaves", "trend": "up", "along": "reg_lambda"}, "expect[0].trend", "'increasing'"),
    ({"metric": "n_leaves", "trend": "decreasing"}, "expect[0].along", "required"),
    ({"metric": "n_leaves", "trend": "decreasing", "along": "reg_lambda", "sign": "positive"}, "expect[0]",
     "mixes trend and sign"),
    ({"metric": "n_leaves"}, "expect[0]", "states nothing"),
    ({"metric": "gap_logloss", "trend": "decreasing", "along": "reg_lambda"}, "expect[0].metric",
     "does not fit task 'regression'"),
    ({"metric": "coef_l1", "trend": "decreasing", "along": "reg_lambda"}, "expect[0].metric", "linear counterparts"),
    ({"best": "test_rmse", "interior": ["reg_lambda"]}, "expect[0].interior[0]", "at least 3"),
    ({"best": "test_rmse", "interior": ["reg_alpha"], "metric": "test_rmse"}, "expect[0].metric", "best:"),
    ({"metric": "n_leaves", "trend": "none", "along": "reg_alpha", "where": {"libary": "xgboost"}},
     "expect[0].where.libary", "did you mean 'library'"),
    ({"metric": "n_leaves", "trend": "none", "along": "reg_alpha", "where": {"library": "xgbost"}},
     "expect[0].where.library", "did you mean 'xgboost'"),
    ({"metric": "n_leaves", "trend": "none", "along": "reg_alpha", "where": {"reg_lambda": {"gt": 5, "lt": 1}}},
     "expect[0].where.reg_lambda", "range is empty"),
    ({"metric": "n_leaves", "trend": "none", "along": "reg_alpha", "where": {"reg_alpha": 1}},
     "expect[0].where.reg_alpha", "keeps 1 value(s)"),
    ({"metric": "n_leaves", "trend": "none", "along": "reg_alpha", "where": {"reg_alpha": {"above": 1}}},
     "expect[0].where.reg_alpha.above", "unknown"),
    ({"metric": "n_leaves", "trend": "decreasing", "along": "reg_alpha", "tolerance": 0.2}, "expect[0].tolerance",
     "trend: none"),
])
def test_a_bad_hypothesis_is_a_spec_error_at_its_key_path(hypothesis, path, fragment):
    problems = problems_of([hypothesis])
    assert path in problems, problems
    assert fragment in problems[path]


def test_an_axis_one_library_lacks_is_rejected_when_filtered_to_that_library():
    spec = small_spec(sweep={"reg_lambda": [0, 1, 10], "min_split_gain": [0, 1, 5]})
    hypothesis = {"metric": "n_leaves", "trend": "decreasing", "along": "min_split_gain", "where": {"library": "xgboost"}}
    problems = problems_of([hypothesis], sweep=spec["sweep"])
    assert "has no parameter 'min_split_gain'" in problems["expect[0].where.library"]


def test_task_suffixed_metrics_are_accepted_for_any_task_while_the_task_is_unknown(tmp_path):
    (tmp_path / "data.csv").write_text("x,y\n1,0\n2,1\n")  # a file's task is known only once it is read
    data = {"source": "file", "path": str(tmp_path / "data.csv"), "target": "y"}
    for metric in ("gap_logloss", "gap_rmse"):
        assert problems_of([{"metric": metric, "trend": "decreasing", "along": "reg_lambda"}], data=data) == {}
    wrong = problems_of([{"metric": "gap_rmse", "trend": "decreasing", "along": "reg_lambda"}],
                        data={"source": "synthetic", "generator": "classification"})
    assert "does not fit task" in wrong["expect[0].metric"]


def test_gbreg_validate_reports_every_hypothesis_problem_and_exits_2(tmp_path):
    from typer.testing import CliRunner

    from gbreg.cli import app

    path = write_spec(tmp_path, small_spec(expect=[
        {"metric": "n_leafs", "trend": "decreasing", "along": "reg_lambda"},
        {"best": "test_rmse", "interior": ["gamma"]},
    ]))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "expect[0].metric" in output and "did you mean 'n_leaves'" in output
    assert "expect[1].interior[0]" in output and "Traceback" not in output


# ----------------------------------------------------------------------------------------------------
# statistics on tables with a known answer


def grid(metric_of, *, alphas=(0, 1, 10, 100), lambdas=(0, 1, 10), splits=3, seed=0) -> pd.DataFrame:
    """A per-split table: two models, a reg_alpha x reg_lambda grid, ``splits`` repeats."""
    rng = np.random.default_rng(seed)
    rows = []
    for model in ("xgboost", "lightgbm"):
        for repeat in range(splits):
            for a in alphas:
                for b in lambdas:
                    rows.append({"run_id": f"{model}-{a}-{b}", "library": model, "model": model, "kind": "booster",
                                 "reg_alpha": float(a), "reg_lambda": float(b), "repeat": repeat, "fold": 0,
                                 "m": metric_of(model, a, b, rng)})
    return pd.DataFrame(rows)


AXES = ["reg_alpha", "reg_lambda"]


def verdict_of(hypothesis: dict, table: pd.DataFrame, seed: int = 0):
    h = Hypothesis.model_validate(hypothesis)
    return evaluate_hypotheses([h], table, table, AXES, seed=seed)[0]


def test_a_monotone_trend_is_supported_and_the_opposite_claim_contradicted():
    table = grid(lambda model, a, b, rng: -np.log1p(b) + rng.normal(0, 0.3))
    supported = verdict_of({"metric": "m", "trend": "decreasing", "along": "reg_lambda"}, table)
    assert supported.verdict == "supported"
    assert supported.numbers["statistic"] < -0.7 and supported.numbers["p_value"] < 0.001
    assert supported.numbers["n_strata"] == 2 * 4 * 3  # model x reg_alpha x repeat
    assert supported.numbers["ci_low"] <= supported.numbers["statistic"] <= supported.numbers["ci_high"]
    contradicted = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_lambda"}, table)
    assert contradicted.verdict == "contradicted"
    assert verdict_of({"metric": "m", "trend": "none", "along": "reg_lambda"}, table).verdict == "contradicted"


def test_where_restricts_the_cells():
    # the trend exists for xgboost only
    table = grid(lambda model, a, b, rng: (a if model == "xgboost" else 0) + rng.normal(0, 0.5))
    xgb = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_alpha", "where": {"library": "xgboost"}},
                     table)
    lgbm = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_alpha",
                       "where": {"library": "lightgbm"}}, table)
    assert xgb.verdict == "supported" and xgb.numbers["n_strata"] == 3 * 3
    assert lgbm.verdict != "supported"


def test_a_constant_metric_supports_no_trend():
    table = grid(lambda model, a, b, rng: 8.0)
    verdict = verdict_of({"metric": "m", "trend": "none", "along": "reg_lambda"}, table)
    assert verdict.verdict == "supported"
    assert verdict.numbers["statistic"] == 0.0 and verdict.numbers["p_value"] == 1.0


def test_too_few_cells_is_inconclusive_with_the_reason():
    table = grid(lambda model, a, b, rng: float(b), alphas=(0,), lambdas=(0, 1, 10), splits=1)
    table = table[table["model"] == "xgboost"]
    verdict = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_lambda"}, table)
    assert verdict.verdict == "inconclusive"  # a perfect trend over 3 cells: 3! = 6 orderings, p >= 1/3
    assert "too few cells" in verdict.reason


def test_the_permutation_test_holds_its_level_under_the_null():
    """With no trend at all, p < 0.05 in about 5% of data sets (not a rubber stamp, not blind)."""
    rejections = 0
    trials = 200
    for seed in range(trials):
        table = grid(lambda model, a, b, rng: rng.normal(), splits=1, seed=seed)
        verdict = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_lambda"}, table, seed=seed)
        rejections += verdict.numbers["p_value"] < 0.05
    assert 0.01 <= rejections / trials <= 0.10


def test_sign_test():
    positive = grid(lambda model, a, b, rng: 0.2 + rng.normal(0, 0.1))
    verdict = verdict_of({"metric": "m", "sign": "positive", "where": {"reg_alpha": {"ge": 10}}}, positive)
    assert verdict.verdict == "supported" and verdict.numbers["n_cells"] == 2 * 2 * 3 * 3
    assert verdict_of({"metric": "m", "sign": "negative"}, positive).verdict == "contradicted"
    noise = grid(lambda model, a, b, rng: rng.choice([-1.0, 1.0]), splits=1).iloc[:4]
    few = verdict_of({"metric": "m", "sign": "positive"}, noise)
    assert few.verdict == "inconclusive" and "too few" in few.reason


def test_best_interior():
    bowl = grid(lambda model, a, b, rng: (np.log1p(a) - np.log1p(10)) ** 2 + (b - 1) ** 2 + rng.normal(0, 0.05),
                splits=5)
    assert verdict_of({"best": "m", "interior": ["reg_alpha", "reg_lambda"]}, bowl).verdict == "supported"
    slope = grid(lambda model, a, b, rng: a + b + rng.normal(0, 0.05), splits=5)
    edge = verdict_of({"best": "m", "interior": ["reg_alpha", "reg_lambda"]}, slope)
    assert edge.verdict == "contradicted" and edge.numbers["n_contradicted"] == 2
    maximum = verdict_of({"best": "m", "interior": ["reg_alpha"], "goal": "max"}, bowl)
    assert maximum.verdict == "contradicted"  # the largest value of a bowl is at its rim
    one_split = verdict_of({"best": "m", "interior": ["reg_alpha", "reg_lambda"]}, bowl[bowl["repeat"] == 0])
    assert one_split.verdict == "inconclusive" and "split" in one_split.reason


# ----------------------------------------------------------------------------------------------------
# a real study logged to MLflow


@pytest.mark.slow
def test_a_study_logs_findings_verdicts_and_shrinkage(tracking, tmp_path):
    from typer.testing import CliRunner

    from gbreg.cli import app
    from gbreg.runner import run_study
    from gbreg.spec import load_spec
    from gbreg.store import open_store

    spec = small_spec(
        repeats=2,
        models={"xgboost": {"n_estimators": 15, "max_depth": 3, "learning_rate": 0.3}},
        sweep={"reg_alpha": [0, 10, 300], "reg_lambda": [0, 1, 30]},
        expect=[{"metric": "zero_leaf_fraction", "trend": "increasing", "along": "reg_alpha"},
                {"metric": "leaf_shrinkage", "trend": "decreasing", "along": "reg_lambda"},
                {"metric": "laplace_loglik", "sign": "negative"}],
    )
    outcome = run_study(load_spec(write_spec(tmp_path, spec)), jobs=1)
    client = open_store(tracking)
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.metrics["hypothesis_1_verdict"] == 1.0
    assert parent.data.tags["gbreg.hypothesis.1"].startswith("supported: zero_leaf_fraction")
    assert "hypothesis_2_p_value" in parent.data.metrics
    assert parent.data.tags["gbreg.findings"].count(" ") >= 5

    results = numeric_columns(outcome.results).set_index("run_id")
    reference = results[(results["reg_alpha"] == 0) & (results["reg_lambda"] == 0)]["leaf_abs_mean"].iloc[0]
    child = results.index[(results["reg_alpha"] == 0) & (results["reg_lambda"] == 30)][0]
    logged = client.get_run(child).data.metrics
    assert logged["leaf_shrinkage"] == pytest.approx(results.loc[child, "leaf_abs_mean"] / reference)
    assert logged["leaf_shrinkage"] < 1.0
    assert {"laplace_loglik", "gaussian_loglik", "zero_mass", "laplace_wins"} <= set(logged)

    shown = CliRunner().invoke(app, ["results", "small", "--findings"])
    assert shown.exit_code == 0
    assert "# Findings: small" in shown.output and "## H1 · zero_leaf_fraction" in shown.output
    assert "permutation" in shown.output and "held fixed: model, reg_lambda, repeat, fold)" in shown.output


@pytest.mark.slow
def test_a_grid_without_the_unregularized_point_says_so(tracking, tmp_path):
    from gbreg.findings import findings_text
    from gbreg.runner import run_study
    from gbreg.spec import load_spec
    from gbreg.store import open_store

    spec = small_spec(models={"lightgbm": {"n_estimators": 10, "num_leaves": 7}},
                      sweep={"reg_alpha": [1, 10, 100]},
                      expect=[{"metric": "leaf_abs_mean", "trend": "decreasing", "along": "reg_alpha"}])
    outcome = run_study(load_spec(write_spec(tmp_path, spec)), jobs=1)
    client = open_store(tracking)
    text = findings_text(client, client.get_run(outcome.parent_run_id))
    assert "No trial at reg_alpha = reg_lambda = 0 for lightgbm" in text
    assert "leaf_shrinkage" not in client.get_run(outcome.results["run_id"][0]).data.metrics
