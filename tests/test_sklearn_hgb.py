"""scikit-learn's HistGradientBoosting behind gbreg's registry: real data sets, the closed form on stumps, the
private predictor structure, the spec's vocabulary and a small study into MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small_spec, write_spec
from test_closed_form import BINARY_Y, FEATURE, REGRESSION_Y, closed_form_leaf, gradients
from test_spec_limits import problems_of
from test_study import CONTRACT_METRICS

from gbreg.models.boosters import ADAPTERS, FoldData
from gbreg.models.boosters.sklearn_hgb import LIBRARY, read_leaves, read_predictor_nodes
from gbreg.plan import make_plan
from gbreg.spec.params import resolve_params
from gbreg.spec.validation import validate_spec

ADAPTER = ADAPTERS["sklearn_hgb"]


def _fold(loader: str) -> FoldData:
    import sklearn.datasets

    X, y = getattr(sklearn.datasets, f"load_{loader}")(return_X_y=True, as_frame=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X.iloc[order].reset_index(drop=True), y.to_numpy()[order]
    task = {"diabetes": "regression", "breast_cancer": "binary", "iris": "multiclass"}[loader]
    cut = int(0.75 * len(y))
    return FoldData(X.iloc[:cut], y[:cut], X.iloc[cut:], y[cut:], task, 0 if task == "regression" else len(set(y)))


def _train(fold: FoldData, metric: str, **params):
    resolved = resolve_params("sklearn_hgb", {"n_estimators": 25, **params})
    return ADAPTER.train(ADAPTER.prepare(fold, resolved), fold, resolved, metric, seed=0, threads=1)


def test_defaults_are_scikit_learns_own():
    from sklearn.ensemble import HistGradientBoostingRegressor

    native = ADAPTER.native_params(dict(LIBRARY.defaults), "regression", 0, "rmse", seed=0, threads=1)
    own = HistGradientBoostingRegressor().get_params()
    assert {name: own[name] for name in LIBRARY.to_native(LIBRARY.defaults)} == {
        name: native[name] for name in LIBRARY.to_native(LIBRARY.defaults)}
    assert native["early_stopping"] is False and own["early_stopping"] == "auto"
    assert LIBRARY.native_params <= set(own)


@pytest.mark.parametrize("loader, metric", [("diabetes", "rmse"), ("diabetes", "r2"), ("breast_cancer", "logloss"),
                                            ("breast_cancer", "auc"), ("iris", "accuracy"), ("iris", "logloss")])
def test_real_data_sets_score_curve_and_read_every_leaf(loader, metric):
    fold = _fold(loader)
    result = _train(fold, metric, learning_rate=0.2)
    k = fold.n_classes if fold.task == "multiclass" else 1
    assert result.stats["n_trees"] == 25 * k
    assert set(np.unique(result.leaves["klass"])) == set(range(k))
    assert len(result.leaves["value"]) == result.stats["n_leaves"] > 25 * k  # the trees split
    for part in ("train", "test"):  # the staged curve ends at the final score, one point per round
        curve = result.curves[f"curve_{part}_{metric}"]
        assert len(curve) == 25 and curve[-1] == pytest.approx(result.scores[f"{part}_{metric}"], rel=1e-9)
    if fold.task == "regression":
        assert result.scores["test_rmse"] < 65 and result.scores["test_r2"] > 0.3
    else:
        assert result.scores["test_accuracy"] > 0.9
    baseline = np.atleast_1d(result.extra_params["fitted_baseline"])
    if fold.task == "regression":
        assert baseline[0] == pytest.approx(fold.y_train.mean())
    elif fold.task == "binary":
        assert baseline[0] == pytest.approx(np.log(fold.y_train.mean() / (1 - fold.y_train.mean())))
    else:  # log priors centred to mean 0
        priors = np.log(np.bincount(fold.y_train) / len(fold.y_train))
        np.testing.assert_allclose(baseline, priors - priors.mean(), rtol=1e-6)
    assert result.stats["leaf_closed_form_max_abs_error"] <= 1e-9 and result.stats["leaf_l1_zeroed_fraction"] == 0.0


def test_categorical_text_and_missing_values_use_native_handling():
    rng = np.random.default_rng(0)
    n = 600
    colour = rng.choice(["red", "green", "blue"], n).astype(object)  # text: made categorical by prepare
    size = rng.normal(size=n)
    size[rng.random(n) < 0.2] = np.nan
    noise = rng.normal(size=n)
    y = np.where(colour == "red", 3.0, 0.0) + np.nan_to_num(size, nan=-2.0) + rng.normal(scale=0.1, size=n)
    X = pd.DataFrame({"noise": noise, "colour": colour, "size": size})  # the categorical column is not first
    fold = FoldData(X.iloc[:450], y[:450], X.iloc[450:], y[450:], "regression", 0)
    result = _train(fold, "rmse", n_estimators=60, max_depth=3, learning_rate=0.3)
    assert result.scores["test_r2"] > 0.9
    assert set(result.extra_params["features_used"]) >= {"colour", "size"}
    without_colour = _train(FoldData(X.iloc[:450, [0, 2]], y[:450], X.iloc[450:, [0, 2]], y[450:], "regression", 0),
                            "rmse", n_estimators=60, max_depth=3, learning_rate=0.3)
    assert without_colour.scores["test_r2"] < 0.6  # colour is what the first model used


def test_training_is_deterministic():
    fold = _fold("breast_cancer")
    first, second = (_train(fold, "logloss", max_features=0.5) for _ in range(2))
    assert first.scores == second.scores
    np.testing.assert_array_equal(first.leaves["value"], second.leaves["value"])


@pytest.mark.parametrize("task", ["regression", "binary"])
@pytest.mark.parametrize("lam, learning_rate", [(0.0, 1.0), (1.0, 1.0), (5.0, 1.0), (2.0, 0.3), (50.0, 0.5)])
def test_stump_leaves_equal_the_closed_form(task, lam, learning_rate):
    """-G / (H + l2_regularization) * learning_rate, G and H at the starting score (mean / log-odds)."""
    y = REGRESSION_Y if task == "regression" else BINARY_Y
    X = pd.DataFrame({"x": FEATURE})
    fold = FoldData(X, y, X, y, task, 0 if task == "regression" else 2)
    result = _train(fold, "rmse" if task == "regression" else "logloss", n_estimators=1, max_leaves=2,
                    min_data_in_leaf=1, reg_lambda=lam, learning_rate=learning_rate)
    assert len(result.leaves["value"]) == 2, "the stump must split"
    mean = y.mean()
    margin = mean if task == "regression" else np.log(mean / (1 - mean))
    assert result.extra_params["fitted_baseline"] == pytest.approx(margin)
    g, h = gradients(task, y.astype("float64"), margin)
    left, right = FEATURE == 0.0, FEATURE == 1.0
    expected = sorted(closed_form_leaf(g[rows], h[rows], 0.0, lam, learning_rate) for rows in (left, right))
    np.testing.assert_allclose(sorted(result.leaves["value"]), expected, rtol=1e-6)  # float32 gradients
    np.testing.assert_array_equal(np.sort(result.leaves["cover"]), [4, 4])  # rows per leaf


def test_the_private_predictor_structure_is_read_or_refused_clearly(monkeypatch):
    from sklearn.ensemble import HistGradientBoostingClassifier

    fold = _fold("iris")
    model = HistGradientBoostingClassifier(max_iter=4, early_stopping=False, random_state=0).fit(fold.X_train,
                                                                                                fold.y_train)
    nodes, columns = read_predictor_nodes(model)
    leaves, n_trees, used = read_leaves(nodes)
    assert n_trees == 12 and len(nodes) == 4 and all(len(trees) == 3 for trees in nodes)
    assert list(columns) == [0, 1, 2, 3]
    # the leaves add up to the model's raw predictions: summing each row's leaf of every tree, by the same walk
    raw = model._raw_predict(fold.X_test)
    X = fold.X_test.to_numpy()
    total = np.tile(model._baseline_prediction, (len(X), 1))
    for iteration in nodes:
        for klass, tree in enumerate(iteration):
            for row in range(len(X)):
                node = 0
                while not tree["is_leaf"][node]:
                    go_left = X[row, tree["feature_idx"][node]] <= tree["num_threshold"][node]
                    node = tree["left"][node] if go_left else tree["right"][node]
                total[row, klass] += tree["value"][node]
    np.testing.assert_allclose(total, raw, rtol=1e-12)
    assert len(leaves["value"]) == sum(int(t["is_leaf"].sum()) for trees in nodes for t in trees)

    broken = np.zeros(3, dtype=[("value", "f8"), ("count", "u4")])  # a future layout without is_leaf etc.
    monkeypatch.setattr(model._predictors[0][0], "nodes", broken)
    with pytest.raises(RuntimeError, match="cannot read the trees of scikit-learn .*node fields missing: "
                                           "feature_idx, left, right, depth, is_leaf"):
        read_predictor_nodes(model)
    import sklearn

    monkeypatch.setattr(sklearn, "__version__", "1.99.0")
    with pytest.raises(RuntimeError, match=r"checked on 1\.6 to before 1\.10"):
        read_predictor_nodes(model)


def test_spec_vocabulary():
    assert LIBRARY.penalty_axes == ("reg_lambda",)
    assert problems_of(small_spec(models={"sklearn_hgb": {"reg_alpha": 1}}, sweep={"reg_lambda": [0, 1]})) == [
        "models.sklearn_hgb.reg_alpha: sklearn_hgb has no parameter 'reg_alpha' (xgboost, lightgbm have it); it has "
        "no L1 penalty on leaf values, only reg_lambda (L2)"]
    problems = problems_of(small_spec(models={"sklearn_hgb": {"max_bins": 256, "early_stopping": True,
                                                              "max_leaf_nodes": 1}}, sweep={"reg_lambda": [0]}))
    assert problems[0].startswith("models.sklearn_hgb.max_bins: must be a whole number ≥ 2 and ≤ 255, got 256; ")
    assert problems[1].startswith("models.sklearn_hgb.early_stopping: 'early_stopping' is set by gbreg to false")
    assert problems[2].startswith("models.sklearn_hgb.max_leaf_nodes: must be a whole number ≥ 2, got 1")
    spec = validate_spec(small_spec(models={"xgboost": {"n_estimators": 5}, "sklearn_hgb": {"n_estimators": 5}},
                                    sweep={"reg_alpha": [0, 1], "reg_lambda": [0, 2]}), source="s.yaml")
    points = {library: sorted(tuple(sorted(t.point.items())) for t in make_plan(spec) if t.library == library)
              for library in ("xgboost", "sklearn_hgb")}
    assert points["xgboost"] == [(("reg_alpha", a), ("reg_lambda", b)) for a in (0, 1) for b in (0, 2)]
    assert points["sklearn_hgb"] == [(("reg_lambda", 0),), (("reg_lambda", 2),)]  # reg_alpha: xgboost only
    assert all("reg_alpha" not in t.params for t in make_plan(spec) if t.library == "sklearn_hgb")


@pytest.mark.slow
def test_a_small_study_records_the_contract(tracking, tmp_path):
    from mlflow.tracking import MlflowClient

    from gbreg import load_spec, run_study

    raw = small_spec(models={"sklearn_hgb": {"n_estimators": 20, "max_leaf_nodes": 7, "learning_rate": 0.3}},
                     sweep={"reg_lambda": [0, 10]})
    outcome = run_study(load_spec(write_spec(tmp_path, raw)), jobs=1, verbosity=-1)
    client = MlflowClient(tracking.tracking_uri)
    runs = client.search_runs([outcome.experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'")
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    abs_means = {}
    for run in runs:
        metrics, params = run.data.metrics, run.data.params
        assert set(CONTRACT_METRICS) <= set(metrics), sorted(set(CONTRACT_METRICS) - set(metrics))
        assert metrics["n_trees"] == 20 and params["library"] == "sklearn_hgb"
        assert 140 < float(params["fitted_baseline"]) < 165  # the mean target of diabetes' training rows
        assert "gbreg.version.scikit-learn" in run.data.tags
        history = client.get_metric_history(run.info.run_id, "curve_test_rmse")
        assert [m.step for m in history] == list(range(1, 21))
        assert history[-1].value == pytest.approx(metrics["test_rmse"], rel=1e-6)
        leaves = pd.read_parquet(client.download_artifacts(run.info.run_id, "leaves.parquet"))
        assert len(leaves) == metrics["n_leaves"]
        abs_means[float(params["reg_lambda"])] = metrics["leaf_abs_mean"]
    assert abs_means[10.0] < abs_means[0.0]  # the L2 penalty shrinks the leaves


def test_gbreg_validate_checks_a_spec_with_sklearn_hgb(tmp_path):
    from typer.testing import CliRunner

    from gbreg.cli import app

    rejected = write_spec(tmp_path, small_spec(models={"sklearn_hgb": {"reg_alpha": 1}}, sweep={"reg_lambda": [0, 1]}))
    result = CliRunner().invoke(app, ["validate", str(rejected)])
    assert result.exit_code == 2
    assert "models.sklearn_hgb.reg_alpha: sklearn_hgb has no parameter 'reg_alpha'" in result.stderr
    both = write_spec(tmp_path, small_spec(models={"xgboost": {"n_estimators": 5}, "sklearn_hgb": {"n_estimators": 5}},
                                           sweep={"reg_alpha": [0, 1], "reg_lambda": [0, 2]}), "both.yaml")
    result = CliRunner().invoke(app, ["validate", str(both)])  # with the data: each library tries its grid's ends
    assert result.exit_code == 0, result.output
    assert "6 trials" in result.output  # xgboost 2 x 2, sklearn_hgb 2 (reg_alpha is xgboost's only)
