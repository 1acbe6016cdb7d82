"""XGBoost adapter: ``QuantileDMatrix`` (training) and ``DMatrix`` (test) built once per split,
``xgb.train`` per grid point, leaves read from the exact JSON model (``save_raw('json')``, parsed by
orjson: 5 ms instead of 20 ms for 200 trees)."""

from __future__ import annotations

import time
from itertools import chain

import numpy as np
import pandas as pd

from gbreg.catalogue import METRICS_BY_TASK
from gbreg.models.boosters.adapter import DeclaredAdapter, FoldData, SplitResult
from gbreg.models.boosters.library import (
    BINARY_ONLY,
    CATEGORICAL,
    CATEGORICAL_ONLY,
    CURVE_METRIC,
    DART,
    DETERMINISM,
    NUM_CLASS,
    OBJECTIVE,
    TASK,
    Library,
    Needs,
    Range,
)
from gbreg.models.leaf_mechanism import (
    leaf_mechanism,
    xgboost_base_margin,
    xgboost_loss,
    xgboost_penalty,
    xgboost_skip_reason,
)
from gbreg.models.metrics import native_curves, score_all
from gbreg.models.trees import leaf_table, node_depths, tree_stats

OBJECTIVES = {"regression": "reg:squarederror", "binary": "binary:logistic", "multiclass": "multi:softprob"}

# The defaults are XGBoost's own (checked against its resolved config in tests/test_params.py), except
# n_estimators: xgb.train has no number of rounds of its own, so gbreg uses 100, as XGBRegressor does.
LIBRARY = Library(
    name="xgboost", package="xgboost", module="xgboost",
    native_names={
        "n_estimators": "num_boost_round", "learning_rate": "eta", "max_depth": "max_depth", "reg_alpha": "alpha",
        "reg_lambda": "lambda", "min_child_weight": "min_child_weight", "subsample": "subsample",
        "colsample_bytree": "colsample_bytree", "max_bin": "max_bin", "gamma": "gamma", "max_leaves": "max_leaves",
    },
    defaults={
        "n_estimators": 100, "learning_rate": 0.3, "max_depth": 6, "reg_alpha": 0.0, "reg_lambda": 1.0,
        "min_child_weight": 1.0, "gamma": 0.0, "subsample": 1.0, "colsample_bytree": 1.0, "max_bin": 256,
        "max_leaves": 0,
    },
    # kept static so that `gbreg validate` needs no ML import; tests/test_params.py checks them against XGBoost
    native_params=frozenset({
        "eta", "gamma", "min_split_loss", "max_depth", "min_child_weight", "max_delta_step", "subsample",
        "sampling_method", "colsample_bytree", "colsample_bylevel", "colsample_bynode", "lambda", "alpha",
        "tree_method", "scale_pos_weight", "refresh_leaf", "process_type", "grow_policy", "max_leaves",
        "max_bin", "num_parallel_tree", "monotone_constraints", "interaction_constraints",
        "max_cat_to_onehot", "max_cat_threshold", "base_score", "booster", "num_boost_round",
    }),
    reserved={
        **dict.fromkeys(("nthread", "n_jobs", "seed", "random_state", "verbosity", "seed_per_iteration"), DETERMINISM),
        "objective": OBJECTIVE, "num_class": NUM_CLASS, "eval_metric": CURVE_METRIC,
        "validate_parameters": "to true, so that a parameter XGBoost does not use is an error",
    },
    # r2 per round is 1 - rmse^2 / var(y) of that set; accuracy is 1 - error (gbreg.models.metrics.CURVE_TRANSFORMS)
    curve_metrics={
        "rmse": {"regression": "rmse"}, "mae": {"regression": "mae"}, "r2": {"regression": "rmse"},
        "logloss": {"binary": "logloss", "multiclass": "mlogloss"}, "auc": {"binary": "auc"},
        "accuracy": {"binary": "error", "multiclass": "merror"},
    },
    dataset_params=frozenset({"max_bin", "max_cat_to_onehot", "max_cat_threshold"}),
    # gbreg reads every model's trees as sums of leaf weights and trains on a QuantileDMatrix
    choices={
        "booster": (("gbtree",), f"gblinear grows no trees to read; {DART}"),
        "tree_method": (("hist",), "gbreg trains on a QuantileDMatrix, which only 'hist' can use"),
        "process_type": (("default",), "'update' refreshes an existing model; gbreg trains new ones"),
    },
    ranges={"max_depth": Range(True, 0)},  # 0: no limit (XGBoost rejects negative depths)
    # parameters that take effect only in some settings (gbreg.spec.effect refuses them elsewhere)
    needs={
        "scale_pos_weight": (Needs(TASK, ("binary",), idle=(1, 1.0), why=BINARY_ONLY),),
        "refresh_leaf": (Needs("process_type", ("update",), absent="default", why=(
            "with process_type: update (the refresh updater), which gbreg refuses: it trains new models; "
            "remove it")),),
        **dict.fromkeys(("max_cat_threshold", "max_cat_to_onehot"), (Needs(CATEGORICAL, (True,),
                                                                           why=CATEGORICAL_ONLY),)),
    },
    aliases={"min_split_loss": "gamma"},
    message_cleaning=(
        (r"\s*Stack trace:.*", ""),  # the C++ backtrace: [bt] (0) /.../libxgboost.so ...
        (r"^\[\d\d:\d\d:\d\d\] \S+:\d+: ", ""),  # the [time] file:line: prefix
        (r"^(value \S+ for Parameter \w+ should be .*?-?\d[\d.e+-]*) .*", r"\1"),  # the parameter help text
    ),
)


