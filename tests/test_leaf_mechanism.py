"""Every leaf of real trained models against the closed form -sign(G) max(|G| - alpha, 0) / (H + lambda) * eta,
with G and H rebuilt from the training rows (gbreg.models.leaf_mechanism), and the per-trial mechanism metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import small_spec

from gbreg.models.boosters import ADAPTERS, FoldData
from gbreg.models.leaf_mechanism import (
    LEAF_MECHANISM_STAT_NAMES,
    Loss,
    Penalty,
    leaf_sums,
    lightgbm_fitted_leaves,
    mechanism_stats,
)
from gbreg.spec.params import resolve_params

LIBRARIES = ["xgboost", "lightgbm"]
METRIC = {"regression": "rmse", "binary": "logloss", "multiclass": "logloss"}
# float32 leaves, margins and gradients in XGBoost; LightGBM (float64 margins) within its 1e-15 hessian epsilon
TOLERANCE = {"xgboost": 2e-6, "lightgbm": 1e-9}


def sklearn_fold(name: str) -> FoldData:
    from sklearn import datasets

    loader = {"diabetes": datasets.load_diabetes, "breast_cancer": datasets.load_breast_cancer,
              "wine": datasets.load_wine, "iris": datasets.load_iris}[name]
    X, y = loader(return_X_y=True, as_frame=True)
    task = "regression" if name == "diabetes" else "binary" if name == "breast_cancer" else "multiclass"
    y = y.to_numpy().astype("float64")
    return FoldData(X, y, X.iloc[:20], y[:20], task, 0 if task == "regression" else len(np.unique(y)))


def train(library: str, fold: FoldData, **params):
    adapter = ADAPTERS[library]
    resolved = resolve_params(library, {"n_estimators": 60, **params})
    return adapter.train(adapter.prepare(fold, resolved), fold, resolved, METRIC[fold.task], seed=0, threads=1)


def rebuilt_sums(library: str, fold: FoldData, **params) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The leaf table and rebuilt G, H of a training set up exactly as the adapter sets it up (the adapter
    keeps only the metrics)."""
    from gbreg.models.boosters import lgbm, xgb
    from gbreg.models.leaf_mechanism import lightgbm_loss, xgboost_base_margin, xgboost_loss

    adapter = ADAPTERS[library]
    resolved = resolve_params(library, {"n_estimators": 60, **params})
    prepared = adapter.prepare(fold, resolved)
    native = adapter.native_params(resolved, fold.task, fold.n_classes, METRIC[fold.task], 0, 1)
    if library == "xgboost":
        import json

        import xgboost

        booster = xgboost.train(native, prepared[0], num_boost_round=60)
        model = json.loads(booster.save_raw("json"))
        leaves, _, _ = xgb.read_leaves(model)
        base = xgboost_base_margin(model["learner"]["learner_model_param"]["base_score"], native["objective"])
        sums = leaf_sums(booster.predict(prepared[0], pred_leaf=True), leaves, fold.y_train, base,
                         xgboost_loss(fold.task))
    else:
        import lightgbm

        booster = lightgbm.train(native, prepared[0], num_boost_round=60)
        leaves, _, _ = lgbm.read_leaves(booster.model_to_string(), fold.n_classes if fold.task == "multiclass" else 1)
        sums = leaf_sums(booster.predict(fold.X_train, pred_leaf=True), leaves, fold.y_train, prepared[2],
                         lightgbm_loss(fold.task, fold.n_classes))
    return pd.DataFrame(leaves), *sums


@pytest.fixture(scope="module")
def folds():
    return {name: sklearn_fold(name) for name in ("diabetes", "breast_cancer", "wine", "iris")}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("data", ["diabetes", "breast_cancer", "wine", "iris"])
@pytest.mark.parametrize("alpha, lam", [(0.0, 0.0), (0.0, 5.0), (2.0, 0.0), (5.0, 10.0)])
def test_every_stored_leaf_equals_the_closed_form(folds, library, data, alpha, lam):
    fold = folds[data]
    if fold.task == "regression":
        alpha, lam = alpha * 20, lam * 20  # diabetes gradients are residuals of ~50: keep the penalties biting
    stats = train(library, fold, reg_alpha=alpha, reg_lambda=lam, learning_rate=0.3).stats
    assert stats["leaf_closed_form_max_abs_error"] <= TOLERANCE[library]
    assert all(math.isfinite(stats[name]) for name in LEAF_MECHANISM_STAT_NAMES if alpha or lam)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("data", ["diabetes", "breast_cancer", "iris"])
