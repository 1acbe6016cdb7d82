"""Hypotheses under ``expect:``: validation with key paths, the statistics on known tables, and the
findings a real study logs to MLflow."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import small_spec, write_spec

from gbreg.analysis.judgement import evaluate_hypotheses
from gbreg.errors import SpecError
from gbreg.spec.hypotheses import Hypothesis
from gbreg.spec.validation import validate_spec
from gbreg.tracking.run_table import numeric_columns


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
    ({"metric": "n_leaves", "trend": "none", "along": "reg_alpha", "number": 0}, "expect[0].number",
     "greater than or equal to 1"),
    ({"metric": "n_leaves", "trend": "none", "along": "reg_alpha", "where": {"reg_lambda": 5}},
     "expect[0].where.reg_lambda", "keeps none of the values of sweep.reg_lambda"),
    ({"metric": "n_leaves", "sign": "positive", "where": {"reg_alpha": {"in": [2, 3]}}},
     "expect[0].where.reg_alpha", "the hypothesis would have no cells"),
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


def grid(metric_of, *, alphas=(0, 1, 10, 100), lambdas=(0, 1, 10), repeats=4, folds=3, seed=0) -> pd.DataFrame:
    """A per-split table: two models, a reg_alpha x reg_lambda grid, ``repeats`` x ``folds`` splits (split
    index ``repeat * folds + fold``). ``metric_of(model, a, b, rng, split)`` or ``metric_of(model, a, b, rng)``.
    With several folds judge's unit is the repeat (a t-test needs >= 3); with folds=1 it is the split."""
    import inspect

    rng = np.random.default_rng(seed)
    with_split = len(inspect.signature(metric_of).parameters) == 5
    rows = []
    for model in ("xgboost", "lightgbm"):
        for split in range(repeats * folds):
            for a in alphas:
                for b in lambdas:
                    value = metric_of(model, a, b, rng, split) if with_split else metric_of(model, a, b, rng)
                    rows.append({"run_id": f"{model}-{a}-{b}", "library": model, "model": model, "kind": "booster",
                                 "reg_alpha": float(a), "reg_lambda": float(b), "repeat": split // folds,
                                 "fold": split % folds, "m": value})
    return pd.DataFrame(rows)


AXES = ["reg_alpha", "reg_lambda"]


def verdict_of(hypothesis: dict, table: pd.DataFrame, **options):
    """One hypothesis judged alone; ``options``: judge's ``unit`` and ``test``."""
    from gbreg import judge

    return judge(table, [hypothesis], AXES, trials=table, **options)[0]


def test_a_monotone_trend_is_supported_and_the_opposite_claim_contradicted():
    table = grid(lambda model, a, b, rng: -np.log1p(b) + rng.normal(0, 0.3))
    supported = verdict_of({"metric": "m", "trend": "decreasing", "along": "reg_lambda"}, table)
    assert supported.verdict == "supported"
    # 4 repeats x 3 folds: the folds of a repeat share its rows, so the unit is the repeat (t-test, 3 df)
    assert supported.effect < -0.7 and supported.p_value < 1e-3
    assert supported.unit == "repeat" and supported.n_units == 4
    assert supported.numbers["n_configurations"] == 2 * 4  # model x reg_alpha, averaged within each split
    assert supported.ci_low <= supported.effect <= supported.ci_high < 0
    contradicted = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_lambda"}, table)
    assert contradicted.verdict == "contradicted"
    none = verdict_of({"metric": "m", "trend": "none", "along": "reg_lambda"}, table)
    assert none.verdict == "contradicted" and none.ci_high < -0.3  # significantly beyond the tolerance


def test_the_exact_sign_flip_path_over_holdout_splits():
    """test='sign_flip': every one of 6 holdout splits has a negative mean rho, the exact two-sided p is 2 / 2^6."""
    table = grid(lambda model, a, b, rng: -np.log1p(b) + rng.normal(0, 0.3), repeats=6, folds=1)
    exact = verdict_of({"metric": "m", "trend": "decreasing", "along": "reg_lambda"}, table, test="sign_flip")
    assert exact.verdict == "supported" and exact.p_value == pytest.approx(2 / 64)
    assert exact.unit == "split" and exact.n_units == 6 and "exact sign-flip" in exact.reason
    by_split = verdict_of({"metric": "m", "trend": "decreasing", "along": "reg_lambda"},
                          grid(lambda model, a, b, rng: -np.log1p(b) + rng.normal(0, 0.3)), unit="split",
                          test="sign_flip")
    assert by_split.unit == "split" and by_split.n_units == 12 and by_split.p_value == pytest.approx(2 / 4096)


