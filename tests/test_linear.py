"""Linear counterparts: the penalty mapping against a direct minimization of the booster-style objective,
the preprocessing, the coefficient statistics, and which counterpart runs at which grid point."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import small_spec
from scipy.optimize import minimize
from scipy.special import log_softmax, logsumexp

from gbreg.errors import SpecError
from gbreg.models.boosters.adapter import FoldData
from gbreg.models.linear import fit_counterpart, sklearn_settings
from gbreg.plan import linear_trials, make_plan, penalty_points
from gbreg.spec.validation import validate_spec

# ----------------------------------------------------------------------------------------------------
# direct minimization of  Σ loss(y, Xw + b) + α‖w‖₁ + ½λ‖w‖²  (b unpenalized) with scipy:
# w = u − v with u, v ≥ 0 makes the L1 term linear, so L-BFGS-B solves a smooth bound-constrained problem.


def _standardized(X: np.ndarray) -> np.ndarray:
    """What the counterpart's pipeline feeds the model: StandardScaler (population std)."""
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _direct(loss_and_grad, n_coef: int, n_intercepts: int, alpha: float, lam: float):
    def objective(theta):
        u, v, b = theta[:n_coef], theta[n_coef:2 * n_coef], theta[2 * n_coef:]
        w = u - v
        loss, grad_w, grad_b = loss_and_grad(w, b)
        value = loss + alpha * np.sum(u + v) + 0.5 * lam * w @ w
        g = grad_w + lam * w
        return value, np.concatenate([g + alpha, -g + alpha, grad_b])

    bounds = [(0, None)] * (2 * n_coef) + [(None, None)] * n_intercepts
    result = minimize(objective, np.zeros(2 * n_coef + n_intercepts), jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"ftol": 1e-16, "gtol": 1e-11, "maxiter": 200_000, "maxfun": 200_000})
    theta = result.x
    return theta[:n_coef] - theta[n_coef:2 * n_coef], theta[2 * n_coef:], result.fun


def direct_least_squares(X, y, alpha, lam):
    def loss_and_grad(w, b):
        residual = X @ w + b[0] - y
        return 0.5 * residual @ residual, X.T @ residual, np.array([residual.sum()])

    return _direct(loss_and_grad, X.shape[1], 1, alpha, lam)


def direct_logistic(X, y, alpha, lam):
    def loss_and_grad(w, b):
        z = X @ w + b[0]
        p = 1.0 / (1.0 + np.exp(-z))
        return np.sum(np.logaddexp(0.0, z) - y * z), X.T @ (p - y), np.array([np.sum(p - y)])

    return _direct(loss_and_grad, X.shape[1], 1, alpha, lam)


def direct_softmax(X, y, n_classes, alpha, lam):
    p = X.shape[1]
    onehot = np.eye(n_classes)[y]

    def loss_and_grad(w, b):
        W = w.reshape(n_classes, p)
        Z = X @ W.T + b
        P = np.exp(Z - logsumexp(Z, axis=1, keepdims=True))
        return -np.sum(log_softmax(Z, axis=1) * onehot), ((P - onehot).T @ X).ravel(), (P - onehot).sum(axis=0)

    return _direct(loss_and_grad, n_classes * p, n_classes, alpha, lam)


def direct_squared_hinge(X, y, alpha, lam):
    sign = 2.0 * y - 1.0

    def loss_and_grad(w, b):
        margin = np.maximum(0.0, 1.0 - sign * (X @ w + b[0]))
        return margin @ margin, X.T @ (-2.0 * margin * sign), np.array([np.sum(-2.0 * margin * sign)])

    return _direct(loss_and_grad, X.shape[1], 1, alpha, lam)


def _fold(X: np.ndarray, y: np.ndarray, task: str, n_classes: int = 0) -> FoldData:
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    return FoldData(frame, y, frame.iloc[:20], y[:20], task, n_classes)


def _coef(result, n_classes: int = 1) -> np.ndarray:
    table = result.coefficients.sort_values(["klass"], kind="stable")
    return table["coef"].to_numpy().reshape(n_classes, -1).ravel()


# ----------------------------------------------------------------------------------------------------
# the mapping, numerically


@pytest.fixture(scope="module")
def regression_data():
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=200, n_features=8, n_informative=3, noise=5.0, random_state=1)
    return X * np.array([1, 10, 0.1, 3, 1, 50, 2, 0.5]) + 4.0, y  # unequal scales: the pipeline standardizes


@pytest.mark.parametrize(("model", "alpha", "lam"), [
    ("ols", 0.0, 0.0), ("lasso", 2000.0, 0.0), ("ridge", 0.0, 300.0), ("elasticnet", 2000.0, 300.0)])