def matrix_values(X: pd.DataFrame) -> pd.DataFrame | np.ndarray:
    """What a DMatrix is built from: the values without column names when every column is a plain number.

    XGBoost reads a matrix's feature names and types back from C at every round, for the training set
    and for each evaluated set, and compares them with the booster's: a cost that grows with features ×
    rounds, for names gbreg never asks XGBoost for (it names the features itself, by column index). The
    trees, curves and predictions are the same bit for bit (tests/test_boosters.py). Any other frame
    (categorical columns, which XGBoost recodes by category name) is passed as is.
    """
    if all(isinstance(dtype, np.dtype) and dtype.kind in "fiub" for dtype in X.dtypes):
        return X.to_numpy(dtype="float64")
    return X


class XGBoostAdapter(DeclaredAdapter):
    declaration = LIBRARY

    def prepare(self, fold: FoldData, params: dict):
        import xgboost as xgb

        max_bin = int(params.get("max_bin", 256))
        train = xgb.QuantileDMatrix(matrix_values(fold.X_train), fold.y_train, enable_categorical=True,
                                    max_bin=max_bin, nthread=1)
        # The test set as a plain DMatrix: evaluating on it each round is about 45 ms a trial (2%) cheaper
        # than on a QuantileDMatrix sharing the training cuts, with the same curves and predictions.
        test = xgb.DMatrix(matrix_values(fold.X_test), fold.y_test, enable_categorical=True, nthread=1)
        return train, test

    def native_params(self, params: dict, task: str, n_classes: int, metric: str, seed: int, threads: int) -> dict:
        native = LIBRARY.to_native({k: v for k, v in params.items() if k != "n_estimators"})
        native.update(objective=OBJECTIVES[task], tree_method=native.get("tree_method", "hist"), nthread=threads,
                      seed=seed, verbosity=0, validate_parameters=True)
        if task == "multiclass":
            native["num_class"] = n_classes
        curve = LIBRARY.curve_metric(metric, task)
        if curve:
            native["eval_metric"] = curve
        if native.get("max_leaves") == 0:
            native.pop("max_leaves")
        return native

    def train(self, prepared, fold: FoldData, params: dict, metric: str, seed: int, threads: int) -> SplitResult:
        import xgboost as xgb

        dtrain, dtest = prepared
        native = self.native_params(params, fold.task, fold.n_classes, metric, seed, threads)
        rounds = int(params["n_estimators"])
        history: dict = {}
        start = time.perf_counter()
        booster = xgb.train(native, dtrain, num_boost_round=rounds, evals=[(dtrain, "train"), (dtest, "test")],
                            evals_result=history, verbose_eval=False)
        fit_seconds = time.perf_counter() - start
        p_train, p_test = _probabilities(booster.predict(dtrain)), _probabilities(booster.predict(dtest))
        scores = score_all(METRICS_BY_TASK[fold.task], fold.y_train, p_train, fold.y_test, p_test, fold.task)
        curves = native_curves(history, LIBRARY.curve_metric(metric, fold.task), metric, fold.y_train, fold.y_test)
        model = _load_model_json(booster.save_raw("json"))
        # per-row leaf ids of the training set, only while the booster lives (gbreg.models.leaf_mechanism)
        leaf_index = None if xgboost_skip_reason(native) else booster.predict(dtrain, pred_leaf=True)
        del booster
        leaves, n_trees, used = read_leaves(model)
        learner = model["learner"]
        mechanism = mechanism_metrics(leaves, leaf_index, fold, native, learner)
        return SplitResult(
            scores=scores, curves=curves, leaves=leaves, stats={**tree_stats(leaves, n_trees, len(used)), **mechanism},
            fit_seconds=fit_seconds,
            extra_params=read_back_params(learner, params, [str(fold.X_train.columns[i]) for i in sorted(used)]),
        )