def test_a_split_level_slope_is_not_a_trend():
    """Each repeat has its own slope, shared by every configuration and fold on it (the issue's null): half
    the repeats go up, half down. Cell-level permutation called this significant; the repeat-level test does not."""
    slopes = [1.0, -1.0, 1.0, -1.0]
    table = grid(lambda model, a, b, rng, split: slopes[split // 3] * np.log1p(b) + rng.normal(0, 0.1))
    verdict = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_lambda"}, table)
    assert verdict.verdict == "inconclusive" and verdict.p_value > 0.9
    assert abs(verdict.effect) < 0.05 and verdict.ci_low < -0.5 and verdict.ci_high > 0.5


def test_where_restricts_the_cells():
    # the trend exists for xgboost only
    table = grid(lambda model, a, b, rng: (a if model == "xgboost" else 0) + rng.normal(0, 0.5))
    xgb = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_alpha", "where": {"library": "xgboost"}},
                     table)
    lgbm = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_alpha",
                       "where": {"library": "lightgbm"}}, table)
    assert xgb.verdict == "supported" and xgb.numbers["n_configurations"] == 3
    assert lgbm.verdict != "supported"


def test_a_constant_metric_supports_no_trend_and_no_direction():
    table = grid(lambda model, a, b, rng: 8.0)
    none = verdict_of({"metric": "m", "trend": "none", "along": "reg_lambda"}, table)
    # 4 repeats that agree exactly (mean ρ 0 in each): no spread for a t-test, the exact test's 2/2^4
    assert none.verdict == "inconclusive" and none.p_value == 0.125
    assert none.effect == 0.0 and none.ci_low == 0.0 and none.ci_high == 0.0
    assert none.numbers["n_constant"] == 2 * 4 * 12
    assert "the 4 repeats agree exactly" in none.reason
    six = verdict_of({"metric": "m", "trend": "none", "along": "reg_lambda"},
                     grid(lambda model, a, b, rng: 8.0, repeats=6))
    assert six.verdict == "supported" and six.p_value == 2 / 2**6
    increasing = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_lambda"}, table)
    assert increasing.verdict == "inconclusive" and increasing.p_value == 1.0


def test_constant_configurations_count_as_no_trend_and_are_left_out_of_a_direction():
    """Two configurations with a clear trend and six constant ones. A constant configuration has no trend:
    `trend: none` counts it as ρ = 0 (review 29: it used to be left out, so two movers among 16 decided
    'no trend' alone); a directional trend averages over the two that vary."""
    table = grid(lambda model, a, b, rng: (np.log1p(b) + rng.normal(0, 0.1)) if (model, a) in
                 (("xgboost", 0), ("lightgbm", 0)) else 1.0)
    none = verdict_of({"metric": "m", "trend": "none", "along": "reg_lambda"}, table)
    assert none.verdict != "contradicted" and none.effect == pytest.approx(2 / 8)
    assert none.numbers["n_constant"] == 6 * 12 and "each counted as ρ = 0" in none.reason
    assert none.numbers["n_configurations"] == 8
    rising = verdict_of({"metric": "m", "trend": "increasing", "along": "reg_lambda"}, table)
    assert rising.effect == pytest.approx(1.0) and rising.numbers["n_configurations"] == 2
    assert "over 2 configuration(s)" in rising.reason and "left out of the averages" in rising.reason


