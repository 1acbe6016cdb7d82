"""Review 29: units whose summaries agree exactly (no spread) get the exact sign-flip p-value, not a t of
infinite size and p = 0; `trend: none` counts a configuration constant along the axis as rho = 0;
`where: {X: {ne: v}}` drops the rows that have no value of X."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gbreg import judge
from gbreg.analysis.inference import TTest, sign_evidence, trend_evidence
from gbreg.analysis.verdicts import filter_rows
from gbreg.spec.hypotheses import Hypothesis

AXES = ["reg_alpha", "reg_lambda"]


def holdout(n_splits: int, values, alphas=(0, 1, 10, 100), lambdas=(0,), library="xgboost") -> pd.DataFrame:
    """One configuration per reg_lambda value; ``values(split, alpha, lambda)`` the metric."""
    return pd.DataFrame([{"library": library, "reg_alpha": a, "reg_lambda": lam, "repeat": r, "fold": 0,
                          "m": values(r, a, lam)} for r in range(n_splits) for a in alphas for lam in lambdas])


def test_three_splits_each_with_a_perfect_trend_are_inconclusive_with_the_exact_p():
    rng = np.random.default_rng(0)
    shift = rng.normal(size=3)
    cells = holdout(3, lambda r, a, lam: shift[r] + 0.01 * a)  # rho = +1 on every split
    v = judge(cells, [{"metric": "m", "trend": "increasing", "along": "reg_alpha"}], axes=AXES)[0]
    assert v.verdict == "inconclusive"
    assert v.p_value == pytest.approx(0.25)  # 2 / 2^3, not 0
    assert v.p_adjusted == pytest.approx(0.25)
    assert "the 3 splits agree exactly" in v.reason
    assert "no spread for a t-test" in v.reason
    assert "cannot go below 2/2^3 = 0.25" in v.reason
    assert "more splits decide" in v.reason


def test_six_splits_each_with_a_perfect_trend_are_supported_by_the_exact_test():
    cells = holdout(6, lambda r, a, lam: r + 0.01 * a)
    v = judge(cells, [{"metric": "m", "trend": "increasing", "along": "reg_alpha"}], axes=AXES)[0]
    assert v.verdict == "supported"
    assert v.p_value == pytest.approx(2 / 2**6)


def test_four_repeats_of_a_perfect_decrease_under_k_fold_give_2_over_16():
    cells = pd.concat([holdout(4, lambda r, a, lam: -a).assign(fold=f) for f in range(3)])
    v = judge(cells, [{"metric": "m", "trend": "decreasing", "along": "reg_alpha"}], axes=AXES)[0]
    assert (v.unit, v.n_units) == ("repeat", 4)
    assert v.verdict == "inconclusive" and v.p_value == pytest.approx(0.125)
    assert "the 4 repeats agree exactly" in v.reason and "more repeats decide" in v.reason


def test_no_trend_with_every_unit_flat_gets_the_exact_floor_not_zero():
    cells = holdout(4, lambda r, a, lam: 5.0 + r, lambdas=(0, 1))  # constant along reg_alpha everywhere
    v = judge(cells, [{"metric": "m", "trend": "none", "along": "reg_alpha"}], axes=AXES)[0]
    assert v.verdict == "inconclusive"
    assert v.p_value == pytest.approx(0.125)
    assert v.effect == 0.0


def test_a_sign_with_every_cell_positive_on_three_splits_is_inconclusive_with_the_exact_p():
    cells = holdout(3, lambda r, a, lam: 1.0 + r + a)
    v = judge(cells, [{"metric": "m", "sign": "positive"}], axes=AXES)[0]
    assert v.verdict == "inconclusive"
    assert v.p_value == pytest.approx(0.25)
    assert "the 3 splits agree exactly (every configuration positive in every one)" in v.reason
    assert "no spread for a t-test" in v.reason


def test_the_batched_functions_floor_only_the_rows_without_spread():
    d = np.array([[1.0, 1.0, 1.0], [0.9, 1.0, 0.8], [0.0, 0.0, 0.0]])
    test = TTest(d)
    assert test.no_spread.tolist() == [True, False, True]
    assert test.p_two_sided(0.0)[0] == pytest.approx(0.25)
    assert 0 < test.p_two_sided(0.0)[1] < 0.05  # units that vary keep the t-test
    assert test.smallest_p.tolist() == [0.125, 0.0, 0.125]
    trend = trend_evidence(d, "increasing", 0.05, 0.3)
    assert trend["p"][0] == pytest.approx(0.25) and trend["smallest_p"][0] == pytest.approx(0.25)
    assert trend["smallest_p"][1] == 0.0
    none = trend_evidence(d, "none", 0.05, 0.3)
    assert none["candidate"][2] == 1 and none["p"][2] == pytest.approx(0.25)
    assert none["candidate"][0] == -1 and none["p"][0] == pytest.approx(0.25)
    sign = sign_evidence(np.ones((1, 5, 4)), "positive", 0.05)
    assert sign["no_spread"][0] and sign["p"][0] == pytest.approx(2 / 2**4)
    assert sign["smallest_p"][0] == pytest.approx(2 / 2**4)


def test_no_trend_counts_constant_configurations_as_rho_zero():
    """Report section 3: 15 of 16 configurations constant on every split, one rises; 'no trend' was
    contradicted with p = 0 (the one moving configuration was the whole mean)."""
    rng = np.random.default_rng(1)
    lambdas = [0, 1, 10, 100]

    def leaves(r, a, lam):
        return 478 + [0, 1, 10, 100].index(a) + rng.normal(0, 0.01) if lam == 0 else 480.0

    cells = holdout(6, leaves, lambdas=lambdas)
    cells = pd.concat([cells, cells.assign(reg_lambda=cells.reg_lambda + 1000, m=480.0)])  # 8 configurations
    none, rising = judge(cells, [{"metric": "m", "trend": "none", "along": "reg_alpha"},
                                 {"metric": "m", "trend": "increasing", "along": "reg_alpha"}], axes=AXES)
    assert none.effect == pytest.approx(1 / 8)
    assert none.verdict != "contradicted"
    assert "averaged per split over 8 configuration(s)" in none.reason
    assert "42 configuration × split cell(s) constant along reg_alpha, each counted as ρ = 0" in none.reason
    assert none.numbers["n_configurations"] == 8
    # a directional trend keeps averaging over the configurations that vary, and says how many did
    assert rising.effect == pytest.approx(1.0)
    assert "averaged per split over 1 configuration(s)" in rising.reason
    assert rising.numbers["n_configurations"] == 1


def test_no_trend_with_a_small_mover_among_many_constants_is_supported():
    rng = np.random.default_rng(2)
    cells = holdout(8, lambda r, a, lam: 480.0 + (rng.normal() if lam == 0 else 0.0), lambdas=list(range(10)))
    v = judge(cells, [{"metric": "m", "trend": "none", "along": "reg_alpha"}], axes=AXES)[0]
    assert abs(v.effect) < 0.3
    assert v.verdict == "supported"


def test_where_ne_drops_the_libraries_without_the_parameter():
    table = pd.DataFrame({"library": ["xgboost", "xgboost", "lightgbm", "catboost"],
                          "gamma": [0.0, 10.0, np.nan, np.nan], "m": [1, 2, 3, 4]})
    for where, kept in [({"gamma": {"ne": 0}}, ["xgboost"]), ({"gamma": {"ne": 5}}, ["xgboost", "xgboost"]),
                        ({"gamma": 0}, ["xgboost"]), ({"gamma": {"gt": 0}}, ["xgboost"]),
                        ({"library": {"ne": "xgboost"}}, ["lightgbm", "catboost"])]:
        h = Hypothesis.model_validate({"metric": "m", "sign": "positive", "where": where})
        assert filter_rows(table, h.conditions())["library"].tolist() == kept, where


def test_the_findings_table_says_its_intervals_are_not_adjusted_for_multiplicity():
    from types import SimpleNamespace as NS

    from gbreg.analysis.findings import findings_markdown

    cells = holdout(3, lambda r, a, lam: a + r)
    verdicts = list(judge(cells, [{"metric": "m", "trend": "increasing", "along": "reg_alpha"}], axes=AXES))
    prepared = NS(spec=NS(name="s", repeats=3, evaluation=NS(split="holdout")), dataset=NS(name="d", y=[0] * 10),
                  task="regression", metric="rmse")
    text = findings_markdown(prepared, pd.DataFrame({"library": ["xgboost"]}), cells, verdicts, [], [])
    assert "| effect (interval, not adjusted) |" in text
    assert "not adjusted for multiplicity; the verdict uses the Holm-adjusted p" in text
    assert "| 3 splits | 0.25 | 0.25 |" in text


def test_a_best_point_whose_units_agree_exactly_gets_the_exact_floor():
    """Every split the same surface (up to its level), interior best: the flat null had no noise and
    gave p = 2/2001; the exact sign-flip over 3 splits cannot go below 0.25, 6 splits reach 2/64."""
    def surface(r, a, lam):
        return r + (1.0 if (a in (1, 10) and lam in (1, 10)) else 2.0 + 0.001 * a)

    best = {"best": "m", "interior": AXES, "goal": "min"}
    three = judge(holdout(3, surface, lambdas=(0, 1, 10, 100)), [best], axes=AXES)[0]
    assert three.verdict == "inconclusive" and three.p_value == pytest.approx(0.25)
    assert ("the 3 splits agree exactly (a gap of +1 in every one), so there is no spread for a t-test"
            in three.reason and "cannot go below 2/2^3 = 0.25: p = 0.25" in three.reason), three.reason
    six = judge(holdout(6, surface, lambdas=(0, 1, 10, 100)), [best], axes=AXES)[0]
    assert six.verdict == "supported" and six.p_value == pytest.approx(2 / 2**6)