def test_least_squares_counterparts_minimize_the_booster_objective(regression_data, model, alpha, lam):
    X, y = regression_data
    result = fit_counterpart(model, {"reg_alpha": alpha, "reg_lambda": lam}, _fold(X, y, "regression"), "rmse", 0)
    w_direct, _, objective = direct_least_squares(_standardized(X), y, alpha, lam)
    w_sklearn = _coef(result)
    scale = np.max(np.abs(w_direct))
    np.testing.assert_allclose(w_sklearn, w_direct, rtol=1e-4, atol=1e-4 * scale)
    # the fitted intercept too: the training loss (½ Σ r² = ½ n rmse²) plus the penalty is the optimum
    n = len(y)
    value = 0.5 * n * result.scores["train_rmse"] ** 2 + alpha * np.abs(w_sklearn).sum() + 0.5 * lam * w_sklearn @ w_sklearn
    assert value == pytest.approx(objective, rel=1e-6)
    if model in ("lasso", "elasticnet"):  # the L1 term is doing something: some, not all, coefficients are 0
        assert 0 < result.stats["n_nonzero_coef"] < X.shape[1]
        assert np.array_equal(w_sklearn == 0, np.abs(w_direct) < 1e-6 * scale)


def test_sklearn_settings_follow_the_derivation():
    assert sklearn_settings("lasso", 10.0, 0.0, 500) == {"estimator": "Lasso", "sklearn_alpha": 0.02}
    assert sklearn_settings("ridge", 0.0, 10.0, 500) == {"estimator": "Ridge", "sklearn_alpha": 10.0}
    assert sklearn_settings("elasticnet", 30.0, 10.0, 400) == {
        "estimator": "ElasticNet", "sklearn_alpha": 0.1, "l1_ratio": 0.75}
    assert sklearn_settings("logistic_elasticnet", 3.0, 1.0, 400) == {
        "estimator": "LogisticRegression", "C": 0.25, "l1_ratio": 0.75}
    assert sklearn_settings("logistic_l2", 0.0, 0.0, 400)["C"] == np.inf
    assert sklearn_settings("linear_svm_l1", 4.0, 0.0, 400)["C"] == 0.25
    with pytest.raises(ValueError, match="not the counterpart"):
        sklearn_settings("lasso", 1.0, 1.0, 100)


@pytest.fixture(scope="module")
def binary_data():
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=300, n_features=6, n_informative=3, n_redundant=0, flip_y=0.1,
                               random_state=3)
    return X * np.array([1, 5, 0.2, 1, 20, 1]), y.astype("int64")


@pytest.mark.parametrize(("model", "alpha", "lam"), [
    ("logistic_l2", 0.0, 0.0), ("logistic_l1", 8.0, 0.0), ("logistic_l2", 0.0, 5.0),
    ("logistic_elasticnet", 8.0, 5.0)])
def test_logistic_counterparts_minimize_the_booster_objective(binary_data, model, alpha, lam):
    X, y = binary_data
    result = fit_counterpart(model, {"reg_alpha": alpha, "reg_lambda": lam}, _fold(X, y, "binary", 2), "logloss", 0)
    w_direct, _, objective = direct_logistic(_standardized(X), y, alpha, lam)
    w_sklearn = _coef(result)
    scale = np.max(np.abs(w_direct))
    # pure L1 runs on liblinear, which penalizes the intercept by α|b|/1e4: still within 1e-4
    np.testing.assert_allclose(w_sklearn, w_direct, rtol=1e-4, atol=1e-4 * scale)
    value = len(y) * result.scores["train_logloss"] + alpha * np.abs(w_sklearn).sum() + 0.5 * lam * w_sklearn @ w_sklearn
    assert value == pytest.approx(objective, rel=1e-6)
    assert result.extra_params["converged"] is True
    if alpha > 0:
        assert 0 < result.stats["n_nonzero_coef"] < X.shape[1]


def test_multinomial_logistic_matches_the_softmax_booster_objective():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    alpha, lam = 2.0, 1.0
    result = fit_counterpart("logistic_elasticnet", {"reg_alpha": alpha, "reg_lambda": lam},
                             _fold(X, y.astype("int64"), "multiclass", 3), "logloss", 0)
    w_direct, _, objective = direct_softmax(_standardized(X), y, 3, alpha, lam)
    w_sklearn = _coef(result, 3)
    np.testing.assert_allclose(w_sklearn, w_direct, rtol=1e-4, atol=1e-4 * np.max(np.abs(w_direct)))
    value = len(y) * result.scores["train_logloss"] + alpha * np.abs(w_sklearn).sum() + 0.5 * lam * w_sklearn @ w_sklearn
    assert value == pytest.approx(objective, rel=1e-6)
    assert set(result.coefficients["klass"]) == {0, 1, 2}


@pytest.mark.parametrize(("model", "alpha", "lam"), [("linear_svm_l1", 10.0, 0.0), ("linear_svm_l2", 0.0, 100.0)])
def test_linear_svm_penalty_scale_matches(binary_data, model, alpha, lam):
    X, y = binary_data
    result = fit_counterpart(model, {"reg_alpha": alpha, "reg_lambda": lam}, _fold(X, y, "binary", 2), "logloss", 0)
    w_direct, _, _ = direct_squared_hinge(_standardized(X), y, alpha, lam)
    # looser than the others: liblinear stops at tol 1e-6 and penalizes the intercept (weakly, scaling 1e4)
    np.testing.assert_allclose(_coef(result), w_direct, rtol=1e-3, atol=1e-3 * np.max(np.abs(w_direct)))
    # Platt-calibrated probabilities: logloss and auc are defined and better than chance
    assert result.scores["test_auc"] > 0.7 and np.isfinite(result.scores["train_logloss"])


