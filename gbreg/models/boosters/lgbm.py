"""LightGBM adapter: one constructed ``lgb.Dataset`` per split (penalties are booster parameters, so it
is reused across the grid), ``lgb.train`` per grid point, leaves parsed from ``model_to_string()``.

LightGBM normally folds its starting score (mean target, log-odds, log class priors) into the first
tree's leaves. gbreg passes the same starting score as ``init_score`` with ``boost_from_average=False``
instead: the trees are the ones LightGBM would grow, and every leaf value is what the trees learned, as
with XGBoost's separate ``base_score``. Training is deterministic (``deterministic``, ``force_row_wise``,
fixed seed and thread count).
"""

from __future__ import annotations

import re
import time

import numpy as np

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
)
from gbreg.models.leaf_mechanism import (
    leaf_mechanism,
    lightgbm_fitted_leaves,
    lightgbm_loss,
    lightgbm_penalty,
    lightgbm_skip_reason,
)
from gbreg.models.metrics import native_curves, probabilities_from_margin, score_all
from gbreg.models.trees import leaf_table, node_depths, tree_stats

OBJECTIVES = {"regression": "regression", "binary": "binary", "multiclass": "multiclass"}

# The defaults are LightGBM's own (checked against its resolved config in tests/test_params.py), except
# n_estimators: lgb.train has no number of rounds of its own, so gbreg uses 100, as LGBMRegressor does.
LIBRARY = Library(
    name="lightgbm", package="lightgbm", module="lightgbm",
    native_names={
        "n_estimators": "num_boost_round", "learning_rate": "learning_rate", "max_depth": "max_depth",
        "reg_alpha": "lambda_l1", "reg_lambda": "lambda_l2", "min_child_weight": "min_sum_hessian_in_leaf",
        "subsample": "bagging_fraction", "colsample_bytree": "feature_fraction", "max_bin": "max_bin",
        "min_split_gain": "min_gain_to_split", "num_leaves": "num_leaves", "min_data_in_leaf": "min_data_in_leaf",
    },
    defaults={
        "n_estimators": 100, "learning_rate": 0.1, "max_depth": -1, "reg_alpha": 0.0, "reg_lambda": 0.0,
        "min_child_weight": 1e-3, "min_split_gain": 0.0, "subsample": 1.0, "colsample_bytree": 1.0,
        "max_bin": 255, "num_leaves": 31, "min_data_in_leaf": 20,
    },
    # kept static so that `gbreg validate` needs no ML import; tests/test_params.py checks them against LightGBM
    native_params=frozenset({
        "boosting", "num_boost_round", "learning_rate", "num_leaves", "tree_learner", "max_depth",
        "min_data_in_leaf", "min_sum_hessian_in_leaf", "bagging_fraction", "pos_bagging_fraction",
        "neg_bagging_fraction", "bagging_freq", "feature_fraction", "feature_fraction_bynode",
        "extra_trees", "max_delta_step", "lambda_l1", "lambda_l2", "linear_lambda", "min_gain_to_split",
        "min_split_gain", "drop_rate", "max_drop", "skip_drop", "path_smooth", "max_bin",
        "min_data_in_bin", "min_data_per_group", "max_cat_threshold", "cat_l2", "cat_smooth",
        "max_cat_to_onehot", "monotone_constraints", "interaction_constraints",
        "top_rate", "other_rate", "use_quantized_grad", "num_grad_quant_bins",
        "feature_pre_filter", "linear_tree", "is_unbalance", "scale_pos_weight", "sigmoid",
    }),
    reserved={
        **dict.fromkeys((
            "num_threads", "n_jobs", "seed", "random_state", "verbose", "deterministic", "force_row_wise",
            "force_col_wise", "bagging_seed", "feature_fraction_seed", "data_random_seed"), DETERMINISM),
        "objective": OBJECTIVE, "num_class": NUM_CLASS, "metric": CURVE_METRIC,
        "boost_from_average": ("to false: LightGBM's starting score is passed as init_score instead, so that every "
                               "leaf holds what the trees learned, as with XGBoost's base_score"),
    },
    curve_metrics={
        "rmse": {"regression": "rmse"}, "mae": {"regression": "l1"}, "r2": {"regression": "rmse"},
        "logloss": {"binary": "binary_logloss", "multiclass": "multi_logloss"}, "auc": {"binary": "auc"},
        "accuracy": {"binary": "binary_error", "multiclass": "multi_error"},
    },
    # Dataset parameters: a sweep over one of these needs one Dataset per value
    dataset_params=frozenset({
        "max_bin", "min_data_in_bin", "min_data_in_leaf", "feature_pre_filter", "max_cat_to_onehot",
        "max_cat_threshold", "cat_l2", "cat_smooth", "min_data_per_group", "linear_tree",
    }),
    choices={
        "boosting": (("gbdt", "gbrt", "goss"), f"'rf' averages trees and takes no init_score; {DART}"),
        "linear_tree": ((False,), "linear trees add a linear model to each leaf, which the leaf analysis does not see"),
    },
    message_cleaning=((r"\s+at \S+\.(cpp|cc|h), line \d+\s*\.?", ""),),  # the C++ source location
    needs={
        # bagging_fraction means something only with a frequency: left out, gbreg sets bagging_freq 1 when
        # subsample < 1 (LightGBMAdapter.native_params), so only an explicit 0 turns it off
        "subsample": (Needs("bagging_freq", (0,), but=True, absent=1, idle=(1, 1.0), why=(
            "with bagging_freq 1 or more (0 turns bagging off): leave bagging_freq out (gbreg then bags "
            "every round when subsample < 1) or set it to 1 or more, or keep subsample at 1")),),
        **dict.fromkeys(("drop_rate", "max_drop", "skip_drop"), (Needs("boosting", ("dart",), absent="gbdt", why=(
            f"with boosting: dart, which gbreg refuses ({DART}): remove it")),)),
        **dict.fromkeys(("top_rate", "other_rate"), (Needs("boosting", ("goss",), absent="gbdt", why=(
            "with boosting: goss (gradient-based one-side sampling): set boosting: goss or remove it")),)),
        "linear_lambda": (Needs("linear_tree", (True,), absent=False, idle=(0, 0.0), why=(
            "with linear_tree: true, which gbreg refuses (linear trees add a linear model to each leaf, which "
            "the leaf analysis does not see): remove it")),),
        "scale_pos_weight": (Needs(TASK, ("binary",), idle=(1, 1.0), why=BINARY_ONLY),),
        "is_unbalance": (Needs(TASK, ("binary",), idle=(False,), why=BINARY_ONLY),),
        "pos_bagging_fraction": (Needs(TASK, ("binary",), idle=(1, 1.0), why=BINARY_ONLY),),
        "neg_bagging_fraction": (Needs(TASK, ("binary",), idle=(1, 1.0), why=BINARY_ONLY),),
        **dict.fromkeys(("max_cat_threshold", "cat_l2", "cat_smooth", "max_cat_to_onehot", "min_data_per_group"),
                        (Needs(CATEGORICAL, (True,), why=CATEGORICAL_ONLY),)),
    },
)


