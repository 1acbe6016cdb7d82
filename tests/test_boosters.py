"""The booster adapters on the real libraries: scores, curves, leaf tables and tree statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gbreg.models.boosters import ADAPTERS, FoldData
from gbreg.spec.params import resolve_params

LIBRARIES = ["xgboost", "lightgbm"]


def _fold(task: str = "regression", seed: int = 0, n: int = 400) -> FoldData:
    from sklearn.datasets import make_classification, make_regression

    if task == "regression":
        X, y = make_regression(n_samples=n, n_features=8, n_informative=4, noise=5.0, random_state=seed)
    else:
        X, y = make_classification(n_samples=n, n_features=8, n_informative=4, n_classes=3 if task == "multiclass"
                                   else 2, random_state=seed)
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    cut = int(0.75 * n)
    return FoldData(X.iloc[:cut], y[:cut], X.iloc[cut:], y[cut:], task, len(np.unique(y)) if task != "regression" else 0)


def _train(library: str, fold: FoldData, metric: str = "rmse", **params):
    adapter = ADAPTERS[library]
    resolved = resolve_params(library, {"n_estimators": 30, "learning_rate": 0.3, **params})
    return adapter.train(adapter.prepare(fold, resolved), fold, resolved, metric, seed=0, threads=1)


@pytest.mark.parametrize("library", LIBRARIES)
def test_zero_leaf_fraction_rises_from_zero_with_reg_alpha(library):
    fold = _fold()
    fractions = [_train(library, fold, reg_alpha=a, reg_lambda=0).stats["zero_leaf_fraction"]
                 for a in (0, 10, 100, 1000)]
    assert fractions[0] == 0.0
    assert fractions[-1] > 0.2
    assert all(b >= a - 0.05 for a, b in zip(fractions, fractions[1:])), fractions


@pytest.mark.parametrize("library", LIBRARIES)
def test_leaf_abs_mean_falls_with_reg_lambda(library):
    fold = _fold()
    means = [_train(library, fold, reg_lambda=lam).stats["leaf_abs_mean"] for lam in (0, 10, 100, 1000)]
    assert all(b < a for a, b in zip(means, means[1:])), means


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("task,metric", [("regression", "rmse"), ("regression", "r2"), ("binary", "logloss"),
                                         ("binary", "auc"), ("multiclass", "accuracy"), ("multiclass", "logloss")])
def test_last_curve_point_equals_the_final_score(library, task, metric):
    """Curves come from the library's evaluation, final scores from predictions: they must agree."""
    fold = _fold(task)
    result = _train(library, fold, metric=metric)
    for part in ("train", "test"):
        curve = result.curves[f"curve_{part}_{metric}"]
        assert len(curve) == 30
        # float32 evaluation inside the libraries vs float64 here
        assert curve[-1] == pytest.approx(result.scores[f"{part}_{metric}"], rel=2e-5, abs=1e-6)
    sign = 1 if metric in ("rmse", "logloss") else -1
    assert result.scores[f"gap_{metric}"] == pytest.approx(
        sign * (result.scores[f"test_{metric}"] - result.scores[f"train_{metric}"]))


@pytest.mark.parametrize("library", LIBRARIES)
def test_multiclass_reads_every_class_trees(library):
    fold = _fold("multiclass")
    result = _train(library, fold, metric="logloss")
    assert result.stats["n_trees"] == 30 * 3
    assert set(np.unique(result.leaves["klass"])) == {0, 1, 2}
    per_tree = pd.Series(result.leaves["klass"]).groupby(result.leaves["tree"]).first()
    assert (per_tree.to_numpy() == per_tree.index.to_numpy() % 3).all()


def test_xgboost_leaf_table_matches_trees_to_dataframe():
    import json

    import xgboost as xgb

    from gbreg.models.boosters.xgb import read_leaves

    fold = _fold()
    dtrain = xgb.DMatrix(fold.X_train, fold.y_train)
    booster = xgb.train({"max_depth": 4, "alpha": 5, "nthread": 1}, dtrain, num_boost_round=20)
    leaves, n_trees, used = read_leaves(json.loads(booster.save_raw("json")))
    reference = booster.trees_to_dataframe()
    reference = reference[reference["Feature"] == "Leaf"]
    assert n_trees == 20 and len(leaves["value"]) == len(reference)
    # the text route rounds leaf values near 1e-7 relative; the JSON model is exact
    np.testing.assert_allclose(np.sort(leaves["value"]), np.sort(reference["Gain"].to_numpy()), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.sort(leaves["cover"]), np.sort(reference["Cover"].to_numpy()), rtol=1e-5)
    assert {f"x{i}" for i in used} == set(booster.trees_to_dataframe().query("Feature != 'Leaf'")["Feature"])