def test_too_few_splits_is_inconclusive_with_the_reason():
    trend = {"metric": "m", "trend": "increasing", "along": "reg_lambda"}
    table = grid(lambda model, a, b, rng: float(b), repeats=1, folds=1)  # one holdout split: a perfect trend
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said in the reason, not by numpy on the user's stderr
        verdict = verdict_of(trend, table)
    assert verdict.verdict == "inconclusive" and np.isnan(verdict.p_value)
    assert "only 1 split: a test needs at least 3 independent splits" in verdict.reason
    # 2 repeats x 3 folds: 6 splits but 2 independent repeats, whatever the data
    two = verdict_of(trend, grid(lambda model, a, b, rng: float(b) + rng.normal(0, 0.1), repeats=2))
    assert two.verdict == "inconclusive" and np.isnan(two.p_value) and two.n_units == 2
    assert "only 2 repeats" in two.reason and "add repeats" in two.reason
    sign = verdict_of({"metric": "m", "sign": "positive"}, grid(lambda model, a, b, rng: 1.0 + rng.random(), repeats=2))
    best = verdict_of({"best": "m", "interior": ["reg_alpha"]}, grid(lambda model, a, b, rng: rng.normal(), repeats=2))
    assert "only 2 repeats" in sign.reason and "only 2 repeats" in best.reason
    five = verdict_of(trend, grid(lambda model, a, b, rng: float(b) + rng.normal(), repeats=5, folds=1),
                      test="sign_flip")
    assert five.verdict == "inconclusive" and "0.0625" in five.reason  # 2 / 2^5: never below 0.05


def test_sign_test_counts_configurations_and_reports_zeros():
    # every cell positive on every repeat: no spread, so the exact test over the repeats decides (2/2^n):
    # 6 repeats reach 0.05, 4 cannot
    positive = grid(lambda model, a, b, rng: 0.2 + rng.normal(0, 0.1), repeats=6)
    verdict = verdict_of({"metric": "m", "sign": "positive", "where": {"reg_alpha": {"ge": 10}}}, positive)
    assert verdict.verdict == "supported" and verdict.numbers["n_configurations"] == 2 * 2 * 3
    assert verdict.numbers["n_positive"] == 12 and verdict.n_units == 6 and verdict.unit == "repeat"
    assert verdict.p_value == 2 / 2**6
    assert verdict_of({"metric": "m", "sign": "negative"}, positive).verdict == "contradicted"
    four = verdict_of({"metric": "m", "sign": "positive"}, grid(lambda model, a, b, rng: 0.2 + rng.normal(0, 0.1)))
    assert four.verdict == "inconclusive" and four.p_value == 0.125 and "the 4 repeats agree exactly" in four.reason
    # a 0/1 metric that is 1 in a few cells: zeros are neither sign and count against "positive"
    rare = grid(lambda model, a, b, rng: float(rng.random() < 0.03))
    zeros = verdict_of({"metric": "m", "sign": "positive"}, rare)
    assert zeros.verdict == "inconclusive" and zeros.numbers["n_zero"] >= 12
    assert "exactly zero" in zeros.reason


