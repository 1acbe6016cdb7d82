"""scikit-learn HistGradientBoosting adapter: ``HistGradientBoostingRegressor`` / ``Classifier`` per grid point,
leaves read from the fitted predictors' node arrays (a private structure: :func:`read_predictor_nodes`).

What can be shared across the grid is little: HistGradientBoosting bins the features inside ``fit`` and
takes no pre-binned matrix, so :meth:`SklearnHGBAdapter.prepare` only makes the frames ready once
(object columns -> pandas ``category``, read natively with ``categorical_features='from_dtype'``; NaN is
read natively as its own bin). Binning again at every grid point was measured (one thread, 75% of the
rows, max_bins 255) at 2 ms of a 67 ms 100-round fit on diabetes (3%) and 0.17 s of 0.93 s on 20,000 x 50
(18%): the largest cost this library adds per trial that the other adapters pay once per split.

Every round is trained (``early_stopping=False``: no rows are held out and no round is dropped), with a
fixed ``random_state`` and the thread count set by ``threadpoolctl`` around fit and predict. Curves per
round come from ``staged_predict`` / ``staged_predict_proba`` on the training and test sets, scored by
:func:`gbreg.models.metrics.score`. Measured per trial (100 rounds, both sets): rmse 7 ms on diabetes and
0.12 s on 20,000 x 50 (13% of the fit); on 20,000 x 50 binary, staging is 0.1 s but scikit-learn's log_loss
adds 0.4 s (40% of the fit) and roc_auc_score 0.75 s (80%).

Leaf values (scikit-learn's ``grower.py``, ``splitting.pyx``, ``_loss``): a leaf whose training rows have
gradient sum G and hessian sum H at the starting score gets
    value = -G / (H + l2_regularization) * learning_rate
(``compute_node_value``; the learning rate is applied in ``_apply_shrinkage``), with the half squared error
(g = f - y, h = 1) and the half binomial / multinomial losses (g = p - y, h = p(1 - p); gradients and
hessians in float32, their sums in float64). The starting score (``_baseline_prediction``) is the mean
target, the log-odds of the mean, or for multiclass the log class priors centred to mean 0; it is logged as
``fitted_baseline``. The predictors keep no hessian sums: a leaf's ``cover`` here is its number of training
rows (the hessian sum for squared error only). The mechanism metrics (gbreg.models.leaf_mechanism) rebuild G
and H from the node every training row reaches in every tree (:func:`training_leaf_index`); a tree that did
not split is one leaf of value 0 (the root's initial value), left out like LightGBM's.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from gbreg.catalogue import METRICS_BY_TASK
from gbreg.models.boosters.adapter import DeclaredAdapter, FoldData, SplitResult
from gbreg.models.boosters.library import DETERMINISM, OBJECTIVE, Library, Range
from gbreg.models.leaf_mechanism import (
    LEAF_MECHANISM_STAT_NAMES,
    leaf_mechanism,
    sklearn_hgb_loss,
    sklearn_hgb_penalty,
    sklearn_hgb_skip_reason,
    split_tree_leaves,
)
from gbreg.models.metrics import native_curves, score, score_all
from gbreg.models.trees import LeafTableBuilder, tree_stats

EVERY_ROUND = "to false, so that every round is trained on every training row (no held-out rows, no round dropped)"
# the scikit-learn versions whose private predictor structure read_predictor_nodes has been checked on
CHECKED_VERSIONS = ((1, 6), (1, 10))  # [low, high)
NODE_FIELDS = ("value", "count", "feature_idx", "left", "right", "depth", "is_leaf")

LIBRARY = Library(
    name="sklearn_hgb", package="scikit-learn", module="sklearn",
    native_names={
        "n_estimators": "max_iter", "learning_rate": "learning_rate", "max_depth": "max_depth",
        "reg_lambda": "l2_regularization", "max_leaves": "max_leaf_nodes", "min_data_in_leaf": "min_samples_leaf",
        "max_bin": "max_bins",
    },
    # scikit-learn's own defaults (tests/test_sklearn_hgb.py checks them); max_depth 0 is its None (no limit)
    defaults={"n_estimators": 100, "learning_rate": 0.1, "max_depth": 0, "reg_lambda": 0.0, "max_leaves": 31,
              "min_data_in_leaf": 20, "max_bin": 255},
    native_params=frozenset({
        "max_iter", "learning_rate", "max_depth", "l2_regularization", "max_leaf_nodes", "min_samples_leaf",
        "max_bins", "max_features", "interaction_cst", "monotonic_cst",
    }),
    reserved={
        **dict.fromkeys(("random_state", "verbose"), DETERMINISM),
        "loss": OBJECTIVE,
        "early_stopping": EVERY_ROUND,
        **dict.fromkeys(("scoring", "validation_fraction", "n_iter_no_change", "tol"),
                        "for early stopping, which gbreg turns off so that every round is trained"),
        "categorical_features": "to 'from_dtype': columns of pandas category (or text) type are categorical",
        "warm_start": "to false: every trial trains a new model",
    },
    # gbreg scores staged predictions itself with these names (gbreg.models.metrics.score; "error" is 1 - accuracy)
    curve_metrics={
        "rmse": {"regression": "rmse"}, "mae": {"regression": "mae"}, "r2": {"regression": "rmse"},
        "logloss": {"binary": "logloss", "multiclass": "logloss"}, "auc": {"binary": "auc"},
        "accuracy": {"binary": "error", "multiclass": "error"},
    },
    ranges={
        "max_bin": Range(True, 2, 255, why_high="HistGradientBoosting bins into at most 255 values (plus one for "
                         "missing values)"),
        "max_depth": Range(True, 0),  # 0: no limit (scikit-learn's None)
        "max_leaves": Range(True, 2, why_low="a HistGradientBoosting tree needs at least 2 leaves"),
        "min_data_in_leaf": Range(True, 1),
    },
    message_cleaning=((r" Got .* instead\.$", ""),),
)


def ready_frame(X: pd.DataFrame) -> pd.DataFrame:
    """Object (text) columns as pandas ``category``, which ``categorical_features='from_dtype'`` reads."""
    text = [c for c in X.columns if pd.api.types.is_object_dtype(X[c]) or pd.api.types.is_string_dtype(X[c])]
    return X.astype(dict.fromkeys(text, "category")) if text else X


MOST_BINS = 255  # scikit-learn's largest max_bins: a categorical column has at most this many levels


def too_many_levels(X: pd.DataFrame, max_bins: int) -> str | None:
    """Why HistGradientBoosting cannot take a categorical column of ``X`` with ``max_bins``, or None.

    Counted are the levels of the column's dtype, which are those of the whole data set (a sample or a
    split keeps them): scikit-learn counts the levels present in the training rows, so a split could
    pass by chance where another fails, and the one-round check on 200 sampled rows would miss it."""
    for column in X.columns:
        if not isinstance(X[column].dtype, pd.CategoricalDtype):
            continue
        levels = len(X[column].cat.categories)
        if levels <= max_bins:
            continue
        fix = (f"raise max_bin to {levels} or more (at most {MOST_BINS})" if levels <= MOST_BINS else
               f"group its levels into at most {MOST_BINS}, or leave sklearn_hgb out of models for this data")
        return (f"categorical column {str(column)!r} has {levels} levels, more than HistGradientBoosting takes "
                f"(max_bins = {max_bins}); {fix}")
    return None


class SklearnHGBAdapter(DeclaredAdapter):
    declaration = LIBRARY

    def prepare(self, fold: FoldData, params: dict):
        return ready_frame(fold.X_train), ready_frame(fold.X_test)

    def native_params(self, params: dict, task: str, n_classes: int, metric: str, seed: int, threads: int) -> dict:
        native = LIBRARY.to_native(params)
        if native.get("max_depth") == 0:
            native["max_depth"] = None
        native.update(loss="squared_error" if task == "regression" else "log_loss", early_stopping=False,
                      random_state=seed, verbose=0, categorical_features="from_dtype")
        return native

    def train(self, prepared, fold: FoldData, params: dict, metric: str, seed: int, threads: int) -> SplitResult:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        X_train, X_test = prepared
        native = self.native_params(params, fold.task, fold.n_classes, metric, seed, threads)
        # said before fit, against the data set's levels: gbreg's data check (a one-round fit on 200 rows)
        # sees it then, not every trial failing on a split with more levels than the sample
        problem = too_many_levels(X_train, native.get("max_bins", MOST_BINS))
        if problem:
            raise ValueError(problem)
        estimator = HistGradientBoostingRegressor if fold.task == "regression" else HistGradientBoostingClassifier
        model = estimator(**native)
        with threadpool_limits(limits=threads):
            start = time.perf_counter()
            model.fit(X_train, fold.y_train)
            fit_seconds = time.perf_counter() - start
            p_train, p_test = _predict(model, X_train, fold.task), _predict(model, X_test, fold.task)
            curves = staged_curves(model, X_train, X_test, fold, metric)
        scores = score_all(METRICS_BY_TASK[fold.task], fold.y_train, p_train, fold.y_test, p_test, fold.task)
        nodes, columns = read_predictor_nodes(model)
        leaves, n_trees, used = read_leaves(nodes)
        used = {int(columns[i]) for i in used}
        baseline = [float(v) for v in np.ravel(model._baseline_prediction)]
        skipped = sklearn_hgb_skip_reason(native)
        mechanism = mechanism_metrics(model, X_train, leaves, fold, native, skipped, threads)
        extra = {"fitted_baseline": baseline[0] if len(baseline) == 1 else baseline,
                 "features_used": [str(X_train.columns[i]) for i in sorted(used)]}
        if skipped:
            extra["leaf_mechanism_skipped"] = skipped
        return SplitResult(scores=scores, curves=curves, leaves=leaves, stats={**tree_stats(leaves, n_trees, len(used)),
                           **mechanism}, fit_seconds=fit_seconds, extra_params=extra)


def mechanism_metrics(model, X_train, leaves: dict, fold: FoldData, native: dict, skipped: str | None,
                      threads: int) -> dict[str, float]:
    """The mechanism metrics of ``gbreg.models.leaf_mechanism`` (NaN when ``skipped`` gives a reason)."""
    if skipped:
        return dict.fromkeys(LEAF_MECHANISM_STAT_NAMES, float("nan"))
    stats, _, _ = leaf_mechanism(training_leaf_index(model, X_train, threads), leaves, fold.y_train,
                                 np.ravel(model._baseline_prediction), sklearn_hgb_loss(fold.task),
                                 sklearn_hgb_penalty(native), split_tree_leaves(leaves))
    return stats


def _predict(model, X, task: str) -> np.ndarray:
    if task == "regression":
        return model.predict(X).astype("float64")
    proba = model.predict_proba(X)
    return proba[:, 1] if task == "binary" else proba


def staged_curves(model, X_train, X_test, fold: FoldData, metric: str) -> dict[str, np.ndarray]:
    """The metric per round on both sets, from staged predictions scored by gbreg's own definitions."""
    native = LIBRARY.curve_metric(metric, fold.task)
    if not native:
        return {}
    scored = "accuracy" if native == "error" else native
    history = {}
    for part, X, y in (("train", X_train, fold.y_train), ("test", X_test, fold.y_test)):
        stages = (model.staged_predict(X) if fold.task == "regression" else
                  (p[:, 1] if fold.task == "binary" else p for p in model.staged_predict_proba(X)))
        values = [score(scored, y, prediction, fold.task) for prediction in stages]
        history[part] = {native: [1.0 - v for v in values] if native == "error" else values}
    return native_curves(history, native, metric, fold.y_train, fold.y_test)


