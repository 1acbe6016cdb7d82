"""The leaf mechanism on the two libraries without L1: every leaf of real HistGradientBoosting and CatBoost
models against -G / (H + lambda) * eta, with G and H rebuilt from the training rows (gbreg.models.leaf_mechanism),
and the CatBoost settings where one leaf is not one such step (NaN metrics, the reason logged)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import small_spec, write_spec
from test_leaf_mechanism import METRIC, sklearn_fold

from gbreg.models.boosters import ADAPTERS, FoldData
from gbreg.models.leaf_mechanism import (
    LEAF_MECHANISM_STAT_NAMES,
    Loss,
    Penalty,
    catboost_loss,
    leaf_sums,
    mechanism_stats,
    sklearn_hgb_loss,
    split_tree_leaves,
)
from gbreg.spec.params import resolve_params

LIBRARIES = ["sklearn_hgb", "catboost"]
# HistGradientBoosting: float64 margins and sums, float32 gradients as rebuilt. CatBoost: double gradients
# (rebuilt in float32) and a float32 baseline: about 5e-8.
TOLERANCE = {"sklearn_hgb": 1e-9, "catboost": 1e-6}
# One Newton step per leaf (Logloss takes 10 by default); MultiClass Newton couples the classes, Gradient does not
ONE_STEP = {"regression": {"leaf_estimation_iterations": 1}, "binary": {"leaf_estimation_iterations": 1},
            "multiclass": {"leaf_estimation_iterations": 1, "leaf_estimation_method": "Gradient"}}
BASE = {"sklearn_hgb": {"max_leaves": 15}, "catboost": {"max_depth": 4}}


@pytest.fixture(scope="module")
def folds():
    return {name: sklearn_fold(name) for name in ("diabetes", "breast_cancer", "iris")}


def params_for(library: str, fold: FoldData, **params) -> dict:
    one_step = ONE_STEP[fold.task] if library == "catboost" else {}
    return {"n_estimators": 40, "learning_rate": 0.3, **BASE[library], **one_step, **params}


def train(library: str, fold: FoldData, **params):
    adapter = ADAPTERS[library]
    resolved = resolve_params(library, params)
    return adapter.train(adapter.prepare(fold, resolved), fold, resolved, METRIC[fold.task], seed=0, threads=1)


def rebuilt(library: str, fold: FoldData, **params) -> dict:
    """The trained model's leaf table, the per-row leaf index, the starting margin and the loss, set up as the
    adapter sets them up (the adapter keeps only the metrics)."""
    adapter = ADAPTERS[library]
    resolved = resolve_params(library, params)
    native = adapter.native_params(resolved, fold.task, fold.n_classes, METRIC[fold.task], 0, 1)
    if library == "sklearn_hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        from gbreg.models.boosters.sklearn_hgb import read_leaves, read_predictor_nodes, training_leaf_index

        X_train, _ = adapter.prepare(fold, resolved)
        estimator = HistGradientBoostingRegressor if fold.task == "regression" else HistGradientBoostingClassifier
        model = estimator(**native).fit(X_train, fold.y_train)
        leaves, _, _ = read_leaves(read_predictor_nodes(model)[0])
        return {"leaves": leaves, "index": training_leaf_index(model, X_train, 1), "model": model, "X": X_train,
                "base": np.ravel(model._baseline_prediction), "loss": sklearn_hgb_loss(fold.task),
                "lam": native["l2_regularization"], "fitted": split_tree_leaves(leaves)}
    from catboost import CatBoost

    from gbreg.models.boosters.catboost_adapter import model_json, read_leaves

    train_pool, _, init = adapter.prepare(fold, resolved)
    model = CatBoost(native).fit(train_pool)
    k = fold.n_classes if fold.task == "multiclass" else 1
    leaves, _, _ = read_leaves(model_json(model), k)
    method = model.get_all_params()["leaf_estimation_method"]
    return {"leaves": leaves, "index": np.repeat(model.calc_leaf_indexes(train_pool), k, axis=1), "model": model,
            "base": init.astype("float32"), "loss": catboost_loss(fold.task, method), "lam": native["l2_leaf_reg"],
            "fitted": np.ones(len(leaves["value"]), bool)}


def closed_form_error(built: dict, fold: FoldData, lam: float, eta: float = 0.3, loss: Loss | None = None) -> float:
    grad_sum, hess_sum = leaf_sums(built["index"], built["leaves"], fold.y_train, built["base"], loss or built["loss"])
    stats = mechanism_stats(built["leaves"]["value"], grad_sum, hess_sum, Penalty(0.0, lam, eta), built["fitted"])
    return stats["leaf_closed_form_max_abs_error"]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("data", ["diabetes", "breast_cancer", "iris"])
@pytest.mark.parametrize("lam", [0.0, 1.0, 10.0, 100.0])
def test_every_stored_leaf_equals_the_closed_form(folds, library, data, lam):
    fold = folds[data]
    stats = train(library, fold, **params_for(library, fold, reg_lambda=lam)).stats
    assert stats["leaf_closed_form_max_abs_error"] <= TOLERANCE[library]
    assert stats["leaf_l1_zeroed_fraction"] == 0.0  # no L1 term: nothing is thresholded
    if lam:  # all the shrinkage is the denominator's
        assert (stats["leaf_l1_shrinkage_share"], stats["leaf_l2_shrinkage_share"]) == (0.0, 1.0)
    else:  # nothing is shrunk
        assert math.isnan(stats["leaf_l1_shrinkage_share"]) and math.isnan(stats["leaf_l2_shrinkage_share"])


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("data", ["diabetes", "breast_cancer", "iris"])
def test_the_check_has_teeth_and_the_rows_per_leaf_are_the_librarys_own(folds, library, data):
    """The rebuilt row count of every leaf is the library's own (its cover: CatBoost's leaf weights,
    HistGradientBoosting's count), independently of the leaf values; and a lambda one off does not pass."""
    fold = folds[data]
    built = rebuilt(library, fold, **params_for(library, fold, reg_lambda=5.0))
    _, row_counts = leaf_sums(built["index"], built["leaves"], fold.y_train, built["base"], Loss("regression"))
    fitted = built["fitted"]
    assert fitted.sum() > 100
    np.testing.assert_array_equal(row_counts[fitted], built["leaves"]["cover"][fitted])
    assert closed_form_error(built, fold, 5.0) <= TOLERANCE[library]
    assert closed_form_error(built, fold, 6.0) > 1e-3


