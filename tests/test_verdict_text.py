"""How verdicts print their numbers: a mean ρ's interval stays inside [-1, 1], one split has no interval
(not '+nan to +nan'), and a p-value of exactly 0 says why."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gbreg import judge
from gbreg.analysis.verdicts import effect_with_interval

TREND = {"metric": "m", "trend": "increasing", "along": "reg_alpha"}
AXES = ["reg_alpha", "reg_lambda"]


def rising(splits: int, noise: float, seed: int = 0) -> pd.DataFrame:
    """Per split, m rises along reg_alpha for each reg_lambda, with ``noise`` that can reorder neighbours."""
    rng = np.random.default_rng(seed)
    rows = [{"library": "xgboost", "model": "xgboost", "reg_alpha": a, "reg_lambda": b, "repeat": split, "fold": 0,
             "m": i + rng.normal(0, noise)}
            for split in range(splits) for b in (0.0, 1.0, 10.0) for i, a in enumerate((0.0, 0.1, 1.0, 10.0))]
    return pd.DataFrame(rows)


def test_one_split_has_no_interval_instead_of_nan():
    verdict = judge(rising(1, 0.1), [TREND], AXES)[0]
    assert verdict.verdict == "inconclusive"
    assert "nan" not in verdict.reason
    assert "(no interval from 1 split)" in verdict.reason
    assert effect_with_interval("trend", verdict.effect, verdict.ci_low, verdict.ci_high) == "1 (no interval)"


def test_a_mean_rho_interval_is_shown_inside_minus_one_to_one():
    # noise large enough that some splits reorder two neighbours: mean ρ just below 1, wide t-interval
    verdict = next(v for seed in range(40) for v in judge(rising(3, 0.6, seed), [TREND], AXES)
                   if v.ci_high > 1)
    assert verdict.ci_high > 1  # the test's own interval, as logged
    assert "to +1.00)" in verdict.reason
    shown = effect_with_interval("trend", verdict.effect, verdict.ci_low, verdict.ci_high)
    assert shown.endswith(" to 1)")
    # other kinds are in the metric's own units: nothing is clipped
    assert effect_with_interval("best", 0.5, -0.25, 1.5) == "0.5 (-0.25 to 1.5)"


def test_units_that_agree_exactly_get_the_exact_p_and_say_why():
    verdict = judge(rising(3, 0.0), [TREND], AXES)[0]
    # every split: ρ = +1 exactly. No spread, so no t-test: the exact sign-flip's 2/2^3, not p = 0
    assert verdict.verdict == "inconclusive" and verdict.p_value == 0.25
    assert verdict.reason.endswith("the 3 splits agree exactly (mean ρ +1.00 in every one), so there is no spread "
                                   "for a t-test (its normal model does not fit); the exact sign-flip test over 3 "
                                   "splits cannot go below 2/2^3 = 0.25: p = 0.25; more splits decide "
                                   "(Holm-adjusted p = 0.25)")


def test_a_trend_along_an_axis_the_filtered_library_lacks_is_inconclusive_not_a_crash():
    # CatBoost has no reg_alpha (NaN); judge() used to fail in numpy on the empty selection
    table = rising(3, 0.1)
    catboost = table[table["reg_alpha"] == 0].assign(library="catboost", model="catboost", reg_alpha=np.nan)
    cells = pd.concat([table, catboost], ignore_index=True)
    (verdict,) = judge(cells, [TREND | {"where": {"model": "catboost"}}], AXES)
    assert verdict.verdict == "inconclusive"
    assert verdict.reason == "no row the hypothesis selects has a value of reg_alpha with a value of m"


def test_a_suite_template_best_point_does_not_claim_min_for_every_data_set():
    from gbreg.spec.hypotheses import Hypothesis

    template = Hypothesis.model_validate({"best": "test_{metric}", "interior": ["reg_lambda"]})
    assert template.describe() == "the best of test_{metric} is inside the grid along reg_lambda"
    assert Hypothesis.model_validate({"best": "test_auc", "interior": ["reg_lambda"]}).describe().startswith(
        "the max of test_auc")


def test_forest_plots_draw_a_mean_rho_interval_inside_minus_one_to_one():
    from gbreg.report.forest import draw_forest

    rows = pd.DataFrame({"dataset": ["a", "b"], "library": "xgboost", "effect": [0.94, -0.99],
                         "ci_low": [0.71, -1.12], "ci_high": [1.18, -0.86], "verdict": "supported"})
    combined = pd.DataFrame({"dataset": ["combined"], "library": ["xgboost"], "effect": [0.0], "ci_low": [-1.3],
                             "ci_high": [1.3], "verdict": ["inconclusive"]})
    axes = draw_forest(rows, combined, "H1", "trend").axes[0]
    xs = np.concatenate([line.get_xdata() for line in axes.get_lines()] +
                        [patch.get_xy()[:, 0] for patch in axes.patches])
    assert xs.min() == -1.0 and xs.max() == 1.0