def read_predictor_nodes(model) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """The node arrays of a fitted model, per iteration and per class (``model._predictors[i][k].nodes``),
    and the input column of each of the model's features: with categorical columns, scikit-learn moves
    them first (``_preprocessor``, a ColumnTransformer), so ``feature_idx`` counts in that order.

    A private scikit-learn structure (checked on the versions in :data:`CHECKED_VERSIONS`): anything else
    raises a clear error instead of reading wrong leaves.
    """
    import sklearn

    version = tuple(int(part) for part in sklearn.__version__.split(".")[:2] if part.isdigit())
    low, high = CHECKED_VERSIONS
    predictors = getattr(model, "_predictors", None)
    fields = set()
    if predictors and predictors[0]:
        fields = set(getattr(getattr(predictors[0][0], "nodes", None), "dtype", np.dtype([])).names or ())
    missing = [name for name in NODE_FIELDS if name not in fields]
    if not low <= version < high or predictors is None or missing:
        raise RuntimeError(
            f"gbreg cannot read the trees of scikit-learn {sklearn.__version__}: it reads the private "
            f"HistGradientBoosting predictors (checked on {low[0]}.{low[1]} to before {high[0]}.{high[1]})"
            + (f"; node fields missing: {', '.join(missing)}" if predictors is not None and missing else "")
            + "; install a scikit-learn in that range")
    categorical = getattr(model, "is_categorical_", None)
    if getattr(model, "_preprocessor", None) is None or categorical is None:
        columns = np.arange(model.n_features_in_)
    else:  # categorical columns first, then the others, each in input order
        columns = np.concatenate([np.flatnonzero(categorical), np.flatnonzero(~categorical)])
    return [[predictor.nodes for predictor in iteration] for iteration in predictors], columns


