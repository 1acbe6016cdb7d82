"""Leaf-value distribution statistics, the histogram, and shrinkage against the unregularized trial."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from gbreg.analysis.shrinkage import shrinkage_table
from gbreg.models.leaf_distribution import (
    DISTRIBUTION_STAT_NAMES,
    leaf_histogram_png,
    value_distribution_stats,
)


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


def test_fits_agree_with_scipy_maximum_likelihood(rng):
    """Independent check: scipy's MLE fits and log-densities give the same scales and log-likelihoods."""
    from scipy import stats as st

    x = rng.standard_t(df=5, size=4000) * 0.7 + 0.2
    got = value_distribution_stats(x)
    loc, scale = st.laplace.fit(x)
    assert got["laplace_loc"] == pytest.approx(loc, abs=1e-9)
    assert got["laplace_scale"] == pytest.approx(scale, rel=1e-9)
    assert got["laplace_loglik"] == pytest.approx(st.laplace.logpdf(x, loc, scale).mean(), rel=1e-9)
    mu, sigma = st.norm.fit(x)
    assert got["gaussian_scale"] == pytest.approx(sigma, rel=1e-9)
    assert got["gaussian_loglik"] == pytest.approx(st.norm.logpdf(x, mu, sigma).mean(), rel=1e-9)
    assert got["excess_kurtosis"] == pytest.approx(st.kurtosis(x, fisher=True, bias=True), rel=1e-9)
    assert got["laplace_loglik_minus_gaussian"] == pytest.approx(got["laplace_loglik"] - got["gaussian_loglik"])


@pytest.mark.parametrize("family, winner, kurtosis", [("laplace", 1.0, 3.0), ("normal", 0.0, 0.0)])
def test_the_true_family_wins(rng, family, winner, kurtosis):
    x = getattr(rng, family)(0.0, 1.5, size=50_000)
    got = value_distribution_stats(x)
    assert got["laplace_wins"] == winner
    assert got["excess_kurtosis"] == pytest.approx(kurtosis, abs=0.25)
    scale = got["laplace_scale"] if family == "laplace" else got["gaussian_scale"]
    assert scale == pytest.approx(1.5, rel=0.03)


def test_exact_zeros_are_a_separate_mass_not_part_of_the_fit(rng):
    x = rng.normal(0, 1, size=900)
    with_zeros = np.concatenate([x, np.zeros(300)])
    got, reference = value_distribution_stats(with_zeros), value_distribution_stats(x)
    assert got["zero_mass"] == pytest.approx(0.25)
    assert got["n_nonzero_values"] == 900
    for name in ("laplace_scale", "gaussian_scale", "laplace_loglik", "gaussian_loglik", "excess_kurtosis"):
        assert got[name] == pytest.approx(reference[name], rel=1e-12)
    # the |value| quantiles count the zeros: a quarter of zeros pulls the median down
    assert got["abs_q50"] < reference["abs_q50"]


@pytest.mark.parametrize("values", [[], [0.0, 0.0], [0.0, 3.0], [2.0, 2.0, 2.0]])
def test_degenerate_inputs_give_nan_fits_not_errors(values):
    got = value_distribution_stats(np.array(values))
    assert set(got) == set(DISTRIBUTION_STAT_NAMES)
    assert np.isnan(got["laplace_scale"]) and np.isnan(got["gaussian_loglik"])
    if values:
        assert got["zero_mass"] == pytest.approx(np.mean(np.array(values) == 0))


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_l1_on_real_boosters_puts_mass_at_zero(library):
    """On real trees the zero mass is the tree statistics' zero_leaf_fraction, and grows with reg_alpha."""
    from sklearn.datasets import load_diabetes

    from gbreg.models.boosters import ADAPTERS
    from gbreg.models.boosters.adapter import FoldData
    from gbreg.spec.params import resolve_params

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    fold = FoldData(X, y.to_numpy(), X, y.to_numpy(), "regression", 0)
    adapter = ADAPTERS[library]
    zero_mass = []
    for alpha in (0.0, 50.0, 500.0):
        params = resolve_params(library, {"n_estimators": 20, "max_depth": 3, "reg_alpha": alpha, "reg_lambda": 1.0})
        result = adapter.train(adapter.prepare(fold, params), fold, params, "rmse", seed=0, threads=1)
        got = value_distribution_stats(result.leaves["value"])
        assert got["zero_mass"] == pytest.approx(result.stats["zero_leaf_fraction"])
        zero_mass.append(got["zero_mass"])
    assert zero_mass[0] == 0.0 and zero_mass[1] < zero_mass[2] and zero_mass[2] > 0.1