def mechanism_metrics(leaves: dict, leaf_index, fold: FoldData, native: dict, learner: dict) -> dict[str, float]:
    """The mechanism metrics of ``gbreg.models.leaf_mechanism`` (NaN when ``leaf_index`` is None: the closed form
    does not apply)."""
    base_margin = xgboost_base_margin(learner["learner_model_param"]["base_score"], native["objective"])
    stats, _, _ = leaf_mechanism(
        leaf_index, leaves, fold.y_train, base_margin, xgboost_loss(fold.task), xgboost_penalty(native))
    return stats


def read_back_params(learner: dict, params: dict, features_used: list[str]) -> dict:
    """Values read from the trained model, logged beside the parameters that were set.

    None of these names may be one a spec can set, or the user's value and the model's would fight over
    one MLflow param (MLflow refuses to change a logged param). The model's starting score is therefore
    ``fitted_base_score`` (XGBoost 3 stores it as a vector string, ``[5E-1]``; logged as numbers). The
    name ``base_score`` keeps the model's raw value, as it always has, only for trials whose spec left
    ``base_score`` unset: a value the user set is logged as set.
    """
    raw = learner["learner_model_param"]["base_score"]
    extra: dict = {"fitted_base_score": parse_base_score(raw), "features_used": features_used}
    if "base_score" not in params:
        extra["base_score"] = raw
    return extra


def parse_base_score(raw: str) -> float | list[float]:
    """``"5E-1"`` or ``"[5E-1]"`` -> 0.5; a vector of several values (multi-output) -> a list."""
    values = [float(v) for v in raw.strip("[]").split(",") if v.strip()]
    return values[0] if len(values) == 1 else values


def _load_model_json(raw: bytes) -> dict:
    """orjson, or the standard library where the model holds non-finite numbers (a diverged training),
    which XGBoost writes as ``NaN``/``Infinity`` and only ``json`` reads."""
    import orjson

    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        import json

        return json.loads(raw)


def _probabilities(prediction: np.ndarray) -> np.ndarray:
    """float64, and multiclass rows renormalized (float32 softmax rows sum to 1 only within ~1e-7)."""
    prediction = prediction.astype("float64")
    if prediction.ndim == 2:
        prediction /= prediction.sum(axis=1, keepdims=True)
    return prediction


def read_leaves(model: dict) -> tuple[dict[str, np.ndarray], int, set[int]]:
    """Leaf table, tree count and the indices of the features used in splits, from the JSON model; the
    nodes of every tree are taken at once (a Python step per node cost about 1 ms a trial of 100 trees)."""
    booster = model["learner"]["gradient_booster"]
    trees = booster["model"]["trees"]

    def nodes(field: str, dtype: str) -> np.ndarray:
        return np.array(list(chain.from_iterable(tree[field] for tree in trees)), dtype=dtype)

    sizes = np.array([len(tree["left_children"]) for tree in trees], dtype=np.int64)
    tree_start = np.repeat(np.cumsum(sizes) - sizes, sizes)  # node ids are per tree; children follow parents
    left, right = nodes("left_children", "int64"), nodes("right_children", "int64")
    internal = left != -1
    parents = np.flatnonzero(internal)
    children = np.concatenate([left[internal], right[internal]]) + np.concatenate([tree_start[internal]] * 2)
    depth = node_depths(np.concatenate([parents, parents]), children, len(left))
    leaf = ~internal
    tree_of_node = np.repeat(np.arange(len(trees)), sizes)
    used = set(nodes("split_indices", "int64")[internal].tolist())
    return (leaf_table(tree=tree_of_node[leaf],
                       klass=np.asarray(booster["model"]["tree_info"], dtype=np.int64)[tree_of_node[leaf]],
                       leaf=(np.arange(len(left)) - tree_start)[leaf], value=nodes("split_conditions", "float64")[leaf],
                       cover=nodes("sum_hessian", "float64")[leaf], depth=depth[leaf]),
            len(trees), used)
