"""Boosters next to linear counterparts on real studies logged to a real (temporary) MLflow store:
comparison.csv, support_recovery.csv, the linear children's contract, and `gbreg results --comparison`."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from typer.testing import CliRunner

from gbreg import load_spec, run_study
from gbreg.cli import app

LINEAR_METRICS = ("n_nonzero_coef", "zero_coef_fraction", "coef_l1", "coef_l2", "n_features_used", "fit_seconds")


def _client(tracking):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking.tracking_uri)


def _artifact(client, run_id: str, name: str) -> pd.DataFrame:
    return pd.read_csv(client.download_artifacts(run_id, name))


def _children(client, outcome):
    return client.search_runs([outcome.experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'")


@pytest.fixture(scope="module")
def sparse_study(tmp_path_factory):
    """studies/synthetic_sparse.yaml on the pure-L1 axis (its reg_lambda = 0 column) at three penalties,
    run once for the tests that read it (a fresh store, as the ``tracking`` fixture makes)."""
    folder = tmp_path_factory.mktemp("sparse")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("GBREG_MLFLOW_CONFIG", raising=False)
        (folder / "mlflow.yaml").write_text("tracking_uri: sqlite:///mlflow.db\nartifact_location: mlartifacts\n")
        patch.chdir(folder)
        from gbreg.spec.tracking_config import load_tracking_config

        tracking = load_tracking_config()
        spec = load_spec(REPO / "studies" / "synthetic_sparse.yaml",
                         ["sweep.reg_alpha=[0, 1000, 3000]", "sweep.reg_lambda=[0]", "counterparts=[ols, lasso]"])
        outcome = run_study(spec, jobs=1, verbosity=-1)
        assert not outcome.failures
        yield spec, outcome, _client(tracking)


@pytest.mark.slow
def test_lasso_finds_the_true_support_where_booster_l1_only_zeroes_leaves(sparse_study):
    _, outcome, client = sparse_study
    table = _artifact(client, outcome.parent_run_id, "comparison.csv").set_index("reg_alpha")
    support = _artifact(client, outcome.parent_run_id, "support_recovery.csv")
    assert list(table.index) == [0.0, 1000.0, 3000.0] and (table["reg_lambda"] == 0).all()
    assert list(table["linear.model"]) == ["ols", "lasso", "lasso"]

    # Lasso: sparsity rises along reg_alpha; at 3000 its support is exactly the 5 informative features
    # and it predicts as well as OLS (within 5 %): a moderate penalty
    zero_coef = table["linear.zero_coef_fraction"].to_numpy()
    assert zero_coef[0] == 0 and np.all(np.diff(zero_coef) > 0) and zero_coef[-1] == pytest.approx(0.75)
    lasso = support[(support["model"] == "lasso") & (support["reg_alpha"] == 3000)].iloc[0]
    assert bool(lasso["support_exact"]) and lasso["n_used"] == lasso["n_true"] == 5
    assert table.loc[3000, "linear.test_rmse"] < 1.05 * table.loc[0, "linear.test_rmse"]

    for library in ("xgboost", "lightgbm"):
        # the same L1 on leaf weights zeroes leaves (a rising fraction, over a third at 3000) …
        zero_leaves = table[f"{library}.zero_leaf_fraction"].to_numpy()
        assert zero_leaves[0] == 0 and np.all(np.diff(zero_leaves) > 0) and zero_leaves[-1] > 0.33
        # … but keeps splitting on noise features: every true feature used, and more besides
        row = support[(support["model"] == library) & (support["reg_alpha"] == 3000)].iloc[0]
        assert row["support_recall"] == 1.0 and row["n_used"] > row["n_true"]
        assert table.loc[3000, f"{library}.support_precision"] < 1.0
        assert table.loc[3000, f"{library}.n_features_used"] > table.loc[3000, "linear.n_features_used"]


@pytest.mark.slow
def test_linear_children_record_the_contract(sparse_study):
    _, outcome, client = sparse_study
    children = _children(client, outcome)
    linear = [r for r in children if r.data.tags["gbreg.kind"] == "linear"]
    boosters = [r for r in children if r.data.tags["gbreg.kind"] == "booster"]
    assert len(linear) == 3 and len(boosters) == 6
    for run in linear:
        params, metrics = run.data.params, run.data.metrics
        assert params["library"] == "sklearn" and params["kind"] == "linear"
        assert {"train_rmse", "test_rmse", "gap_rmse", "test_r2", *LINEAR_METRICS} <= set(metrics)
        coefficients = pd.read_csv(client.download_artifacts(run.info.run_id, "coefficients.csv"))
        assert list(coefficients.columns[:3]) == ["feature", "klass", "coef"] and len(coefficients) == 20
        assert (coefficients["coef"] != 0).sum() == metrics["n_nonzero_coef"]
        assert json.loads(params["features_used"]) == sorted(
            coefficients.loc[coefficients["coef"] != 0, "feature"], key=lambda name: int(name[1:]))
    lasso = next(r for r in linear if r.info.run_name == "lasso α=3000 λ=0")
    n_train = 1125  # 1500 rows, test_size 0.25
    assert float(lasso.data.params["sklearn_alpha"]) == pytest.approx(3000 / n_train)
    assert lasso.data.params["estimator"] == "Lasso" and lasso.data.params["converged"] == "True"


@pytest.mark.slow
def test_results_command_prints_the_comparison(sparse_study):
    _, outcome, client = sparse_study
    result = CliRunner().invoke(app, ["results", "synthetic_sparse", "--comparison", "--format", "csv"])
    assert result.exit_code == 0, result.output
    shown = pd.read_csv(io.StringIO(result.stdout))
    logged = _artifact(client, outcome.parent_run_id, "comparison.csv")
    pd.testing.assert_frame_equal(shown, logged)
    assert {"xgboost.test_rmse", "lightgbm.zero_leaf_fraction", "linear.zero_coef_fraction"} <= set(shown.columns)


@pytest.mark.slow
def test_classification_counterparts_run_on_the_same_grid(tracking):
    spec = load_spec(REPO / "studies" / "breast_cancer.yaml",
                     ["sweep.reg_alpha=[0, 1]", "sweep.reg_lambda=[0, 10]", "models.xgboost.n_estimators=20",
                      "models.lightgbm.n_estimators=20"])
    outcome = run_study(spec, jobs=1, verbosity=-1)
    assert not outcome.failures
    client = _client(tracking)
    table = _artifact(client, outcome.parent_run_id, "comparison.csv")
    assert len(table) == 4
    # a logistic counterpart at every grid point, C = 1/(α + λ) and l1_ratio = α/(α + λ)
    assert list(zip(table["reg_alpha"], table["reg_lambda"], table["logistic.model"])) == [
        (0, 0, "logistic_l2"), (0, 10, "logistic_l2"), (1, 0, "logistic_l1"), (1, 10, "logistic_elasticnet")]
    for column in ("logistic.test_logloss", "logistic.test_auc", "xgboost.test_logloss", "lightgbm.test_logloss"):
        assert table[column].notna().all(), column
    assert table.loc[table["reg_alpha"] > 0, "logistic.zero_coef_fraction"].min() > 0
    # linear SVMs only where a pure penalty has a finite C
    svm = table.set_index(["reg_alpha", "reg_lambda"])["linear_svm.model"]
    assert svm.dropna().to_dict() == {(0, 10): "linear_svm_l2", (1, 0): "linear_svm_l1"}
    assert svm.isna().tolist() == [True, False, False, True]
    runs = {r.info.run_name: r for r in _children(client, outcome) if r.data.tags["gbreg.kind"] == "linear"}
    assert len(runs) == 6
    elastic = runs["logistic_elasticnet α=1 λ=10"].data.params
    assert float(elastic["C"]) == pytest.approx(1 / 11) and float(elastic["l1_ratio"]) == pytest.approx(1 / 11)
    assert "penalty" not in elastic and elastic["solver"] == "saga"
    assert runs["logistic_l2 α=0 λ=0"].data.params["C"] == "inf"
    assert 0 < runs["linear_svm_l1 α=1 λ=0"].data.metrics["test_logloss"] < 0.7