def test_a_split_effect_shared_by_every_configuration_is_not_a_sign():
    """Every configuration is positive on average only because some repeats are far above zero and the
    others slightly below: the sign test over configurations alone would say 'positive'."""
    shift = [3.0, 3.0, 3.0, -1.0]
    table = grid(lambda model, a, b, rng, split: shift[split // 3] + rng.normal(0, 0.1))
    verdict = verdict_of({"metric": "m", "sign": "positive"}, table)
    assert verdict.numbers["n_positive"] == 24 and verdict.effect == pytest.approx(0.5)
    assert verdict.verdict == "inconclusive" and verdict.p_value > 0.2  # crossed t-test: the repeats disagree
    holdout = grid(lambda model, a, b, rng, split: [3.0, 3.0, 3.0, -1.0, -1.0, -1.0][split] + rng.normal(0, 0.1),
                   repeats=6, folds=1)
    exact = verdict_of({"metric": "m", "sign": "positive"}, holdout, test="sign_flip")
    assert exact.numbers["n_positive"] == 24 and exact.numbers["p_configurations"] < 1e-6
    assert exact.verdict == "inconclusive" and exact.numbers["p_splits"] > 0.2  # 3 of 6 splits below 0


def test_best_interior():
    bowl = grid(lambda model, a, b, rng: (np.log1p(a) - np.log1p(10)) ** 2 + (b - 1) ** 2 + rng.normal(0, 0.05),
                alphas=(0, 1, 10, 100), lambdas=(0, 1, 10))
    supported = verdict_of({"best": "m", "interior": ["reg_alpha", "reg_lambda"]}, bowl)
    assert supported.verdict == "supported" and supported.effect > 0 and supported.p_value < 0.01
    holdout = grid(lambda model, a, b, rng: (np.log1p(a) - np.log1p(10)) ** 2 + (b - 1) ** 2 + rng.normal(0, 0.05),
                   repeats=6, folds=1)
    exact = verdict_of({"best": "m", "interior": ["reg_alpha", "reg_lambda"]}, holdout, test="sign_flip")
    assert exact.verdict == "supported" and exact.p_value == pytest.approx(2 / 64)
    slope = grid(lambda model, a, b, rng: a + b + rng.normal(0, 0.05))
    edge = verdict_of({"best": "m", "interior": ["reg_alpha", "reg_lambda"]}, slope)
    assert edge.verdict == "contradicted" and edge.effect < 0
    maximum = verdict_of({"best": "m", "interior": ["reg_alpha"], "goal": "max"}, bowl)
    assert maximum.verdict == "contradicted"  # the largest value of a bowl is at its rim
    flat = verdict_of({"best": "m", "interior": ["reg_alpha", "reg_lambda"]},
                      grid(lambda model, a, b, rng: rng.normal(), seed=3))
    assert flat.verdict == "inconclusive"
    one_split = verdict_of({"best": "m", "interior": ["reg_alpha", "reg_lambda"]}, bowl[bowl["repeat"] == 0]
                           .query("fold == 0"))
    assert one_split.verdict == "inconclusive" and "split" in one_split.reason


def test_holm_adjusts_across_the_hypotheses_and_the_verdict_uses_the_adjusted_p():
    from gbreg import judge

    # 6 holdout splits and the exact test: each p is 2 / 64, so Holm over two makes both 4 / 64 > 0.05
    table = grid(lambda model, a, b, rng: np.log1p(a) + np.log1p(b) + rng.normal(0, 0.1), repeats=6, folds=1)
    expect = [{"metric": "m", "trend": "increasing", "along": "reg_alpha"},
              {"metric": "m", "trend": "increasing", "along": "reg_lambda"}]
    alone = judge(table, expect[:1], AXES, test="sign_flip")
    assert alone[0].verdict == "supported" and alone[0].p_adjusted == alone[0].p_value == pytest.approx(2 / 64)
    both = judge(table, expect, AXES, test="sign_flip")
    assert [v.p_value for v in both] == [pytest.approx(2 / 64)] * 2
    assert [v.p_adjusted for v in both] == [pytest.approx(4 / 64)] * 2  # Holm: 2 x 0.031, then max(…, 0.031)
    assert [v.verdict for v in both] == ["inconclusive"] * 2 and "after Holm over 2" in both[0].reason
    frame = both.to_frame()
    assert {"verdict", "p_value", "p_adjusted", "effect", "ci_low", "ci_high", "unit", "n_units"} <= set(frame)
    assert list(frame["p_adjusted"]) == pytest.approx([4 / 64, 4 / 64])


def test_judge_is_what_evaluate_hypotheses_uses_and_checks_its_input():
    from gbreg import judge

    table = grid(lambda model, a, b, rng: -np.log1p(b) + rng.normal(0, 0.3), repeats=6)
    expect = [{"metric": "m", "trend": "decreasing", "along": "reg_lambda"}, {"best": "m", "interior": ["reg_alpha"]}]
    ours = judge(table, expect, AXES)
    study = evaluate_hypotheses([Hypothesis.model_validate(e) for e in expect], table, table, AXES)
    assert [(v.verdict, v.p_value, v.p_adjusted) for v in ours] == [(v.verdict, v.p_value, v.p_adjusted)
                                                                    for v in study]
    assert ours[0].unit == "repeat" and ours[0].n_units == 6  # unit='auto': the repeat of k-fold splits
    by_split = judge(table, expect[:1], AXES, unit="split")[0]
    assert by_split.unit == "split" and by_split.n_units == 18 and by_split.verdict == "supported"
    with pytest.raises(ValueError, match="unit must be one of"):
        judge(table, expect, AXES, unit="fold")
    with pytest.raises(ValueError, match="test must be one of"):
        judge(table, expect, AXES, test="wilcoxon")
    with pytest.raises(TypeError, match="pandas DataFrame"):
        judge(table.to_dict("records"), expect, AXES)


# ----------------------------------------------------------------------------------------------------
# a real study logged to MLflow


@pytest.mark.slow
def test_a_study_logs_findings_verdicts_and_shrinkage(tracking, tmp_path):
    from typer.testing import CliRunner

    from gbreg.cli import app
    from gbreg.run.study import run_study
    from gbreg.spec.validation import load_spec
    from gbreg.tracking.store import open_store

    spec = small_spec(
        repeats=4, evaluation={"split": "kfold", "folds": 3, "metric": "rmse"},  # 12 splits: Holm over 3 can pass
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
    # leaf_shrinkage has one value per trial (computed after the sweep): no split replicates, no test
    assert parent.data.metrics["hypothesis_2_verdict"] == 0.0 and "hypothesis_2_p_value" not in parent.data.metrics
    assert "hypothesis_3_p_value" in parent.data.metrics
    # Holm across the 3 hypotheses: the adjusted p is logged next to the raw one, never smaller
    assert parent.data.metrics["hypothesis_1_p_adjusted"] >= parent.data.metrics["hypothesis_1_p_value"]
    assert parent.data.metrics["hypothesis_1_p_adjusted"] < 0.05
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
    assert "t-test over repeats" in shown.output and "held fixed: model, reg_lambda)" in shown.output
    assert "| p (Holm) |" in shown.output and "over 4 repeats" in shown.output


@pytest.mark.slow
def test_a_grid_without_the_unregularized_point_says_so(tracking, tmp_path):
    from gbreg.analysis.findings import findings_text
    from gbreg.run.study import run_study
    from gbreg.spec.validation import load_spec
    from gbreg.tracking.store import open_store

    spec = small_spec(models={"lightgbm": {"n_estimators": 10, "num_leaves": 7}},
                      sweep={"reg_alpha": [1, 10, 100]},
                      expect=[{"metric": "leaf_abs_mean", "trend": "decreasing", "along": "reg_alpha"}])
    outcome = run_study(load_spec(write_spec(tmp_path, spec)), jobs=1)
    client = open_store(tracking)
    text = findings_text(client, client.get_run(outcome.parent_run_id))
    assert "No trial at reg_alpha = reg_lambda = 0 for lightgbm" in text
    assert "leaf_shrinkage" not in client.get_run(outcome.results["run_id"][0]).data.metrics


def test_two_hypotheses_with_one_number_are_refused():
    expect = [{"metric": "n_leaves", "sign": "positive", "number": 2},
              {"metric": "leaf_abs_mean", "sign": "positive"}]  # its place, 2, is taken
    assert problems_of(expect) == {"expect[1]": "is numbered 2, as expect[0] is; give each hypothesis its own number"}


def test_no_trend_from_opposite_trends_says_the_average_cancels_them():
    """xgboost rises along reg_lambda, lightgbm falls: the mean ρ is about 0, and the reason says why."""
    table = grid(lambda model, a, b, rng: (b if model == "xgboost" else -b) + rng.normal(0, 0.01))
    verdict = verdict_of({"metric": "m", "trend": "none", "along": "reg_lambda"}, table)
    assert abs(verdict.effect) < 0.05
    assert "caution: configurations trend in opposite directions (mean ρ +1.00 at xgboost" in verdict.reason
    assert "-1.00 at lightgbm" in verdict.reason
    # noise alone: configurations look sloped by chance, both ways now and then; the t-test per configuration
    # (Bonferroni over them) keeps such cautions rare
    cautions = sum("caution" in verdict_of({"metric": "m", "trend": "none", "along": "reg_lambda"},
                                           grid(lambda model, a, b, rng: rng.normal(0, 1.0), seed=seed)).reason
                   for seed in range(20))
    assert cautions <= 2
