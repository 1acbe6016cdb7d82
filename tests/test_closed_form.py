"""The analysis pinned to theory: leaf values of a stump and penalized linear fits on an orthogonal design.

Boosting (XGBoost and LightGBM documentation; Chen & Guestrin 2016, eq. 5 with the L1 term): a leaf whose
rows have gradient sum G and hessian sum H at the starting score gets the value
    -sign(G) * max(|G| - alpha, 0) / (H + lambda) * learning_rate.
Linear (Goodfellow et al., Deep Learning, eqs. 7.13 and 7.23): with a diagonal Hessian H = X^T X, ridge
scales each least-squares weight by H_ii / (H_ii + alpha) and lasso soft-thresholds it by alpha / H_ii.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gbreg.models.boosters import ADAPTERS
from gbreg.models.boosters.adapter import FoldData
from gbreg.models.boosters.lgbm import starting_score

# two groups of rows that a stump separates; the second group's targets are far larger, so a large
# alpha zeroes the first leaf and keeps the second (the split's gain stays positive)
FEATURE = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
REGRESSION_Y = np.array([1.0, 2.0, 0.5, 1.5, 10.0, 12.0, 9.0, 11.0])
BINARY_Y = np.array([0, 0, 0, 1, 1, 1, 1, 1])


def closed_form_leaf(g: np.ndarray, h: np.ndarray, alpha: float, lam: float, learning_rate: float) -> float:
    G, H = g.sum(), h.sum()
    return float(-np.sign(G) * max(abs(G) - alpha, 0.0) / (H + lam) * learning_rate)


def gradients(task: str, y: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Squared error (1/2 (f - y)^2) and logistic loss at a constant margin."""
    if task == "regression":
        return margin - y, np.ones_like(y)
    p = 1.0 / (1.0 + np.exp(-margin))
    return p - y, np.full_like(y, p * (1 - p), dtype="float64")


def stump_params(library: str, alpha: float, lam: float, learning_rate: float, task: str) -> dict:
    common = {"n_estimators": 1, "learning_rate": learning_rate, "max_depth": 1, "reg_alpha": alpha,
              "reg_lambda": lam, "min_child_weight": 0.0}
    if library == "xgboost":
        # base_score is a prediction: 0 for squared error, probability 0.5 (margin 0) for logistic
        return {**common, "base_score": 0.0 if task == "regression" else 0.5}
    return {**common, "num_leaves": 2, "min_data_in_leaf": 1, "min_data_in_bin": 1}


def starting_margin(library: str, task: str, y: np.ndarray) -> float:
    # gbreg's LightGBM adapter passes LightGBM's own starting score as init_score (boost_from_average off)
    return 0.0 if library == "xgboost" else float(starting_score(y, task, 2)[0])


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("task", ["regression", "binary"])
@pytest.mark.parametrize("alpha, lam, learning_rate", [(0.0, 0.0, 1.0), (0.0, 5.0, 1.0), (1.5, 0.0, 1.0),
                                                       (1.5, 2.0, 0.3), (6.0, 1.0, 1.0)])
def test_stump_leaves_equal_the_closed_form(library, task, alpha, lam, learning_rate):
    y = REGRESSION_Y if task == "regression" else BINARY_Y
    if task == "binary" and alpha > 1:
        alpha = alpha / 6  # logistic gradients are at most 1 per row: keep the penalty comparable
    X = pd.DataFrame({"x": FEATURE})
    fold = FoldData(X, y, X, y, task, 0 if task == "regression" else 2)
    adapter = ADAPTERS[library]
    params = stump_params(library, alpha, lam, learning_rate, task)
    result = adapter.train(adapter.prepare(fold, params), fold, params, "rmse" if task == "regression" else "logloss",
                           seed=0, threads=1)
    leaves = pd.DataFrame(result.leaves)
    assert len(leaves) == 2, "the stump must split (gain > 0 for these data)"
    g, h = gradients(task, y.astype("float64"), starting_margin(library, task, y))
    left, right = FEATURE == 0.0, FEATURE == 1.0
    expected = sorted([closed_form_leaf(g[left], h[left], alpha, lam, learning_rate),
                       closed_form_leaf(g[right], h[right], alpha, lam, learning_rate)])
    # float32 leaf storage (XGBoost) and LightGBM's 1e-15 hessian epsilon: agree to ~1e-6 relative
    np.testing.assert_allclose(sorted(leaves["value"]), expected, rtol=2e-6, atol=1e-7)


