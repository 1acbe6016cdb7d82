"""CatBoost adapter: one ``catboost.Pool`` per split for the training and test sets (categorical columns
passed natively as ``cat_features``, missing numbers left to CatBoost's ``nan_mode``), ``CatBoost.fit`` per
grid point with plain boosting, leaves read from the JSON model. (Named so it cannot shadow ``catboost``.)

Starting score: as with LightGBM, gbreg passes the starting score (mean, log-odds of the mean, log class
priors: :func:`gbreg.models.boosters.lgbm.starting_score`) as the Pools' ``baseline`` with
``boost_from_average=False``, so every leaf holds what the trees learned. CatBoost keeps the baseline in
float32 (about 1e-8 off the float64 value).

How ``l2_leaf_reg`` enters a leaf (found by experiment on CatBoost 1.2, tests/test_catboost.py): with
plain boosting, no bootstrap, ``random_strength`` 0 and one leaf-estimation step, a leaf whose rows have
weighted gradient sum G, weighted hessian sum H and weight sum W gets

    Newton:   -G / (H + l2_leaf_reg * sum(w) / n) * learning_rate
    Gradient: -G / (W + l2_leaf_reg * sum(w) / n) * learning_rate

where sum(w) / n is the mean sample weight of the whole training set (1 without weights): CatBoost
scales the penalty by it. There is no L1 term. CatBoost's ``leaf_weights`` (the ``cover`` column here)
are sums of row weights, not of hessians; they are equal for squared error only.

Trees are oblivious: every tree has 2^depth leaves, all at depth ``len(splits)``. A multiclass tree holds
one value per class in each leaf (``leaf_values`` interleaved: leaf * n_classes + class); the leaf table
splits it into one tree per class (tree = iteration * n_classes + class), the layout of the other boosters.
The mechanism metrics (gbreg.models.leaf_mechanism) rebuild G and H from ``calc_leaf_indexes`` on the training
Pool; they are NaN, with the reason logged as ``leaf_mechanism_skipped``, where one leaf is not one step
(:func:`gbreg.models.leaf_mechanism.catboost_skip_reason`: Logloss's default of 10 leaf-estimation steps,
MultiClass Newton, CTRs, ...).
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np
import pandas as pd

from gbreg.catalogue import METRICS_BY_TASK
from gbreg.models.boosters.adapter import DeclaredAdapter, FoldData, SplitResult
from gbreg.models.boosters.lgbm import starting_score
from gbreg.models.boosters.library import CURVE_METRIC, DETERMINISM, NUM_CLASS, OBJECTIVE, Library, Range
from gbreg.models.leaf_mechanism import (
    LEAF_MECHANISM_STAT_NAMES,
    catboost_loss,
    catboost_penalty,
    catboost_skip_reason,
    leaf_mechanism,
)
from gbreg.models.metrics import native_curves, probabilities_from_margin, score_all
from gbreg.models.trees import LeafTableBuilder, tree_stats

OBJECTIVES = {"regression": "RMSE", "binary": "Logloss", "multiclass": "MultiClass"}
ROUNDS_FIXED = "from n_estimators: every trial trains exactly that many trees (no early stopping, no best model)"

# The defaults are CatBoost's own, except n_estimators (CatBoost: 1000; gbreg uses 100 like the others)
# and learning_rate (CatBoost picks one from the data size when none is set; gbreg sets 0.1 so the run logs
# the value used). min_data_in_leaf is left out: CatBoost uses it only with the Depthwise and Lossguide
# policies and silently ignores it for the symmetric trees gbreg reads.
LIBRARY = Library(
    name="catboost", package="catboost", module="catboost",
    native_names={
        "n_estimators": "iterations", "learning_rate": "learning_rate", "max_depth": "depth",
        "reg_lambda": "l2_leaf_reg", "max_bin": "border_count",
    },
    defaults={"n_estimators": 100, "learning_rate": 0.1, "max_depth": 6, "reg_lambda": 3.0, "max_bin": 254},
    native_params=frozenset({
        "iterations", "learning_rate", "depth", "l2_leaf_reg", "border_count",
        "boosting_type", "grow_policy", "random_strength", "bootstrap_type", "bagging_temperature", "subsample",
        "sampling_frequency", "mvs_reg", "rsm", "leaf_estimation_method", "leaf_estimation_iterations",
        "leaf_estimation_backtracking", "model_size_reg", "feature_border_type", "one_hot_max_size",
        "max_ctr_complexity", "nan_mode", "score_function", "penalties_coefficient", "monotone_constraints",
        "feature_weights", "fold_permutation_block", "auto_class_weights", "scale_pos_weight", "task_type",
    }),
    reserved={
        **dict.fromkeys(("thread_count", "n_jobs", "random_seed", "random_state", "verbose", "logging_level",
                         "silent", "metric_period"), DETERMINISM),
        "loss_function": OBJECTIVE, "objective": OBJECTIVE, "classes_count": NUM_CLASS,
        "eval_metric": CURVE_METRIC, "custom_metric": CURVE_METRIC,
        "boost_from_average": ("to false: CatBoost's starting score is passed as the Pools' baseline instead, so "
                               "that every leaf holds what the trees learned, as with LightGBM's init_score"),
        "allow_writing_files": "to false, so that CatBoost writes no catboost_info/ folder into your directory",
        "train_dir": "to a private temporary folder, so that nothing is written into your directory",
        **dict.fromkeys(("use_best_model", "od_type", "od_wait", "od_pval", "early_stopping_rounds"), ROUNDS_FIXED),
    },
    # r2 per round is 1 - RMSE^2 / var(y); accuracy is 1 - ZeroOneLoss (gbreg.models.metrics.CURVE_TRANSFORMS)
    curve_metrics={
        "rmse": {"regression": "RMSE"}, "mae": {"regression": "MAE"}, "r2": {"regression": "RMSE"},
        "logloss": {"binary": "Logloss", "multiclass": "MultiClass"}, "auc": {"binary": "AUC"},
        "accuracy": {"binary": "ZeroOneLoss", "multiclass": "ZeroOneLoss"},
    },
    choices={
        "boosting_type": (("Plain",), "Ordered boosting fits each row's step on a model of earlier rows only, "
                                      "so the leaves are not the penalized leaf values gbreg measures"),
        "grow_policy": (("SymmetricTree",), "gbreg reads oblivious trees (the other policies store other trees)"),
        "task_type": (("CPU",), "gbreg trains on CPU threads, as with the other libraries"),
    },
    ranges={"max_depth": Range(True, 1, 16, why_high="CatBoost's symmetric trees are at most 16 deep")},
    message_cleaning=((r"^\S+\.(cpp|h):\d+: ", ""),),  # the C++ source location CatBoost prefixes
)

# Settings that shape CatBoost's trees which it chooses itself when the spec leaves them out (the bootstrap
# differs by task: MVS with subsample 0.8 for regression and binary, Bayesian for multiclass): read back
# from the model and logged under their names, so the run says what was used.
TREE_SHAPING_DEFAULTS = ("bootstrap_type", "subsample", "bagging_temperature", "random_strength",
                         "leaf_estimation_method", "leaf_estimation_iterations", "border_count")

# CatBoost computes AUC on the training set only when asked (it is costly): the curve needs both sets.
_EVAL_HINTS = {"AUC": "AUC:hints=skip_train~false"}


def categorical_columns(X: pd.DataFrame) -> list[str]:
    """Category columns, and text columns (object, or pandas 3's ``str``): CatBoost's ``cat_features``."""
    return [str(c) for c, dtype in X.dtypes.items()
            if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)]


def _as_catboost_frame(X: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """Categorical columns as strings, a missing category as its own value "NaN" (CatBoost's documented
    treatment: it takes no missing category)."""
    if not categorical:
        return X
    X = X.copy()
    for column in categorical:
        X[column] = X[column].astype(object).where(X[column].notna(), "NaN").astype(str)
    return X


class CatBoostAdapter(DeclaredAdapter):
    declaration = LIBRARY

    def prepare(self, fold: FoldData, params: dict):
        from catboost import Pool

        categorical = categorical_columns(fold.X_train)
        init = starting_score(fold.y_train, fold.task, fold.n_classes)

        def pool(X, y):
            baseline = np.tile(init, (len(y), 1)) if len(init) > 1 else np.full((len(y), 1), init[0])
            return Pool(_as_catboost_frame(X, categorical), y, cat_features=categorical or None, baseline=baseline,
                        thread_count=1)

        return pool(fold.X_train, fold.y_train), pool(fold.X_test, fold.y_test), init

    def native_params(self, params: dict, task: str, n_classes: int, metric: str, seed: int, threads: int) -> dict:
        native = LIBRARY.to_native(params)
        curve = LIBRARY.curve_metric(metric, task)
        native.setdefault("boosting_type", "Plain")
        native.update(loss_function=OBJECTIVES[task], eval_metric=_EVAL_HINTS.get(curve, curve or OBJECTIVES[task]),
                      thread_count=threads, random_seed=seed, boost_from_average=False, allow_writing_files=False,
                      logging_level="Silent", use_best_model=False)
        if task == "multiclass":
            native["classes_count"] = n_classes
        return native

    def train(self, prepared, fold: FoldData, params: dict, metric: str, seed: int, threads: int) -> SplitResult:
        from catboost import CatBoost

        train_pool, test_pool, init = prepared
        native = self.native_params(params, fold.task, fold.n_classes, metric, seed, threads)
        # eval_metrics writes catboost_info/ into the working directory even with allow_writing_files off,
        # unless the model's train_dir points elsewhere: a private folder, gone after the trial
        with tempfile.TemporaryDirectory(prefix="gbreg-catboost-") as folder:
            start = time.perf_counter()
            model = CatBoost({**native, "train_dir": folder}).fit(train_pool, eval_set=test_pool)
            fit_seconds = time.perf_counter() - start
            curves = _curves(model, train_pool, LIBRARY.curve_metric(metric, fold.task), metric, fold, folder)
        p_train = _probabilities(model.predict(train_pool, prediction_type="RawFormulaVal"), fold.task)
        p_test = _probabilities(model.predict(test_pool, prediction_type="RawFormulaVal"), fold.task)
        scores = score_all(METRICS_BY_TASK[fold.task], fold.y_train, p_train, fold.y_test, p_test, fold.task)
        saved = model_json(model)
        leaves, n_trees, used = read_leaves(saved, fold.n_classes if fold.task == "multiclass" else 1)
        used_params = model.get_all_params()
        skipped = catboost_skip_reason(used_params, fold.task, bool(saved["features_info"].get("ctrs")))
        mechanism = mechanism_metrics(model, train_pool, leaves, fold, native, init, skipped, threads)
        del model
        extra = {"init_score": [float(v) for v in init],
                 "features_used": [str(fold.X_train.columns[i]) for i in sorted(used)],
                 **{name: _as_set(used_params[name]) for name in TREE_SHAPING_DEFAULTS
                    if name in used_params and name not in native}}
        if skipped:
            extra["leaf_mechanism_skipped"] = skipped
        return SplitResult(scores=scores, curves=curves, leaves=leaves,
                           stats={**tree_stats(leaves, n_trees, len(used)), **mechanism}, fit_seconds=fit_seconds,
                           extra_params=extra)


def _as_set(value):
    """A setting as it was given: CatBoost reports its float32 copy (subsample 0.800000011920929 for 0.8)."""
    return float(f"{value:.7g}") if isinstance(value, float) else value


def mechanism_metrics(model, train_pool, leaves: dict, fold: FoldData, native: dict, init: np.ndarray,
                      skipped: str | None, threads: int) -> dict[str, float]:
    """The mechanism metrics of ``gbreg.models.leaf_mechanism`` (NaN when ``skipped`` gives a reason). A
    multiclass tree holds every class: its leaf index serves the k trees of the leaf table."""
    if skipped:
        return dict.fromkeys(LEAF_MECHANISM_STAT_NAMES, float("nan"))
    n_outputs = fold.n_classes if fold.task == "multiclass" else 1
    leaf_index = np.repeat(model.calc_leaf_indexes(train_pool, thread_count=threads), n_outputs, axis=1)
    method = model.get_all_params().get("leaf_estimation_method", "Newton")
    stats, _, _ = leaf_mechanism(leaf_index, leaves, fold.y_train, init.astype("float32"),  # the baseline CatBoost keeps
                                 catboost_loss(fold.task, method), catboost_penalty(native))
    return stats


def _curves(model, train_pool, curve: str | None, metric: str, fold: FoldData, folder: str) -> dict[str, np.ndarray]:
    """Per-round curves from CatBoost's own evaluation: the test set's as it was evaluated during training,
    the training set's through ``eval_metrics`` on the final model. (The training-set values CatBoost
    records while it trains come from its in-training approximations, which differ from the model's
    predictions when a leaf takes several estimation steps: 0.01978 vs 0.01979 log loss on breast_cancer.)"""
    if not curve:
        return {}
    train_values = next(iter(model.eval_metrics(train_pool, [_EVAL_HINTS.get(curve, curve)], thread_count=1,
                                                tmp_dir=folder).values()))
    history = {"train": {curve: train_values}, "test": {curve: model.get_evals_result()["validation"][curve]}}
    return native_curves(history, curve, metric, fold.y_train, fold.y_test)


def model_json(model) -> dict:
    """The model as CatBoost's JSON, through a private temporary directory (CatBoost writes only files)."""
    with tempfile.TemporaryDirectory(prefix="gbreg-catboost-") as folder:
        path = os.path.join(folder, "model.json")
        model.save_model(path, format="json")
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)