def test_the_rebuilt_hessian_sums_are_the_ones_the_library_stored(folds, library, data):
    """H of each leaf equals the library's own cover (XGBoost: float32): the per-row leaf ids, the margins
    before each tree and the hessian formula are right, independently of the leaf values."""
    leaves, grad_sum, hess_sum = rebuilt_sums(library, folds[data], reg_alpha=1.0, reg_lambda=1.0, learning_rate=0.3)
    fitted = lightgbm_fitted_leaves(leaves) if library == "lightgbm" else np.ones(len(leaves), bool)
    assert fitted.sum() > 100 and np.isfinite(grad_sum).all()
    np.testing.assert_allclose(hess_sum[fitted], leaves["cover"][fitted], rtol=2e-5)


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_l1_zeroed_fraction_is_zero_without_alpha_and_rises_with_it(folds, library):
    fractions = [train(library, folds["diabetes"], reg_alpha=alpha, reg_lambda=1.0).stats["leaf_l1_zeroed_fraction"]
                 for alpha in (0.0, 10.0, 100.0, 1000.0)]
    assert fractions[0] == 0.0
    assert all(b > a for a, b in zip(fractions, fractions[1:])), fractions
    assert fractions[-1] > 0.3


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_shrinkage_shares_split_the_shrinkage_between_the_penalties(folds, library):
    fold = folds["breast_cancer"]
    both = train(library, fold, reg_alpha=1.0, reg_lambda=5.0).stats
    assert both["leaf_l1_shrinkage_share"] + both["leaf_l2_shrinkage_share"] == pytest.approx(1.0, abs=1e-12)
    assert 0.0 < both["leaf_l1_shrinkage_share"] < 1.0
    l2_only = train(library, fold, reg_alpha=0.0, reg_lambda=5.0).stats
    assert (l2_only["leaf_l1_shrinkage_share"], l2_only["leaf_l2_shrinkage_share"]) == (0.0, 1.0)
    l1_only = train(library, fold, reg_alpha=1.0, reg_lambda=0.0).stats
    assert (l1_only["leaf_l1_shrinkage_share"], l1_only["leaf_l2_shrinkage_share"]) == (1.0, 0.0)
    none = train(library, fold, reg_alpha=0.0, reg_lambda=0.0).stats
    assert math.isnan(none["leaf_l1_shrinkage_share"]) and math.isnan(none["leaf_l2_shrinkage_share"])
    # more lambda at the same alpha moves the shrinkage towards the L2 denominator
    more_l2 = train(library, fold, reg_alpha=1.0, reg_lambda=50.0).stats
    assert more_l2["leaf_l2_shrinkage_share"] > both["leaf_l2_shrinkage_share"]


def test_the_metrics_on_leaves_worked_by_hand():
    """G = (10, -3, 0.5), H = (4, 2, 1), alpha = 1, lambda = 2, eta = 0.5."""
    grad_sum, hess_sum = np.array([10.0, -3.0, 0.5]), np.array([4.0, 2.0, 1.0])
    stored = np.array([-9 / 6 * 0.5, 2 / 4 * 0.5, 0.0])
    stats = mechanism_stats(stored, grad_sum, hess_sum, Penalty(alpha=1.0, lam=2.0, eta=0.5))
    l1 = (1 / 4 + 1 / 2 + 0.5 / 1) * 0.5  # (|G| - |T(G)|) / H * eta
    l2 = (9 * (1 / 4 - 1 / 6) + 2 * (1 / 2 - 1 / 4)) * 0.5  # |T(G)| (1/H - 1/(H + lambda)) * eta
    unpenalized_minus_penalized = (10 / 4 - 9 / 6 + 3 / 2 - 2 / 4 + 0.5) * 0.5
    assert l1 + l2 == pytest.approx(unpenalized_minus_penalized)
    assert stats["leaf_l1_shrinkage_share"] == pytest.approx(l1 / (l1 + l2))
    assert stats["leaf_l2_shrinkage_share"] == pytest.approx(l2 / (l1 + l2))
    assert stats["leaf_l1_zeroed_fraction"] == pytest.approx(1 / 3)
    assert stats["leaf_closed_form_max_abs_error"] == 0.0
    off = mechanism_stats(stored + np.array([0.0, 0.075, 0.0]), grad_sum, hess_sum, Penalty(1.0, 2.0, 0.5))
    assert off["leaf_closed_form_max_abs_error"] == pytest.approx(0.075 / 0.75)  # relative to the largest |leaf|


def test_a_wrong_hessian_shows_as_a_closed_form_error(folds):
    """The check has teeth: XGBoost's softmax hessian is 2p(1-p); with p(1-p) the leaves do not match."""
    import json

    import xgboost as xgb

    from gbreg.models.boosters.xgb import read_leaves

    fold = folds["iris"]
    params = {"objective": "multi:softprob", "num_class": 3, "eta": 0.3, "lambda": 1.0, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(fold.X_train, fold.y_train), num_boost_round=20)
    leaves, _, _ = read_leaves(json.loads(booster.save_raw("json")))
    leaf_index = booster.predict(xgb.DMatrix(fold.X_train), pred_leaf=True)
    base = np.zeros(3, "float32")
    for factor, small in ((2.0, True), (1.0, False)):
        loss = Loss("multiclass", factor, 1e-16, float32_margins=True)
        grad_sum, hess_sum = leaf_sums(leaf_index, leaves, fold.y_train, base, loss)
        error = mechanism_stats(leaves["value"], grad_sum, hess_sum, Penalty(0.0, 1.0, 0.3, 1.0))
        assert (error["leaf_closed_form_max_abs_error"] < 2e-6) is small


