"""gbreg.analysis.meta: combining per-data-set verdicts across a suite's data sets. Checked against R's metafor
on published examples (its numbers as stored in statsmodels' and metafor's own test suites), against
hand-computable cases, and for calibration (slow; benchmarks/meta_calibration.py prints the full table)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from scipy.stats import t, ttest_1samp

from gbreg.analysis.meta import (
    combined_verdict,
    contrast_data_sets,
    describe_contrast,
    meta_analyze,
    random_effects,
    standard_errors,
    with_verdicts,
)
from gbreg.spec.hypotheses import Hypothesis

# Kacker (2004), 9 measurements with known variances; metafor rma() output as stored in statsmodels'
# statsmodels/stats/tests/results/results_meta.py (exk1_metafor, exk1_dl_hksj).
KACKER_Y = [61.0, 61.4, 62.21, 62.3, 62.34, 62.6, 62.7, 62.84, 65.9]
KACKER_V = [0.2025, 1.2100, 0.0900, 0.2025, 0.3844, 0.5625, 0.0676, 0.0225, 1.8225]

# BCG vaccine trials (Colditz et al. 1994; metafor's dat.bcg): tpos, tneg, cpos, cneg -> log risk ratios.
BCG = [(4, 119, 11, 128), (6, 300, 29, 274), (3, 228, 11, 209), (62, 13536, 248, 12619), (33, 5036, 47, 5761),
       (180, 1361, 372, 1079), (8, 2537, 10, 619), (505, 87886, 499, 87892), (29, 7470, 45, 7232),
       (17, 1699, 65, 1600), (186, 50448, 141, 27197), (5, 2493, 3, 2338), (27, 16886, 29, 17825)]


def numbers(result) -> dict[str, float]:
    return {name: float(value[0]) for name, value in result.items()}


def test_paule_mandel_matches_metafor_on_kacker():
    pm = numbers(random_effects(KACKER_Y, KACKER_V, method="paule_mandel"))
    assert pm["tau2"] == pytest.approx(0.705395309224248, rel=1e-8)
    assert pm["estimate"] == pytest.approx(62.4076199113286, rel=1e-12)
    assert pm["q"] == pytest.approx(24.801897741835, rel=1e-9)
    assert pm["q_p"] == pytest.approx(0.00167935146372742, rel=1e-7)
    assert pm["i2"] == pytest.approx(0.837218626490482, rel=1e-8)


def test_dersimonian_laird_with_knapp_hartung_matches_metafor_on_kacker():
    """rma(y, v, method="DL", test="knha"): the HKSJ option reproduces metafor to 1e-9."""
    dl = numbers(random_effects(KACKER_Y, KACKER_V, method="dersimonian_laird", variance="hksj"))
    assert dl["tau2"] == pytest.approx(0.288049246973751, rel=1e-9)
    assert dl["estimate"] == pytest.approx(62.3901386044504, rel=1e-12)
    assert dl["se"] == pytest.approx(0.29477605699879, rel=1e-9)
    assert (dl["ci_low"], dl["ci_high"]) == pytest.approx((61.710383798052, 63.0698934108488), rel=1e-10)
    assert dl["p_value"] == pytest.approx(2.77938607433693e-16, rel=1e-6)
    assert dl["i2"] == pytest.approx(0.67744403741711, rel=1e-9)  # = (Q - df) / Q for the DL tau²
    assert dl["df"] == 8


def test_default_reml_with_cr2_matches_metafor_robust_clubsandwich_on_bcg():
    """metafor: rma(yi, vi) (REML) then robust(res, cluster=trial, clubSandwich=TRUE): variance 0.03229357,
    Satterthwaite df 11.04125, t -3.97616 (metafor's tests/testthat/test_misc_robust.r); tau² 0.3132,
    I² 92.22 %, Q(12) = 152.2330 (metafor's documented rma() output for dat.bcg)."""
    a, b, c, d = np.array(BCG, dtype=float).T
    y = np.log(a / (a + b)) - np.log(c / (c + d))
    v = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    r = numbers(random_effects(y, v))
    assert r["se"] ** 2 == pytest.approx(0.03229357, rel=1e-6)
    assert r["df"] == pytest.approx(11.04125, rel=1e-6)
    assert r["estimate"] / r["se"] == pytest.approx(-3.97616, rel=1e-6)
    assert r["estimate"] == pytest.approx(-0.7145, abs=5e-5)
    assert r["tau2"] == pytest.approx(0.3132, abs=5e-5)
    assert r["i2"] == pytest.approx(0.9222, abs=5e-5)
    assert r["q"] == pytest.approx(152.2330, abs=5e-4)
    half = t.ppf(0.975, r["df"]) * r["se"]
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((r["estimate"] - half, r["estimate"] + half))
    # prediction interval: estimate ± t_{k-2} sqrt(tau² + se²)
    spread = t.ppf(0.975, 11) * math.sqrt(r["tau2"] + r["se"] ** 2)
    assert (r["pi_low"], r["pi_high"]) == pytest.approx((r["estimate"] - spread, r["estimate"] + spread))


def test_equal_standard_errors_without_heterogeneity_give_the_mean_and_the_t_test():
    """Q = Σ (y - ȳ)² = 0.05 < k - 1 = 3: tau² = 0, the estimate is the plain mean 0.25, and CR2 with equal
    weights is the one-sample t-test over the four effects (se² = s² / k = 0.05 / 12, df 3)."""
    effects = [0.1, 0.2, 0.3, 0.4]
    r = numbers(random_effects(effects, [1.0] * 4))
    assert r["tau2"] == 0 and r["i2"] == 0
    assert r["estimate"] == pytest.approx(0.25)
    assert r["q"] == pytest.approx(0.05)
    assert r["se"] ** 2 == pytest.approx(0.05 / 12)
    assert r["df"] == pytest.approx(3)
    assert r["p_value"] == pytest.approx(ttest_1samp(effects, 0).pvalue)


def test_identical_effects_have_no_heterogeneity():
    r = numbers(random_effects([0.5, 0.5, 0.5, 0.5], [0.01, 0.04, 0.02, 0.09]))
    assert r["estimate"] == pytest.approx(0.5)
    assert (r["tau2"], r["i2"], r["q"]) == (0, 0, pytest.approx(0, abs=1e-20))
    assert r["q_p"] == pytest.approx(1.0)


def test_a_data_set_whose_units_all_agree_weighs_as_a_typical_one():
    """rho = -1 in every repeat gives a zero-width interval (se 0): it is kept, with the median of the
    other data sets' variances (here they are equal, so every data set weighs the same)."""
    rows = pd.DataFrame({"effect": [-1.0, -0.6, -0.8, -0.7], "ci_low": [-1.0, -0.9, -1.1, -1.0],
                         "ci_high": [-1.0, -0.3, -0.5, -0.4], "n_units": 4})
    combined = meta_analyze(rows).iloc[0]
    assert combined["k"] == 4 and np.isfinite([combined["estimate"], combined["se"], combined["df"]]).all()
    assert combined["estimate"] == pytest.approx(rows["effect"].mean())


def test_agreeing_data_sets_do_not_hide_the_others_disagreement():
    # A suite of 10 data sets (gap along reg_lambda): two had rho = -1 on every split, the others ran from
    # +0.17 to -0.95. The two used to take all the weight: 'supported, -1 (-1 to -1)', I² 0 %, though
    # Cochran's Q gave p = 5e-7.
    effects = [0.17, -0.22, -0.44, -0.83, -0.9, -0.93, -0.95, -0.95, -1.0, -1.0]
    half = [0.35, 0.4, 0.3, 0.25, 0.15, 0.1, 0.08, 0.08, 0.0, 0.0]
    rows = pd.DataFrame({"effect": effects, "ci_low": np.subtract(effects, half),
                         "ci_high": np.add(effects, half), "n_units": 3})
    combined = meta_analyze(rows).iloc[0]
    assert combined["tau2"] > 0.01 and combined["i2"] > 0.5
    assert combined["ci_high"] - combined["ci_low"] > 0.2
    assert -0.95 < combined["estimate"] < -0.5


def test_agreeing_units_rounded_differently_do_not_hide_the_heterogeneity():
    """Four data sets whose units all agree (zero-width intervals; one read back from a CSV 1e-16 wide):
    three at rho = 1, one at 0. The spread is between the data sets, so I² is 100 %, not 0."""
    rows = pd.DataFrame({"effect": [1.0, 1.0, 0.0, 1.0], "ci_low": [1.0, 1.0 - 1.1e-16, 0.0, 1.0],
                         "ci_high": [1.0, 1.0 + 1.1e-16, 0.0, 1.0], "n_units": 3})
    combined = meta_analyze(rows).iloc[0]
    assert combined["tau2"] == pytest.approx(0.25)
    assert combined["i2"] == pytest.approx(1.0)
    exact = meta_analyze(rows.assign(ci_low=rows["effect"], ci_high=rows["effect"])).iloc[0]
    assert (exact["estimate"], exact["i2"]) == (pytest.approx(combined["estimate"]), pytest.approx(1.0))


def test_standard_errors_come_from_the_interval_with_its_t_quantile():
    rows = pd.DataFrame({
        "effect": [0.5, 0.5, 0.5, 0.5, np.nan, 0.5, 0.5],
        "ci_low": [0.1, 0.1, 0.2, 0.1, 0.0, -np.inf, 0.1],
        "ci_high": [0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 0.9],
        "n_units": [4, 4, 4, np.nan, 4, 4, 4],
        "df": [np.nan, 7.5, np.nan, np.nan, np.nan, np.nan, np.nan],
        "alpha": [0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.10]})
    out = standard_errors(rows)
    assert out["se"][0] == pytest.approx(0.4 / t.ppf(0.975, 3))  # n_units - 1 = 3 df
    assert out["se"][1] == pytest.approx(0.4 / t.ppf(0.975, 7.5))  # a given df wins (sign: Satterthwaite)
    assert out["se"][2] == pytest.approx(0.35 / 1.959963984540054)  # asymmetric: half the width / z
    assert out["se"][3] == pytest.approx(0.4 / 1.959963984540054)  # no df: z
    assert out["se"][6] == pytest.approx(0.4 / t.ppf(0.95, 3))  # a 90 % interval
    assert list(out["se_from"]) == ["t", "t", "z", "z", "excluded", "excluded", "t"]
    assert list(out["usable"]) == [True, True, True, True, False, False, True]


def test_meta_analyze_groups_by_hypothesis_and_library_and_counts_excluded_rows():
    rng = np.random.default_rng(3)
    effects = rng.normal(-0.5, 0.2, 10)
    rows = pd.DataFrame({"hypothesis": "h", "library": ["xgboost"] * 6 + ["lightgbm"] * 4,
                         "data_set": [f"d{i}" for i in range(10)], "effect": effects,
                         "ci_low": effects - 0.3, "ci_high": effects + 0.3, "n_units": 4})
    rows.loc[1, "effect"] = np.nan
    rows.loc[7, "ci_high"] = np.inf
    combined = meta_analyze(rows).set_index("library")
    assert combined.loc["xgboost", ["k", "n_excluded"]].tolist() == [5, 1]
    assert combined.loc["lightgbm", ["k", "n_excluded"]].tolist() == [3, 1]
    keep = rows.drop(index=[1, 7])
    se = 0.3 / t.ppf(0.975, 3)
    expected = numbers(random_effects(keep.effect[keep.library == "xgboost"], [se**2] * 5))
    assert combined.loc["xgboost", "estimate"] == pytest.approx(expected["estimate"])
    assert combined.loc["xgboost", "se"] == pytest.approx(expected["se"])


def test_meta_analyze_says_which_columns_are_missing():
    with pytest.raises(ValueError, match="missing: ci_low, ci_high"):
        meta_analyze(pd.DataFrame({"effect": [0.1]}))


def combined_row(estimate: float, se: float, k: int, df: float | None = None) -> dict:
    return {"estimate": estimate, "se": se, "k": k, "df": k - 1 if df is None else df}


def test_combined_verdicts_follow_the_study_vocabulary():
    decreasing = Hypothesis(metric="n_leaves", trend="decreasing", along="reg_lambda")
    increasing = Hypothesis(metric="n_leaves", trend="increasing", along="reg_lambda")
    strong = combined_row(-0.6, 0.1, 8)  # t = -6 on 7 df
    assert combined_verdict(strong, decreasing)["verdict"] == "supported"
    assert combined_verdict(strong, increasing)["verdict"] == "contradicted"
    result = combined_verdict(strong, decreasing)
    assert result["p_value"] == pytest.approx(2 * t.sf(6, 7))
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((-0.6 - t.ppf(0.975, 7) * 0.1, -0.6 + t.ppf(0.975, 7) * 0.1))
    assert combined_verdict(combined_row(-0.1, 0.1, 8), decreasing)["verdict"] == "inconclusive"
    few = combined_verdict(combined_row(-0.6, 0.01, 2), decreasing)
    assert few["verdict"] == "inconclusive" and "at least 3" in few["reason"]
    # the Satterthwaite df of the row, not k - 1: t = -2.5 is significant on 9 df, not on 2
    assert combined_verdict(combined_row(-0.25, 0.1, 10), decreasing)["verdict"] == "supported"
    assert combined_verdict(combined_row(-0.25, 0.1, 10, df=2.0), decreasing)["verdict"] == "inconclusive"


def test_no_trend_is_an_equivalence_test_against_the_tolerance():
    none = Hypothesis(metric="n_leaves", trend="none", along="reg_lambda", tolerance=0.3)
    assert combined_verdict(combined_row(0.05, 0.05, 10), none)["verdict"] == "supported"  # CI inside ±0.3
    assert combined_verdict(combined_row(0.6, 0.05, 10), none)["verdict"] == "contradicted"  # CI above 0.3
    assert combined_verdict(combined_row(0.25, 0.05, 10), none)["verdict"] == "inconclusive"  # straddles 0.3
    by_keywords = combined_verdict(combined_row(0.2, 0.05, 10), kind="trend", direction="none", tolerance=0.01)
    assert by_keywords["verdict"] == "contradicted"


def test_sign_and_best_point_verdicts():
    negative = Hypothesis(metric="gap_rmse", sign="negative")
    best = Hypothesis(best="test_rmse", interior=["reg_alpha", "reg_lambda"])
    assert combined_verdict(combined_row(-0.4, 0.1, 6), negative)["verdict"] == "supported"
    assert combined_verdict(combined_row(0.4, 0.1, 6), negative)["verdict"] == "contradicted"
    assert combined_verdict(combined_row(0.4, 0.1, 6), best)["verdict"] == "supported"  # interior better
    assert combined_verdict(combined_row(-0.4, 0.1, 6), best)["verdict"] == "contradicted"
    assert combined_verdict(combined_row(-0.4, 0.1, 6), kind="sign", direction="positive")["verdict"] == "contradicted"


def test_with_verdicts_looks_up_each_rows_hypothesis():
    rows = pd.DataFrame({"hypothesis": ["down"] * 4 + ["flat"] * 4, "effect": [-0.9, -0.8, -0.85, -0.95, 0.0, 0.02, -0.01, 0.01],
                         "ci_low": [-1.0, -0.9, -0.95, -1.0, -0.1, -0.08, -0.11, -0.09],
                         "ci_high": [-0.8, -0.7, -0.75, -0.9, 0.1, 0.12, 0.09, 0.11], "n_units": 4})
    hypotheses = {"down": {"metric": "m", "trend": "decreasing", "along": "reg_lambda"},
                  "flat": {"metric": "m", "trend": "none", "along": "reg_lambda"}}
    judged = with_verdicts(meta_analyze(rows), hypotheses).set_index("hypothesis")
    assert judged.loc["down", "verdict"] == "supported"
    assert judged.loc["flat", "verdict"] == "supported"
    assert "TOST against ±0.3" in judged.loc["flat", "reason"]


def test_where_a_claim_holds_and_fails():
    rows = pd.DataFrame({"hypothesis": "L2 lowers the leaf count", "library": "xgboost",
                         "data_set": ["a", "b", "c", "d", "e", "f"],
                         "verdict": ["supported", "supported", "supported", "contradicted", "contradicted",
                                     "inconclusive"]})
    descriptors = pd.DataFrame({"data_set": ["a", "b", "c", "d", "e", "f"], "rows": [5000, 20000, 8000, 300, 500, 1000],
                                "features": [10, 8, 12, 40, 30, 20],
                                "task": ["regression", "regression", "binary", "binary", "binary", "regression"],
                                "noise": [np.nan, 0.1, np.nan, np.nan, np.nan, np.nan]})
    contrast = contrast_data_sets(rows, descriptors).set_index("outcome")
    assert contrast.loc["holds", "n"] == 3 and contrast.loc["fails", "data_sets"] == ["d", "e"]
    assert contrast.loc["holds", "rows"] == 8000 and contrast.loc["fails", "rows"] == 400
    assert contrast.loc["fails", "features"] == 35
    assert contrast.loc["holds", "task"] == {"regression": 2, "binary": 1}
    assert contrast.loc["holds", "noise"] == pytest.approx(0.1) and math.isnan(contrast.loc["fails", "noise"])
    text = describe_contrast(contrast_data_sets(rows, descriptors))
    assert text.startswith("**L2 lowers the leaf count · xgboost** holds on 3 of 6 data sets")
    assert "fails on 2: d, e (median rows 400, features 35; task binary 2)" in text
    assert "inconclusive on 1." in text
    assert "Median where it fails vs where it holds: rows 400 vs 8,000; features 35 vs 10." in text


@pytest.mark.slow
def test_combined_verdicts_keep_their_level_with_few_noisy_data_sets():
    """Null suites as benchmarks/meta_calibration.py draws them (3-6 units per data set, noisy standard
    errors), 4,000 per cell (Monte Carlo se 0.0034): the default (REML, CR2) says 'effect' at most ~5 %
    of the time for k = 4 and 15 with and without heterogeneity; HKSJ, trusting the noisy weights, is
    liberal where there is no heterogeneity (0.08-0.09 measured)."""
    spec = importlib.util.spec_from_file_location("meta_calibration", REPO / "benchmarks" / "meta_calibration.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.table(4000, [4, 15], ["reml_cr2"], seed=11)
    assert result["fpr"].between(0.025, 0.07).all(), result
    assert result["coverage"].between(0.93, 0.975).all(), result
    hksj = bench.table(4000, [8], ["reml_hksj"], seed=12).set_index("tau2")
    assert hksj.loc["none", "fpr"] > 0.065, hksj


def test_data_sets_with_fewer_than_three_units_are_not_pooled():
    # A suite of 2-split studies: each split agrees, so each data set's interval is zero wide. Such a data
    # set is inconclusive in its own study; pooled with a floored variance it used to make the combined
    # claim 'supported' at p = 0.
    two_splits = pd.DataFrame({"hypothesis": 1, "library": "xgboost", "data_set": ["a", "b", "c"],
                               "effect": -1.0, "ci_low": -1.0, "ci_high": -1.0, "n_units": 2})
    combined = with_verdicts(meta_analyze(two_splits), {1: {"metric": "leaf_abs_mean", "trend": "decreasing",
                                                            "along": "reg_lambda"}}).iloc[0]
    assert (combined["k"], combined["n_excluded"], combined["n_few_units"]) == (0, 3, 3)
    assert combined["verdict"] == "inconclusive"
    assert "3 data set(s) left out: fewer than 3 independent units" in combined["reason"]

    # Beside three data sets of 3 units with wide intervals, a 2-unit data set does not take the weight.
    mixed = pd.DataFrame({"hypothesis": 1, "library": "xgboost", "data_set": ["a", "b", "c", "d"],
                          "effect": [0.2, -0.1, 0.3, -1.0], "ci_low": [-0.5, -0.8, -0.4, -1.0],
                          "ci_high": [0.9, 0.6, 1.0, -1.0], "n_units": [3, 3, 3, 2]})
    row = meta_analyze(mixed).iloc[0]
    assert (row["k"], row["n_few_units"]) == (3, 1)
    assert row["estimate"] == pytest.approx(np.mean([0.2, -0.1, 0.3]), abs=1e-9)  # equal variances
    assert list(standard_errors(mixed)["se_from"]) == ["t", "t", "t", "few_units"]