_probabilities = probabilities_from_margin


def split_features(features_info: dict) -> tuple[dict[int, int], list[set[int]]]:
    """Column index of each float feature, and the columns behind each binary split of a categorical
    feature, in CatBoost's split_index order: float borders, one-hot values, then each CTR's borders."""
    float_columns = {f["feature_index"]: f["flat_feature_index"] for f in features_info.get("float_features", [])}
    categorical = {f["feature_index"]: f["flat_feature_index"] for f in features_info.get("categorical_features", [])}
    by_split: list[set[int]] = [set() for f in features_info.get("float_features", []) for _ in f.get("borders") or []]
    for feature in features_info.get("one_hot_features", []) or []:
        by_split.extend({categorical[feature["cat_feature_index"]]} for _ in feature.get("values", []))
    for ctr in features_info.get("ctrs", []) or []:
        columns = {categorical[e["cat_feature_index"]] for e in ctr["elements"] if "cat_feature_index" in e}
        by_split.extend(columns for _ in ctr["borders"])
    return float_columns, by_split


def read_leaves(model: dict, n_classes: int) -> tuple[dict[str, np.ndarray], int, set[int]]:
    """Leaf table, tree count (one per class per iteration) and the column indices used in splits."""
    float_columns, by_split = split_features(model["features_info"])
    all_categorical = {f["flat_feature_index"] for f in model["features_info"].get("categorical_features", [])}
    table = LeafTableBuilder()
    used: set[int] = set()
    trees = model["oblivious_trees"]
    for iteration, tree in enumerate(trees):
        splits = tree.get("splits") or []  # a tree that found no split is one leaf, with "splits": null
        depth = len(splits)
        for split in splits:
            if split["split_type"] == "FloatFeature":
                used.add(float_columns[split["float_feature_index"]])
            elif split["split_index"] < len(by_split) and by_split[split["split_index"]]:
                used.update(by_split[split["split_index"]])
            else:  # pragma: no cover - a split kind this reader does not place: count every categorical column
                used.update(all_categorical)
        values = np.asarray(tree["leaf_values"], dtype="float64").reshape(-1, n_classes)
        weights = [float(w) for w in tree["leaf_weights"]]
        for klass in range(n_classes):
            table.add_tree(iteration * n_classes + klass, klass, list(range(len(weights))), values[:, klass].tolist(),
                           weights, [depth] * len(weights))
    return table.build(), len(trees) * n_classes, used