def test_xgboost_model_json_is_read_exactly_also_when_training_diverged():
    """orjson reads the model; a diverged model (XGBoost writes ``Infinity``) falls back to ``json``."""
    import json

    import xgboost as xgb

    from gbreg.models.boosters.xgb import _load_model_json

    fold = _fold()
    dtrain = xgb.DMatrix(fold.X_train, fold.y_train)
    booster = xgb.train({"max_depth": 3, "nthread": 1}, dtrain, num_boost_round=10)
    raw = booster.save_raw("json")
    assert _load_model_json(raw) == json.loads(raw)
    diverged = xgb.train({"max_depth": 2, "eta": 1e30, "nthread": 1},
                         xgb.DMatrix(fold.X_train, np.asarray(fold.y_train) * 1e30), num_boost_round=3)
    raw = diverged.save_raw("json")
    assert b"Infinity" in raw
    trees = _load_model_json(raw)["learner"]["gradient_booster"]["model"]["trees"]
    assert len(trees) == 3 and trees == json.loads(raw)["learner"]["gradient_booster"]["model"]["trees"]


def test_lightgbm_leaf_table_matches_trees_to_dataframe():
    import lightgbm as lgb

    from gbreg.models.boosters.lgbm import read_leaves

    fold = _fold()
    booster = lgb.train({"num_leaves": 9, "lambda_l1": 5, "verbose": -1, "num_threads": 1},
                        lgb.Dataset(fold.X_train, fold.y_train), num_boost_round=20)
    leaves, n_trees, used = read_leaves(booster.model_to_string(), 1)
    reference = booster.trees_to_dataframe()
    reference = reference[reference["split_feature"].isna()].sort_values(["tree_index", "node_index"])
    assert n_trees == 20 and len(leaves["value"]) == len(reference)
    order = np.lexsort((leaves["leaf"], leaves["tree"]))
    np.testing.assert_allclose(leaves["value"][order], reference["value"].to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(leaves["depth"][order], reference["node_depth"].to_numpy() - 1)
    assert len(used) == booster.trees_to_dataframe()["split_feature"].dropna().nunique()



@pytest.mark.parametrize(("task", "params"), [
    ("multiclass", {"num_leaves": 31, "min_data_in_leaf": 2}),  # deep leaf-wise trees, three classes
    ("multiclass", {"num_leaves": 7, "min_data_in_leaf": 200}),  # no tree can split: one leaf, no weight
])
def test_lightgbm_leaf_table_matches_trees_to_dataframe_leaf_by_leaf(task, params):
    """Every leaf's tree, class, value, cover and depth, matched by its (tree, leaf) id, not sorted apart."""
    import lightgbm as lgb

    from gbreg.models.boosters.lgbm import read_leaves

    fold = _fold(task)
    k = fold.n_classes if task == "multiclass" else 1
    native = {**params, "objective": task, "verbose": -1, "num_threads": 1, **({"num_class": k} if k > 1 else {})}
    booster = lgb.train(native, lgb.Dataset(fold.X_train, fold.y_train), num_boost_round=12)
    leaves, n_trees, used = read_leaves(booster.model_to_string(), k)
    nodes = booster.trees_to_dataframe()
    reference = nodes[nodes["split_feature"].isna()].copy()
    reference["leaf"] = reference["node_index"].str.split("-L").str[1].fillna("0").astype(int)
    reference = reference.sort_values(["tree_index", "leaf"])
    order = np.lexsort((leaves["leaf"], leaves["tree"]))
    assert n_trees == booster.num_trees() and len(order) == len(reference)
    np.testing.assert_array_equal(leaves["tree"][order], reference["tree_index"])
    np.testing.assert_array_equal(leaves["leaf"][order], reference["leaf"])
    np.testing.assert_array_equal(leaves["klass"][order], reference["tree_index"] % k)
    np.testing.assert_allclose(leaves["value"][order], reference["value"], rtol=1e-12)
    # NaN where LightGBM records no weight (a one-leaf tree), as its own trees_to_dataframe has it
    np.testing.assert_allclose(leaves["cover"][order], reference["weight"].astype(float), rtol=1e-12)
    np.testing.assert_array_equal(leaves["depth"][order], reference["node_depth"] - 1)
    assert {f"x{i}" for i in used} == set(nodes["split_feature"].dropna())
    if params["min_data_in_leaf"] == 200:  # LightGBM stops at the first round it cannot split
        assert n_trees == k and len(leaves["value"]) == k and not used and np.isnan(leaves["cover"]).all()
    else:
        assert n_trees == 12 * k and leaves["depth"].max() > 5

@pytest.mark.parametrize("library", LIBRARIES)
def test_categorical_and_missing_values_use_native_handling(library):
    rng = np.random.default_rng(0)
    n = 600
    colour = pd.Categorical(rng.choice(["red", "green", "blue"], n))
    size = rng.normal(size=n)
    size[rng.random(n) < 0.2] = np.nan
    y = np.where(colour == "red", 3.0, 0.0) + np.nan_to_num(size) + rng.normal(scale=0.1, size=n)
    X = pd.DataFrame({"colour": colour, "size": size})
    fold = FoldData(X.iloc[:450], y[:450], X.iloc[450:], y[450:], "regression", 0)
    result = _train(library, fold, max_depth=3)
    assert result.scores["test_r2"] > 0.8
    assert result.stats["n_features_used"] == 2
    assert result.extra_params["features_used"] == ["colour", "size"]


@pytest.mark.parametrize("library", LIBRARIES)
def test_training_is_deterministic(library):
    fold = _fold("binary")
    first = _train(library, fold, metric="logloss", subsample=0.7, colsample_bytree=0.7, reg_alpha=1)
    second = _train(library, fold, metric="logloss", subsample=0.7, colsample_bytree=0.7, reg_alpha=1)
    assert first.scores == second.scores
    np.testing.assert_array_equal(first.leaves["value"], second.leaves["value"])


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_xgboost_trains_the_same_model_from_the_values_as_from_the_named_frame(task):
    """gbreg builds XGBoost's matrices from the bare values of a numeric frame (no per-round name checks):
    the same trees, curves and predictions, bit for bit, as from the frame, missing values included."""
    import json

    import xgboost as xgb

    from gbreg.models.boosters.xgb import matrix_values

    fold = _fold(task, seed=3)
    X_train = fold.X_train.copy()
    X_train.iloc[::5, 2] = np.nan
    assert isinstance(matrix_values(X_train), np.ndarray)
    params = {"objective": {"regression": "reg:squarederror", "binary": "binary:logistic",
                            "multiclass": "multi:softprob"}[task], "alpha": 1.0, "nthread": 1, "seed": 0,
              **({"num_class": 3} if task == "multiclass" else {})}
    trained = []
    for train_data, test_data in ((X_train, fold.X_test), (matrix_values(X_train), matrix_values(fold.X_test))):
        dtrain = xgb.QuantileDMatrix(train_data, fold.y_train, enable_categorical=True, nthread=1)
        dtest = xgb.DMatrix(test_data, fold.y_test, enable_categorical=True, nthread=1)
        history: dict = {}
        booster = xgb.train(params, dtrain, 20, evals=[(dtrain, "train"), (dtest, "test")], evals_result=history)
        model = json.loads(booster.save_raw("json"))["learner"]  # the trees, without the feature names
        trained.append((model["gradient_booster"], history, booster.predict(dtest)))
    (trees, curves, predictions), (trees_from_values, curves_from_values, predictions_from_values) = trained
    assert trees == trees_from_values and curves == curves_from_values
    np.testing.assert_array_equal(predictions, predictions_from_values)


def test_xgboost_gets_a_frame_with_categorical_columns_as_it_is():
    from gbreg.models.boosters.xgb import matrix_values

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "colour": pd.Categorical(["red", "blue", "red"])})
    assert matrix_values(frame) is frame