def training_leaf_index(model, X, threads: int) -> np.ndarray:
    """Rows x trees (tree = iteration * k + class): the node each row of ``X`` reaches, by scikit-learn's own
    traversal (``TreePredictor.predict``, categories and missing values included) of a copy of each tree
    whose node values are the node indices. Private structures: call after :func:`read_predictor_nodes`,
    which checks the version."""
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    X = model._preprocess_X(X, reset=False)
    known_categories, feature_map = model._bin_mapper.make_known_categories_bitsets()
    trees = [predictor for iteration in model._predictors for predictor in iteration]
    index = np.empty((X.shape[0], len(trees)), dtype="int64")
    for column, tree in enumerate(trees):
        numbered = tree.nodes.copy()
        numbered["value"] = np.arange(len(numbered))  # float64: every index exact
        walker = TreePredictor(numbered, tree.binned_left_cat_bitsets, tree.raw_left_cat_bitsets)
        index[:, column] = walker.predict(X, known_categories, feature_map, threads)
    return index


def read_leaves(nodes: list[list[np.ndarray]]) -> tuple[dict[str, np.ndarray], int, set[int]]:
    """Leaf table, tree count and the indices of the features used in splits (tree = iteration * k + class)."""
    table = LeafTableBuilder()
    used: set[int] = set()
    per_iteration = len(nodes[0]) if nodes else 1
    for iteration, trees in enumerate(nodes):
        for klass, tree in enumerate(trees):
            leaf = tree["is_leaf"].astype(bool)
            used.update(int(v) for v in tree["feature_idx"][~leaf])
            ids = np.flatnonzero(leaf)
            table.add_tree(iteration * per_iteration + klass, klass, ids.tolist(), tree["value"][leaf].tolist(),
                           tree["count"][leaf].astype("float64").tolist(), tree["depth"][leaf].tolist())
    return table.build(), len(nodes) * per_iteration, used