def test_a_large_alpha_snaps_the_small_leaf_to_exactly_zero():
    """Soft-thresholding: |G| below alpha gives a leaf of exactly 0 (not merely small).

    XGBoost only: gbreg starts LightGBM at the mean target, where a stump's two gradient sums are always
    opposite (G_left = -G_right), so one alpha zeroes both leaves or neither.
    """
    X = pd.DataFrame({"x": FEATURE})
    fold = FoldData(X, REGRESSION_Y, X, REGRESSION_Y, "regression", 0)
    adapter = ADAPTERS["xgboost"]
    params = stump_params("xgboost", 6.0, 1.0, 1.0, "regression")  # |G_left| = 5 < 6 < |G_right| = 42
    result = adapter.train(adapter.prepare(fold, params), fold, params, "rmse", seed=0, threads=1)
    values = np.sort(np.asarray(result.leaves["value"]))
    assert len(values) == 2 and values[0] == 0.0
    assert values[1] == pytest.approx((42.0 - 6.0) / (4 + 1.0), rel=1e-6)


# ----------------------------------------------------------------------------------------------------
# linear models on an orthogonal design


@pytest.fixture
def orthogonal_design():
    rng = np.random.default_rng(7)
    n, p = 60, 6
    q, _ = np.linalg.qr(rng.normal(size=(n, p)))
    column_norms = np.array([1.0, 2.0, 0.5, 3.0, 1.0, 1.5])  # X^T X = diag(norms^2): Goodfellow's diagonal H
    X = q * column_norms
    w_true = np.array([3.0, -0.2, 1.0, 0.05, -2.0, 0.0])
    y = X @ w_true + rng.normal(scale=0.3, size=n)
    H = np.diag(X.T @ X)
    w_ols = (X.T @ y) / H
    return X, y, H, w_ols


@pytest.mark.parametrize("alpha", [0.01, 0.5, 2.0, 20.0])
def test_ridge_on_an_orthogonal_design_scales_each_weight(orthogonal_design, alpha):
    """Goodfellow eq. 7.13: w_i = H_ii / (H_ii + alpha) * w*_i (sklearn Ridge: ||y - Xw||^2 + alpha ||w||^2)."""
    from sklearn.linear_model import Ridge

    X, y, H, w_ols = orthogonal_design
    w = Ridge(alpha=alpha, fit_intercept=False, solver="cholesky").fit(X, y).coef_
    np.testing.assert_allclose(w, H / (H + alpha) * w_ols, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.03, 0.2])
def test_lasso_on_an_orthogonal_design_soft_thresholds_each_weight(orthogonal_design, alpha):
    """Goodfellow eq. 7.23 with sklearn's 1/(2n) loss scaling: w_i = sign(w*_i) max(|w*_i| - n alpha / H_ii, 0)."""
    from sklearn.linear_model import Lasso

    X, y, H, w_ols = orthogonal_design
    n = len(y)
    w = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X, y).coef_
    expected = np.sign(w_ols) * np.maximum(np.abs(w_ols) - n * alpha / H, 0.0)
    np.testing.assert_allclose(w, expected, rtol=1e-8, atol=1e-10)
    assert np.array_equal(w == 0.0, expected == 0.0)  # the zeros are exact, where theory puts them
    if alpha >= 0.03:
        assert np.sum(w == 0.0) >= 1