def starting_score(y: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    """LightGBM's own BoostFromScore: mean (L2), log-odds of the mean (binary), log priors (softmax)."""
    if task == "regression":
        return np.array([np.mean(y)])
    if task == "binary":
        p = np.clip(np.mean(y), 1e-15, 1 - 1e-15)
        return np.array([np.log(p / (1 - p))])
    priors = np.bincount(y.astype("int64"), minlength=n_classes) / len(y)
    return np.log(np.maximum(priors, 1e-15))


class LightGBMAdapter(DeclaredAdapter):
    declaration = LIBRARY

    def prepare(self, fold: FoldData, params: dict):
        import lightgbm as lgb

        dataset_params = dict(self.dataset_key(params))
        dataset_params.update(verbose=-1, num_threads=1)
        init = starting_score(fold.y_train, fold.task, fold.n_classes)
        train = lgb.Dataset(fold.X_train, fold.y_train, params=dataset_params, free_raw_data=False,
                            init_score=np.tile(init, (len(fold.y_train), 1)) if len(init) > 1
                            else np.full(len(fold.y_train), init[0]))
        test = lgb.Dataset(fold.X_test, fold.y_test, reference=train, free_raw_data=False, params=dataset_params,
                           init_score=np.tile(init, (len(fold.y_test), 1)) if len(init) > 1
                           else np.full(len(fold.y_test), init[0]))
        train.construct()
        test.construct()
        return train, test, init

    def native_params(self, params: dict, task: str, n_classes: int, metric: str, seed: int, threads: int) -> dict:
        native = LIBRARY.to_native({k: v for k, v in params.items() if k != "n_estimators"})
        curve = LIBRARY.curve_metric(metric, task)
        native.update(objective=OBJECTIVES[task], metric=curve or "None", num_threads=threads,
                      seed=seed, deterministic=True, force_row_wise=True, verbose=-1, boost_from_average=False)
        if task == "multiclass":
            native["num_class"] = n_classes
        if float(native.get("bagging_fraction", 1.0)) < 1.0:  # subsample means something only with a frequency
            native.setdefault("bagging_freq", 1)
        return native

    def train(self, prepared, fold: FoldData, params: dict, metric: str, seed: int, threads: int) -> SplitResult:
        import lightgbm as lgb

        dtrain, dtest, init = prepared
        native = self.native_params(params, fold.task, fold.n_classes, metric, seed, threads)
        history: dict = {}
        start = time.perf_counter()
        booster = lgb.train(native, dtrain, num_boost_round=int(params["n_estimators"]),
                            valid_sets=[dtrain, dtest], valid_names=["train", "test"],
                            callbacks=[lgb.record_evaluation(history)], keep_training_booster=True)
        fit_seconds = time.perf_counter() - start
        p_train = _predictions(booster, 0, fold.X_train, init, fold.task)
        p_test = _predictions(booster, 1, fold.X_test, init, fold.task)
        scores = score_all(METRICS_BY_TASK[fold.task], fold.y_train, p_train, fold.y_test, p_test, fold.task)
        curves = native_curves(history, LIBRARY.curve_metric(metric, fold.task), metric, fold.y_train, fold.y_test)
        model_text = booster.model_to_string()
        # per-row leaf ids of the training set, only while the booster lives (gbreg.models.leaf_mechanism)
        categorical = any(str(dtype) == "category" for dtype in fold.X_train.dtypes)
        leaf_index = (None if lightgbm_skip_reason(native, categorical)
                      else booster.predict(fold.X_train, pred_leaf=True, num_threads=threads))
        del booster
        leaves, n_trees, used = read_leaves(model_text, fold.n_classes if fold.task == "multiclass" else 1)
        mechanism = mechanism_metrics(leaves, leaf_index, fold, native, init)
        return SplitResult(scores=scores, curves=curves, leaves=leaves,
                           stats={**tree_stats(leaves, n_trees, len(used)), **mechanism},
                           fit_seconds=fit_seconds,
                           extra_params={"init_score": [float(v) for v in init],
                                         "features_used": [str(fold.X_train.columns[i]) for i in sorted(used)]})


def mechanism_metrics(leaves: dict, leaf_index, fold: FoldData, native: dict, init: np.ndarray) -> dict[str, float]:
    """The mechanism metrics of ``gbreg.models.leaf_mechanism`` (NaN when ``leaf_index`` is None: the closed form
    does not apply). Unsplit trees (a constant 0) are left out."""
    stats, _, _ = leaf_mechanism(
        leaf_index, leaves, fold.y_train, init, lightgbm_loss(fold.task, fold.n_classes), lightgbm_penalty(native),
        lightgbm_fitted_leaves(leaves))
    return stats


def _predictions(booster, data_index: int, X, init: np.ndarray, task: str) -> np.ndarray:
    """Predictions on the training (0) or test (1) set of a booster kept with its data sets.

    LightGBM already holds them: its score buffers (init_score included) are what it evaluated the
    last round on, read through ``LGBM_BoosterGetPredict`` with the objective's output transform
    (identity, sigmoid, softmax). That costs nothing, where predicting again walks every tree for every
    row (about 0.13 s a trial on 20,000 x 50 with 200 trees). The two agree to about 1e-15.
    """
    inner = getattr(booster, "_Booster__inner_predict", None)
    if inner is None:  # pragma: no cover - a LightGBM without the buffer accessor
        return _predict(booster, X, init, task)
    values = np.array(inner(data_idx=data_index), dtype="float64")  # a copy: the buffer is reused
    if task == "multiclass":
        values /= values.sum(axis=1, keepdims=True)
    return values


def _predict(booster, X, init: np.ndarray, task: str) -> np.ndarray:
    return probabilities_from_margin(booster.predict(X, raw_score=True) + (init if task == "multiclass" else init[0]),
                                     task)


def read_leaves(model_text: str, trees_per_iteration: int) -> tuple[dict[str, np.ndarray], int, set[int]]:
    """Leaf table, tree count and the indices of the features used in splits, from the model string.

    One regular-expression pass picks the lines the table needs; the numbers of every tree are then
    converted and the depths found for all trees at once (a Python loop per tree and node cost about
    3 ms a trial of 100 small trees)."""
    trees: list[dict[str, str]] = []
    end = model_text.find("\nend of trees")
    for key, value in _TREE_LINE.findall(model_text, 0, end if end >= 0 else len(model_text)):
        if key == "Tree":
            trees.append({})
        trees[-1][key] = value
    n_leaves = np.array([int(tree["num_leaves"]) for tree in trees], dtype=np.int64)
    leaf_start = np.cumsum(n_leaves) - n_leaves
    values = list(map(float, " ".join(tree["leaf_value"] for tree in trees).split()))
    # a one-leaf tree's cover (every row's hessian) is not recorded: its leaf_weight is empty, or 0 in a
    # model trained from an init score; every row reaches that leaf, so its cover is unknown (NaN), not 0
    covers = np.array(list(map(float, " ".join(tree.get("leaf_weight") or "nan " * count
                                               for tree, count in zip(trees, n_leaves.tolist())).split())))
    covers[leaf_start[n_leaves == 1]] = np.nan
    split = [tree for tree in trees if tree["left_child"]]  # a one-leaf tree has no internal node
    left = _integers(tree["left_child"] for tree in split)
    right = _integers(tree["right_child"] for tree in split)
    used = set(_integers(tree["split_feature"] for tree in split).tolist())
    # nodes numbered internal ones first (each tree's in split order), then every tree's leaves
    split_trees = np.flatnonzero(n_leaves > 1)
    n_internal = n_leaves[split_trees] - 1
    internal_start = np.repeat(np.cumsum(n_internal) - n_internal, n_internal)
    leaf_base = np.repeat(leaf_start[split_trees], n_internal) + int(n_internal.sum())
    children = np.concatenate([left, right])
    bases = np.concatenate([internal_start, internal_start]), np.concatenate([leaf_base, leaf_base])
    children = np.where(children >= 0, children + bases[0], ~children + bases[1])
    parents = np.concatenate([np.arange(len(left))] * 2)
    depth = node_depths(parents, children, len(left) + int(n_leaves.sum()))[len(left):]
    index = np.array([int(tree["Tree"]) for tree in trees], dtype=np.int64)
    tree_of_leaf = np.repeat(index, n_leaves)
    return (leaf_table(tree=tree_of_leaf, klass=tree_of_leaf % trees_per_iteration,
                       leaf=np.arange(len(values)) - np.repeat(leaf_start, n_leaves), value=values, cover=covers,
                       depth=depth),
            len(trees), used)


_TREE_LINE = re.compile(r"\n(Tree|num_leaves|split_feature|left_child|right_child|leaf_value|leaf_weight)=([^\n]*)")


def _integers(fields) -> np.ndarray:
    """The whitespace-separated integers of several model-string fields, in one array."""
    return np.array(" ".join(fields).split(), dtype=np.int64)