def test_histgradientboosting_leaf_index_is_scikit_learns_own_traversal():
    """Categorical and missing values: the leaf values at the rebuilt per-row leaves add up to the model's
    own raw predictions, and every leaf passes the check."""
    rng = np.random.default_rng(0)
    n = 500
    colour = rng.choice(["red", "green", "blue", "grey"], n).astype(object)
    size = rng.normal(size=n)
    size[rng.random(n) < 0.2] = np.nan
    y = np.where(colour == "red", 3.0, 0.0) + np.nan_to_num(size) + rng.normal(scale=0.3, size=n)
    X = pd.DataFrame({"colour": colour, "size": size, "noise": rng.normal(size=n)})
    fold = FoldData(X, y, X.iloc[:20], y[:20], "regression", 0)
    params = {"n_estimators": 30, "learning_rate": 0.3, "reg_lambda": 3.0}
    built = rebuilt("sklearn_hgb", fold, **params)
    assert built["model"].is_categorical_.any()
    leaves = built["leaves"]
    value = {(t, leaf): v for t, leaf, v in zip(leaves["tree"], leaves["leaf"], leaves["value"])}
    summed = built["base"][0] + np.array([[value[(t, leaf)] for t, leaf in enumerate(row)] for row in built["index"]]
                                         ).sum(axis=1)
    np.testing.assert_allclose(summed, built["model"]._raw_predict(built["X"])[:, 0], rtol=1e-12)
    assert train("sklearn_hgb", fold, **params).stats["leaf_closed_form_max_abs_error"] <= TOLERANCE["sklearn_hgb"]


def test_histgradientboosting_stores_an_unsplit_tree_as_zero(folds):
    """Late iris trees of nearly pure classes do not split: their one leaf keeps the root's initial value 0,
    not -G / H * eta. They are left out, as LightGBM's are; counted in, the check would fail."""
    fold = folds["iris"]
    built = rebuilt("sklearn_hgb", fold, n_estimators=60, learning_rate=0.3, reg_lambda=0.0)
    unsplit = ~built["fitted"]
    assert unsplit.sum() >= 3 and (built["leaves"]["value"][unsplit] == 0.0).all()
    assert closed_form_error(built, fold, 0.0) <= TOLERANCE["sklearn_hgb"]
    assert closed_form_error({**built, "fitted": np.ones_like(unsplit)}, fold, 0.0) > 1e-2


def test_histgradientboosting_with_monotonic_constraints_is_skipped(folds):
    fold = folds["diabetes"]
    result = train("sklearn_hgb", fold, n_estimators=20, reg_lambda=1.0,
                   monotonic_cst=[1] + [0] * (fold.X_train.shape[1] - 1))
    assert all(math.isnan(result.stats[name]) for name in LEAF_MECHANISM_STAT_NAMES)
    assert result.extra_params["leaf_mechanism_skipped"].startswith("monotonic_cst clamps leaf values")


@pytest.mark.parametrize("sampling", [{"bootstrap_type": "MVS", "subsample": 0.5},
                                      {"bootstrap_type": "Bernoulli", "subsample": 0.5},
                                      {"bootstrap_type": "Bayesian", "bagging_temperature": 5.0},
                                      {"bootstrap_type": "No", "random_strength": 5.0}])