def test_logistic_counterparts_use_the_current_api_without_warnings(binary_data):
    X, y = binary_data
    fold = _fold(X, y, "binary", 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        for model, alpha, lam in [("logistic_l1", 1.0, 0.0), ("logistic_l2", 0.0, 1.0),
                                  ("logistic_elasticnet", 1.0, 1.0), ("linear_svm_l1", 1.0, 0.0)]:
            fit_counterpart(model, {"reg_alpha": alpha, "reg_lambda": lam}, fold, "logloss", 0)


# ----------------------------------------------------------------------------------------------------
# preprocessing and coefficient statistics


def test_categoricals_are_one_hot_and_count_once_missing_values_are_imputed():
    rng = np.random.default_rng(0)
    n = 400
    colour = rng.choice(["red", "green", "blue"], size=n)
    X = pd.DataFrame({"signal": rng.normal(size=n), "noise": rng.normal(size=n),
                      "colour": pd.Categorical(colour)})
    y = 3.0 * X["signal"].to_numpy() + np.where(colour == "red", 4.0, 0.0) + rng.normal(scale=0.1, size=n)
    X.loc[::7, "signal"] = np.nan
    X.loc[::11, "colour"] = np.nan
    X_test = X.iloc[:50].copy()
    X_test["colour"] = pd.Categorical(["purple"] * 50)  # unseen at fit time: all one-hot columns 0
    fold = FoldData(X, y, X_test, y[:50], "regression", 0)
    result = fit_counterpart("lasso", {"reg_alpha": 20.0, "reg_lambda": 0.0}, fold, "rmse", 0)
    table = result.coefficients
    assert list(table.columns) == ["feature", "klass", "coef"]
    assert set(table["feature"]) == {"signal", "noise", "colour=blue", "colour=green", "colour=red", "colour=nan"}
    used = table.loc[table["coef"] != 0, "feature"]
    assert "noise" not in set(used) and "colour=red" in set(used)
    assert (used.str.startswith("colour=")).sum() >= 1
    # n_features_used counts original features: colour once however many of its columns are nonzero
    assert result.stats["n_features_used"] == 2
    assert result.extra_params["features_used"] == ["signal", "colour"]
    assert result.stats["n_nonzero_coef"] == len(used)
    assert result.stats["zero_coef_fraction"] == pytest.approx(1 - len(used) / 6)
    assert result.stats["coef_l1"] == pytest.approx(table["coef"].abs().sum())
    assert result.stats["coef_l2"] == pytest.approx(np.sqrt((table["coef"] ** 2).sum()))
    assert np.isfinite(result.scores["test_rmse"])


# ----------------------------------------------------------------------------------------------------
# which counterpart at which grid point


def test_each_grid_point_gets_exactly_one_counterpart_per_family():
    spec = validate_spec(small_spec(counterparts=["ols", "lasso", "ridge", "elasticnet"],
                                    sweep={"reg_alpha": [0, 1, 100], "reg_lambda": [0, 10]}))
    trials = linear_trials(spec)
    assert len(trials) == 6
    by_point = {(t.params["reg_alpha"], t.params["reg_lambda"]): t.model for t in trials}
    assert by_point == {(0.0, 0.0): "ols", (1.0, 0.0): "lasso", (100.0, 0.0): "lasso", (0.0, 10.0): "ridge",
                        (1.0, 10.0): "elasticnet", (100.0, 10.0): "elasticnet"}
    assert {t.kind for t in trials} == {"linear"} and {t.library for t in trials} == {"sklearn"}
    assert "lasso α=100 λ=0" in {t.run_name for t in trials}
    assert len(make_plan(spec)) == 12 + 6


def test_unswept_penalty_points_follow_each_library_default():
    spec = validate_spec(small_spec(sweep={"reg_alpha": [0, 1]}, counterparts=["lasso", "elasticnet"]))
    points = {(p["reg_alpha"], p["reg_lambda"]) for p in penalty_points(spec)}
    assert points == {(0.0, 1.0), (1.0, 1.0), (0.0, 0.0), (1.0, 0.0)}  # XGBoost λ = 1, LightGBM λ = 0
    models = {(t.model, t.params["reg_alpha"], t.params["reg_lambda"]) for t in linear_trials(spec)}
    assert models == {("lasso", 1.0, 0.0), ("elasticnet", 1.0, 1.0)}


def test_a_counterpart_with_no_matching_grid_point_is_a_spec_error():
    spec = validate_spec(small_spec(sweep={"reg_alpha": [0, 1], "reg_lambda": [1, 10]},
                                    counterparts=["elasticnet", "lasso"]))
    with pytest.raises(SpecError) as caught:
        make_plan(spec)
    message = str(caught.value)
    assert "counterparts[1]" in message and "'lasso' matches no grid point" in message
    assert "reg_lambda = 0 < reg_alpha" in message
