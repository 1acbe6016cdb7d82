"""The shared-parameter table agrees with what the libraries themselves resolve."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from gbreg.spec.params import DEFAULTS, NATIVE_PARAMS, SHARED_TO_NATIVE, to_native


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    return rng.random((60, 3)), rng.random(60)


def test_xgboost_defaults_match_its_resolved_config(tiny):
    import xgboost as xgb

    booster = xgb.train({}, xgb.DMatrix(*tiny), num_boost_round=1)
    resolved = json.loads(booster.save_config())["learner"]["gradient_booster"]["tree_train_param"]
    for shared, value in DEFAULTS["xgboost"].items():
        native = SHARED_TO_NATIVE[shared]["xgboost"]
        if shared == "n_estimators":
            continue
        assert float(resolved[native]) == pytest.approx(value, rel=1e-6), shared


def test_lightgbm_defaults_match_its_resolved_parameters(tiny):
    import lightgbm as lgb

    booster = lgb.train({"verbose": -1}, lgb.Dataset(*tiny), num_boost_round=1)
    section = booster.model_to_string().split("parameters:")[1]
    resolved = dict(re.findall(r"\[(\w+): ([^\]]*)\]", section))
    for shared, value in DEFAULTS["lightgbm"].items():
        if shared == "n_estimators":
            continue
        native = SHARED_TO_NATIVE[shared]["lightgbm"]
        assert float(resolved[native]) == pytest.approx(value), shared


def test_every_xgboost_native_name_is_used_by_xgboost(tiny):
    import xgboost as xgb

    skip = {"num_boost_round", "objective", "eval_metric", "validate_parameters", "booster", "base_score",
            "process_type", "refresh_leaf", "monotone_constraints", "interaction_constraints"}
    names = sorted(NATIVE_PARAMS["xgboost"] - skip)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        xgb.train({name: 1 for name in names} | {"tree_method": "hist", "grow_policy": "depthwise",
                                                  "sampling_method": "uniform", "eta": 0.3, "max_depth": 2,
                                                  "max_bin": 16, "max_cat_to_onehot": 4, "max_cat_threshold": 8},
                  xgb.DMatrix(*tiny), num_boost_round=1)
    unused = [str(w.message) for w in caught if "not used" in str(w.message)]
    assert unused == []


def test_every_lightgbm_native_name_is_a_lightgbm_parameter():
    from lightgbm.basic import _ConfigAliases

    known = set(_ConfigAliases._get_all_param_aliases())
    aliases = {alias for names in _ConfigAliases._get_all_param_aliases().values() for alias in names}
    unknown = sorted(n for n in NATIVE_PARAMS["lightgbm"] - {"num_boost_round"} if n not in known | aliases)
    assert unknown == []


def test_to_native_translates_penalties_for_each_library():
    assert to_native("xgboost", {"reg_alpha": 1, "reg_lambda": 2, "gamma": 3}) == {"alpha": 1, "lambda": 2, "gamma": 3}
    assert to_native("lightgbm", {"reg_alpha": 1, "reg_lambda": 2, "num_leaves": 7}) == {
        "lambda_l1": 1, "lambda_l2": 2, "num_leaves": 7}
