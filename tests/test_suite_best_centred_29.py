"""A suite combines a best-point claim ({best: M, interior: [...]}) across data sets on a centred scale.

The per-data-set effect, best interior minus best edge cell, is below 0 on a flat surface (the best of 14
edge cells beats the best of 6 interior ones by luck). Combined raw (over its standard error, as before),
flat suites of 20 data sets came out "contradicted" about half the time (52 % of 60 in the review's
simulation). Each study now carries the statistic's mean and SD on flat surfaces with its own noise
(``null_mean``, ``null_sd``), and the suite combines (effect - null_mean) / null_sd.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gbreg.analysis.best_point_inference import best_evidence, best_evidence_exact
from gbreg.suite.aggregate import combine, standardized, suite_results
from gbreg.suite.verdict_rows import dataset_verdicts

ALPHAS, LAMBDAS = [0, 0.1, 1, 10, 100], [0, 1, 10, 100]  # the shipped suite's grid
AXES = ["reg_alpha", "reg_lambda"]
BEST = {"best": "test_rmse", "interior": AXES}


def study_tables(rng, bowl: float = 0.0, repeats: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One library on the 5 x 4 grid, ``repeats`` holdout splits: a level per split, cell noise, and
    (``bowl`` > 0) a test RMSE lowest in the middle of the grid. Returns (trials, splits) as a study has them."""
    rows = []
    for repeat in range(repeats):
        shift = rng.normal()
        for i, alpha in enumerate(ALPHAS):
            for j, lam in enumerate(LAMBDAS):
                curve = bowl * ((i - 2) ** 2 + (j - 1.5) ** 2)
                rows.append({"library": "xgboost", "kind": "booster", "model": "xgboost", "reg_alpha": alpha,
                             "reg_lambda": lam, "repeat": repeat, "fold": 0,
                             "test_rmse": 10 + shift + curve + 0.3 * rng.normal()})
    splits = pd.DataFrame(rows)
    trials = splits.groupby(["library", "kind", "model", *AXES], as_index=False)["test_rmse"].mean()
    return trials, splits


def suite_rows(seed: int, k: int = 20, bowl: float = 0.0) -> pd.DataFrame:
    """The per-data-set rows of a suite of ``k`` data sets, through the suite's own per-data-set code."""
    rng = np.random.default_rng(seed)
    frames = [dataset_verdicts(f"d{d}", [BEST], [1], *study_tables(rng, bowl), AXES) for d in range(k)]
    return pd.concat(frames, ignore_index=True)


def test_flat_suites_are_not_contradicted_and_their_combined_estimate_is_centred():
    estimates, verdicts, raw = [], [], []
    for seed in range(6):
        rows = suite_rows(seed)
        assert len(rows) == 20 and rows["null_sd"].gt(0).all() and rows["null_mean"].mean() < 0
        raw.append(rows["effect"].mean())
        row = combine(rows, [BEST]).iloc[0]
        assert row["k"] == 20 and row["scale"] == "centred"
        se = (row["ci_high"] - row["ci_low"]) / (2 * 2.09)  # t quantile at about 19 df
        estimates.append(row["effect"] / se)
        verdicts.append(row["verdict"])
    # the raw differences lean below 0 by selection alone (a half of a cell mean's standard error, 0.15)
    assert np.mean(raw) < -0.05
    # combined centred: no flat suite contradicted (raw, 3 of these 6 were), the estimate near 0 in its SEs
    assert verdicts.count("contradicted") == 0, verdicts
    assert abs(np.mean(estimates)) < 1.0, estimates


def test_a_real_interior_optimum_is_still_supported_across_data_sets():
    rows = suite_rows(100, k=8, bowl=0.08)
    row = combine(rows, [BEST]).iloc[0]
    assert row["verdict"] == "supported" and row["effect"] > 0


def test_the_null_mean_and_sd_travel_from_the_study_to_the_suite_table():
    rows = suite_rows(7, k=4)
    assert {"null_mean", "null_sd"} <= set(rows.columns)
    combined = combine(rows, [BEST])
    table = suite_results(rows, combined)
    per_data_set = table[table["dataset"] != "combined"]
    assert np.allclose(per_data_set["null_mean"].to_numpy(float), rows["null_mean"].to_numpy(float))
    # the forest plot and the combination read the same centred values
    scaled, scale = standardized(rows, combined_hypothesis())
    expected = (rows["effect"] - rows["null_mean"]) / rows["null_sd"]
    assert scale == "centred" and np.allclose(scaled["effect"], expected)


def combined_hypothesis():
    from gbreg.spec.hypotheses import Hypothesis

    return Hypothesis.model_validate(BEST)


def test_rows_without_the_null_numbers_are_left_out_rather_than_combined_raw():
    rows = suite_rows(8, k=5)
    rows.loc[rows.index[:3], ["null_mean", "null_sd"]] = np.nan
    row = combine(rows, [BEST]).iloc[0]
    assert row["k"] == 2 and row["verdict"] == "inconclusive"


@pytest.mark.parametrize("units", [3, 4, 6])
def test_both_tests_centre_on_the_same_sign_flip_null(units):
    """The multiplier test (the default) reports the sign flips' mean and SD, as the exact test: its own
    null, shrunk towards independent cells, sat off-centre when the splits tilt the surface differently."""
    rng = np.random.default_rng(units)
    values = rng.normal(size=(5, 1, 16, units))
    edge = np.ones(16, dtype=bool)
    edge[[5, 6, 9, 10]] = False  # 4 x 4 grid
    multiplier, exact = best_evidence(values, edge, False, 0.05), best_evidence_exact(values, edge, False, 0.05)
    assert np.allclose(multiplier["null_mean"], exact["null_mean"])
    assert np.allclose(multiplier["null_sd"], exact["null_sd"])
    assert exact["null_mean"].mean() < 0 and (exact["null_sd"] > 0).all()


def test_split_specific_tilts_leave_the_centred_effect_near_zero():
    """Flat surfaces whose splits each tilt it (slopes along both axes, sd 3/4 per grid step): the raw
    difference sits far below 0; centred by the sign flips it does not (the review's structured null)."""
    rng = np.random.default_rng(11)
    n, units = 400, 4
    ga, gl = np.meshgrid(np.arange(4) - 1.5, np.arange(4) - 1.5, indexing="ij")
    ga, gl = ga.ravel(), gl.ravel()
    edge = (np.abs(ga) == 1.5) | (np.abs(gl) == 1.5)
    slopes = rng.normal(size=(2, n, 1, 1, units)) * 0.75
    values = (slopes[0] * ga[None, None, :, None] + slopes[1] * gl[None, None, :, None]
              + rng.normal(size=(n, 1, 16, units)))
    evidence = best_evidence(values, edge, False, 0.05)
    centred = (evidence["effect"] - evidence["null_mean"]) / evidence["null_sd"]
    assert evidence["effect"].mean() < -0.5
    assert abs(centred.mean()) < 3 * centred.std() / np.sqrt(n) + 0.1