@pytest.mark.parametrize("library, params, applies", [
    ("xgboost", {"subsample": 0.5}, False),
    ("xgboost", {"max_delta_step": 0.5}, False),
    ("xgboost", {"colsample_bytree": 0.5}, True),  # column sampling does not change which rows count
    ("lightgbm", {"subsample": 0.5}, False),
    ("lightgbm", {"path_smooth": 1.0}, False),
    ("lightgbm", {"max_delta_step": 0.5}, False),
    ("lightgbm", {"colsample_bytree": 0.5}, True),
])
def test_the_metrics_are_nan_where_the_closed_form_does_not_apply(folds, library, params, applies):
    result = train(library, folds["diabetes"], reg_alpha=20.0, reg_lambda=20.0, **params)
    values = [result.stats[name] for name in LEAF_MECHANISM_STAT_NAMES]
    if applies:
        assert all(math.isfinite(v) for v in values), values
        assert result.stats["leaf_closed_form_max_abs_error"] <= TOLERANCE[library]
    else:
        assert all(math.isnan(v) for v in values), values


def test_xgboost_gives_zero_to_a_leaf_lighter_than_min_child_weight(folds):
    """XGBoost's CalcWeight returns 0 when H < min_child_weight (late iris trees of nearly pure classes):
    the closed form follows it, and those leaves stay out of the zeroed fraction."""
    leaves, grad_sum, hess_sum = rebuilt_sums("xgboost", folds["iris"], reg_alpha=0.0, reg_lambda=0.0,
                                              learning_rate=0.3)
    light = hess_sum < 1.0
    assert light.sum() >= 5 and (leaves["value"][light] == 0.0).all()
    assert (np.abs(grad_sum[light]) > 0).all()  # G / H alone would not be 0
    stats = train("xgboost", folds["iris"], reg_alpha=0.0, reg_lambda=0.0, learning_rate=0.3).stats
    assert stats["leaf_closed_form_max_abs_error"] <= TOLERANCE["xgboost"]
    assert stats["leaf_l1_zeroed_fraction"] == 0.0


def test_lightgbm_with_categorical_features_is_skipped(folds):
    """LightGBM adds cat_l2 to lambda on categorical splits: the closed form with lambda alone does not hold."""
    fold = folds["diabetes"]
    X = fold.X_train.assign(sex=(fold.X_train["sex"] > 0).astype("int64").astype("category"))
    categorical = FoldData(X, fold.y_train, X.iloc[:20], fold.y_test, "regression", 0)
    stats = train("lightgbm", categorical, reg_alpha=20.0, reg_lambda=20.0).stats
    assert all(math.isnan(stats[name]) for name in LEAF_MECHANISM_STAT_NAMES)
    assert math.isfinite(train("xgboost", categorical, reg_alpha=20.0, reg_lambda=20.0).stats["leaf_l1_zeroed_fraction"])


def test_the_metrics_are_per_split_statistics_a_hypothesis_may_name(folds):
    from gbreg.data_splits import Split
    from gbreg.models.trial import aggregate
    from gbreg.spec.hypotheses import BOOSTER_METRICS, SPLIT_METRICS
    from gbreg.spec.validation import validate_spec

    assert set(LEAF_MECHANISM_STAT_NAMES) <= set(BOOSTER_METRICS) & set(SPLIT_METRICS)
    validate_spec(small_spec(expect=[
        {"metric": "leaf_l1_zeroed_fraction", "trend": "increasing", "along": "reg_alpha"},
        {"metric": "leaf_l2_shrinkage_share", "trend": "increasing", "along": "reg_lambda"},
        {"metric": "leaf_closed_form_max_abs_error_std", "sign": "positive"},
    ]))
    fold = folds["diabetes"]
    halves = [FoldData(fold.X_train.iloc[part], fold.y_train[part], fold.X_test, fold.y_test, "regression", 0)
              for part in (slice(0, 221), slice(221, None))]
    results = [train("xgboost", half, reg_alpha=50.0, reg_lambda=1.0) for half in halves]
    splits = [Split(0, index, np.arange(1), np.arange(1)) for index in range(2)]
    trial = aggregate("t", splits, results)
    per_split = [r.stats["leaf_l1_zeroed_fraction"] for r in results]
    assert trial.metrics["leaf_l1_zeroed_fraction"] == pytest.approx(np.mean(per_split))
    assert trial.metrics["leaf_l1_zeroed_fraction_std"] == pytest.approx(np.std(per_split))
