"""The booster registry: every library table gbreg reads derives from the adapters' declarations, and a
library registered in a test (scikit-learn's GradientBoostingRegressor behind a toy adapter) is known to
the spec's models: validation, the parameter resolution, the curve names and the library check without
an edit anywhere else."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import small_spec
from test_spec_limits import problems_of

from gbreg.models.boosters import (
    ADAPTERS,
    LIBRARIES,
    DeclaredAdapter,
    FoldData,
    Library,
    SplitResult,
    declaration,
    declarations,
    library_packages,
    register,
    unregister,
)
from gbreg.models.boosters.library import DETERMINISM, Range
from gbreg.models.metrics import native_curves, score_all
from gbreg.run import dask_cluster as execute_dask
from gbreg.run.param_check import ParamCheck, library_param_problems
from gbreg.spec import params
from gbreg.spec.validation import validate_spec
from gbreg.tracking import tracker as track

TOY = Library(
    name="toyboost", package="scikit-learn", module="sklearn",
    native_names={"n_estimators": "n_estimators", "learning_rate": "learning_rate", "max_depth": "max_depth",
                  "reg_lambda": "ccp_alpha", "subsample": "subsample"},  # no L1: reg_alpha is not its axis
    defaults={"n_estimators": 100, "learning_rate": 0.1, "max_depth": 3, "reg_lambda": 0.0, "subsample": 1.0},
    native_params=frozenset({"ccp_alpha", "max_features", "criterion"}),
    reserved={"random_state": DETERMINISM, "toy_threads": DETERMINISM},
    curve_metrics={"rmse": {"regression": "rmse"}, "r2": {"regression": "rmse"}},
    choices={"criterion": (("friedman_mse",), "the toy reads no other split criterion")},
    ranges={"max_depth": Range(True, 1)},
    message_cleaning=((r" Got .* instead\.$", ""),),
)


class ToyAdapter(DeclaredAdapter):
    """scikit-learn's GradientBoostingRegressor as a booster: enough to train, score and be rejected."""

    declaration = TOY

    def prepare(self, fold: FoldData, params: dict):
        return None

    def train(self, prepared, fold: FoldData, params: dict, metric: str, seed: int, threads: int) -> SplitResult:
        from sklearn.ensemble import GradientBoostingRegressor

        model = GradientBoostingRegressor(**TOY.to_native(params), random_state=seed).fit(fold.X_train, fold.y_train)
        p_train, p_test = model.predict(fold.X_train), model.predict(fold.X_test)
        return SplitResult(scores=score_all(("rmse",), fold.y_train, p_train, fold.y_test, p_test, fold.task))


@pytest.fixture
def toy():
    register(ToyAdapter())
    yield TOY
    unregister(TOY.name)


def test_every_library_table_derives_from_the_declarations():
    assert tuple(LIBRARIES)[:2] == ("xgboost", "lightgbm")  # registration order (later libraries follow)
    assert params.DEFAULTS == {lib.name: dict(lib.defaults) for lib in declarations()}
    assert params.NATIVE_PARAMS == {lib.name: lib.native_params for lib in declarations()}
    for shared, natives in params.SHARED_TO_NATIVE.items():
        assert natives == {lib.name: lib.native_names.get(shared) for lib in declarations()}
    assert params.RESERVED == frozenset().union(*(lib.reserved for lib in declarations()))
    for package in library_packages():
        assert package in track.VERSIONED_PACKAGES and package in execute_dask.MATCHED_PACKAGES
    assert declaration("lightgbm").penalty_axes == declaration("xgboost").penalty_axes == ("reg_alpha", "reg_lambda")
    assert declaration("lightgbm").curve_metric("mae", "regression") == "l1"
    assert declaration("xgboost").curve_metric("auc", "multiclass") is None