def test_catboost_sampling_changes_the_splits_not_the_leaf_formula(folds, sampling):
    """Found by experiment: CatBoost samples rows (and adds score noise) to choose the splits, then estimates
    every leaf on all rows with weight 1, so row sampling does not skip the check (unlike XGBoost's subsample)."""
    fold = folds["breast_cancer"]
    plain = train("catboost", fold, **params_for("catboost", fold, reg_lambda=3.0, bootstrap_type="No",
                                                 random_strength=0.0))
    sampled = train("catboost", fold, **params_for("catboost", fold, reg_lambda=3.0, **sampling))
    assert not np.array_equal(plain.leaves["value"], sampled.leaves["value"])  # the sampling took effect
    assert sampled.stats["leaf_closed_form_max_abs_error"] <= TOLERANCE["catboost"]
    assert "leaf_mechanism_skipped" not in sampled.extra_params


@pytest.mark.parametrize("data, params, reason", [
    ("breast_cancer", {}, "leaf_estimation_iterations = 10: a leaf is several Newton steps"),
    ("iris", {"leaf_estimation_iterations": 1}, "MultiClass Newton steps solve the class-coupled system"),
])
def test_catboost_defaults_that_are_not_one_step_are_skipped_because_the_check_fails(folds, data, params, reason):
    """CatBoost's own defaults for Logloss (10 Newton steps per leaf) and MultiClass (a Newton step over the
    classes together): the one-step closed form is far off, so the metrics are NaN and the reason is logged."""
    fold = folds[data]
    full = {"n_estimators": 40, "learning_rate": 0.3, "max_depth": 4, "reg_lambda": 3.0, **params}
    result = train("catboost", fold, **full)
    assert all(math.isnan(result.stats[name]) for name in LEAF_MECHANISM_STAT_NAMES)
    assert result.extra_params["leaf_mechanism_skipped"].startswith(reason)
    assert closed_form_error(rebuilt("catboost", fold, **full), fold, 3.0) > 1e-2


def test_catboost_one_hot_categories_are_checked_and_target_statistics_skipped(folds):
    """A categorical column one-hot encoded splits like a number; encoded by target statistics (CTRs), the
    training rows met other values during training than the model gives them now."""
    fold = folds["diabetes"]
    bmi = pd.qcut(fold.X_train["bmi"], 3, labels=["low", "mid", "high"]).astype(object)
    X = fold.X_train.drop(columns="bmi").assign(bmi_band=bmi)
    categorical = FoldData(X, fold.y_train, X.iloc[:20], fold.y_test, "regression", 0)
    one_hot = train("catboost", categorical, **params_for("catboost", categorical, reg_lambda=3.0, one_hot_max_size=3))
    assert "bmi_band" in one_hot.extra_params["features_used"]
    assert one_hot.stats["leaf_closed_form_max_abs_error"] <= TOLERANCE["catboost"]
    ctr = train("catboost", categorical, **params_for("catboost", categorical, reg_lambda=3.0))
    assert math.isnan(ctr.stats["leaf_closed_form_max_abs_error"])
    assert ctr.extra_params["leaf_mechanism_skipped"].startswith("categorical features through target statistics")


@pytest.mark.slow
def test_a_study_logs_the_metrics_or_the_reason_they_are_missing(tracking, tmp_path):
    from mlflow.tracking import MlflowClient

    from gbreg.run.study import run_study
    from gbreg.spec.validation import load_spec

    spec = load_spec(write_spec(tmp_path, small_spec(
        data={"source": "sklearn", "name": "breast_cancer"}, evaluation={"split": "holdout", "metric": "logloss"},
        models={"catboost": {"n_estimators": 20, "max_depth": 3},
                "sklearn_hgb": {"n_estimators": 20, "max_leaves": 7}},
        sweep={"reg_lambda": [0, 10]})))
    outcome = run_study(spec, jobs=1, verbosity=-1)
    client = MlflowClient(tracking.tracking_uri)
    runs = client.search_runs([outcome.experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'")
    by_library = {library: [r for r in runs if r.data.params.get("library") == library] for library in LIBRARIES}
    assert [len(v) for v in by_library.values()] == [2, 2]
    for run in by_library["sklearn_hgb"]:
        assert run.data.metrics["leaf_closed_form_max_abs_error"] <= TOLERANCE["sklearn_hgb"]
        assert "leaf_mechanism_skipped" not in run.data.params
    for run in by_library["catboost"]:  # Logloss at CatBoost's default of 10 leaf-estimation steps
        assert not set(LEAF_MECHANISM_STAT_NAMES) & set(run.data.metrics)
        assert run.data.params["leaf_mechanism_skipped"].startswith("leaf_estimation_iterations = 10")