def test_histograms_drawn_on_the_reused_figure_equal_fresh_ones(rng):
    """A worker reuses one figure for every trial's histogram: the PNG must be byte-for-byte the one a
    new figure gives, whatever was drawn before (other scales, no nonzero values at all)."""
    import gbreg.models.leaf_distribution as leaf_analysis

    cases = [rng.laplace(scale=0.01, size=4000), np.zeros(6), rng.normal(loc=50, scale=3, size=300),
             np.r_[np.zeros(40), rng.laplace(size=60)], np.array([2.5])]
    reused = [leaf_histogram_png(values, f"case {i}") for i, values in enumerate(cases)]
    fresh = []
    for i, values in enumerate(cases):
        leaf_analysis._HISTOGRAM_FIGURES.__dict__.clear()  # forget this thread's figure
        fresh.append(leaf_histogram_png(values, f"case {i}"))
    assert reused == fresh
    assert len(set(fresh)) == len(cases)


def test_histogram_is_a_png_of_the_requested_size(rng):
    import matplotlib.image

    values = np.concatenate([rng.laplace(0, 1, 500), np.zeros(100)])
    png = leaf_histogram_png(values, "xgboost α=1 λ=10")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (340, 500)
    assert image[..., :3].std() > 0.05  # something was drawn
    assert leaf_histogram_png(np.zeros(5), "all zero")[:4] == b"\x89PNG"  # no fit to draw: still a figure


def _results(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["run_id", "kind", "model", "max_depth", "reg_alpha", "reg_lambda",
                                       "leaf_abs_mean", "abs_q50", "abs_q90"])


def test_shrinkage_is_relative_to_the_same_model_at_zero_penalties_with_other_axes_equal():
    results = _results([
        ("a", "booster", "xgboost", 3, 0.0, 0.0, 2.0, 1.0, 4.0),
        ("b", "booster", "xgboost", 3, 0.0, 10.0, 1.0, 0.5, 2.0),  # proportional: q50 and q90 ratios equal
        ("c", "booster", "xgboost", 3, 10.0, 0.0, 1.5, 0.25, 3.0),  # subtractive: the median falls first
        ("d", "booster", "xgboost", 6, 0.0, 0.0, 4.0, 2.0, 8.0),
        ("e", "booster", "xgboost", 6, 0.0, 10.0, 3.0, 1.0, 6.0),
        ("f", "booster", "lightgbm", 3, 0.0, 10.0, 3.0, 1.0, 6.0),  # no unregularized lightgbm trial
    ])
    table, missing = shrinkage_table(results, ["max_depth"])
    assert missing == ["lightgbm"]
    assert table.loc[0, "leaf_shrinkage"] == 1.0
    assert table.loc[1, ["leaf_shrinkage", "leaf_shrinkage_q50", "leaf_shrinkage_q90"]].tolist() == [0.5, 0.5, 0.5]
    assert table.loc[1, "leaf_shrinkage_q90_minus_q50"] == 0.0
    assert table.loc[2, "leaf_shrinkage_q50"] == 0.25 and table.loc[2, "leaf_shrinkage_q90"] == 0.75
    assert table.loc[4, "leaf_shrinkage"] == 0.75  # against the max_depth=6 reference, not max_depth=3
    assert table.loc[5].isna().all()
    assert table["coef_shrinkage"].isna().all()


def test_linear_counterparts_without_a_zero_penalty_point_are_compared_with_ols():
    results = pd.DataFrame([
        ("o", "linear", "ols", np.nan, 0.0, 0.0, 10.0, 1.0, 4.0),
        ("l", "linear", "lasso", np.nan, 1.0, 0.0, 6.0, 0.5, 3.0),
        ("r", "linear", "ridge", np.nan, 0.0, 10.0, 5.0, 0.5, 2.0),
    ], columns=["run_id", "kind", "model", "max_depth", "reg_alpha", "reg_lambda", "coef_l1", "abs_q50", "abs_q90"])
    table, missing = shrinkage_table(results, ["max_depth"])
    assert missing == []
    assert table["coef_shrinkage"].tolist() == [1.0, 0.6, 0.5]
    assert table.loc[1, "coef_shrinkage_q90_minus_q50"] == pytest.approx(0.75 - 0.5)
    assert table["leaf_shrinkage"].isna().all()