def test_a_registered_library_is_validated_resolved_and_curved(toy):
    assert tuple(LIBRARIES)[-1] == "toyboost"  # registered last
    spec = validate_spec(small_spec(models={"toyboost": {"learning_rate": 0.2, "ccp_alpha": 0.5}},
                                    sweep={"max_depth": [2, 4]}), source="s.yaml")
    assert spec.libraries() == {"toyboost": {"learning_rate": 0.2, "ccp_alpha": 0.5}}
    assert params.resolve_params("toyboost", {"ccp_alpha": 0.5}) == {**toy.defaults, "reg_lambda": 0.5}
    assert params.to_native("toyboost", {"reg_lambda": 2.0, "max_features": 3}) == {"ccp_alpha": 2.0, "max_features": 3}
    assert params.reserved_why()["toy_threads"] == DETERMINISM
    assert toy.penalty_axes == ("reg_lambda",)
    history = {"train": {"rmse": [2.0, 1.0]}, "test": {"rmse": [3.0, 2.0]}}
    y = np.array([0.0, 2.0])  # variance 1
    curves = native_curves(history, toy.curve_metric("r2", "regression"), "r2", y, y)
    np.testing.assert_allclose(curves["curve_test_r2"], [1 - 9.0, 1 - 4.0])


def test_a_registered_library_gets_the_usual_messages(toy):
    assert problems_of(small_spec(models={"toybost": {}})) == [
        "models.toybost: unknown library 'toybost'; did you mean 'toyboost'?"]
    assert problems_of(small_spec(models={})) == [
        f"models: at least one library is needed: {', '.join(tuple(LIBRARIES)[:-1])} and/or toyboost"]
    assert problems_of(small_spec(models={"toyboost": {"max_depht": 3, "toy_threads": 2, "criterion": "gini",
                                                       "max_depth": 0}}, sweep={"reg_alpha": [0, 1]})) == [
        "models.toyboost.max_depht: unknown toyboost parameter 'max_depht'; did you mean 'max_depth'?",
        "models.toyboost.toy_threads: 'toy_threads' is set by gbreg (threads, seeds, determinism)",
        "models.toyboost.criterion: must be 'friedman_mse', got 'gini': the toy reads no other split criterion",
        "models.toyboost.max_depth: must be a whole number ≥ 1, got 0",
        "sweep.reg_alpha: no library in models accepts 'reg_alpha'",
    ]
    # the toy's names are known to the other libraries' checks too: reserved everywhere
    assert problems_of(small_spec(models={"xgboost": {"toy_threads": 1}})) == [
        "models.xgboost.toy_threads: 'toy_threads' is set by gbreg (threads, seeds, determinism)"]


def test_a_registered_library_is_checked_with_its_own_message_cleaning(toy):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    check = ParamCheck(X, X["a"].to_numpy() * 2, "regression", 0, "rmse", {"toyboost": {"max_features": -3}},
                       {"reg_lambda": [0.0, 1.0]})
    assert ADAPTERS["toyboost"].train(None, FoldData(X, check.y, X, check.y, "regression", 0),
                                      params.resolve_params("toyboost", {}), "rmse", 0, 1).scores["train_rmse"] < 1
    ((path, message),) = library_param_problems(check)
    assert path == "models.toyboost.max_features"
    assert message.startswith("toyboost rejects max_features=-3: The 'max_features' parameter of "
                              "GradientBoostingRegressor must be ")
    assert "Got" not in message  # its message_cleaning ran


def test_unknown_libraries_are_reported_in_key_order_with_other_mistakes():
    raw = small_spec(models={"lightgmb": {}}, evaluation={"spilt": "kfold"}, sweeep={})
    assert problems_of(raw) == [
        "evaluation.spilt: unknown key 'spilt'; did you mean 'split'?",
        "models.lightgmb: unknown library 'lightgmb'; did you mean 'lightgbm'?",
        "sweeep: unknown key 'sweeep'; did you mean 'sweep'?",
    ]


def test_validate_imports_no_booster_library():
    code = ("import sys, gbreg.spec.validation, gbreg.spec.params, gbreg.models.boosters; "
            "print(sorted(m for m in ('xgboost', 'lightgbm', 'sklearn') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
