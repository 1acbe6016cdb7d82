"""Mechanism, not resemblance: every leaf of a trained model against the closed form of its objective.

A leaf whose training rows have gradient sum G and hessian sum H (at the predictions before its tree)
gets, in XGBoost and LightGBM,

    value = -sign(G) * max(|G| - alpha, 0) / (H + lambda) * eta        (T(G) = sign(G) max(|G| - alpha, 0))

and in HistGradientBoosting and CatBoost, which have no L1 term, the same with alpha = 0 (CatBoost with
its Gradient leaf estimation: H is the leaf's row count).

so the penalties act through two parts that can be measured on each leaf, against the unpenalized
Newton step |G| / H * eta:

    shrinkage = (|G|/H - |T(G)|/(H + lambda)) * eta
              = (|G| - |T(G)|)/H * eta                        L1: the threshold takes alpha off |G|
              + |T(G)| * (1/H - 1/(H + lambda)) * eta         L2: lambda enlarges the denominator

Per split of a trial (averaged over splits like the other split statistics; NaN when undefined):

* ``leaf_l1_zeroed_fraction``: share of leaves with 0 < |G| <= alpha, set to exactly 0 by the threshold;
* ``leaf_l1_shrinkage_share`` / ``leaf_l2_shrinkage_share``: the two parts' shares of the summed
  shrinkage (they add up to 1; NaN when nothing is shrunk, alpha = lambda = 0);
* ``leaf_closed_form_max_abs_error``: max |stored - closed form| over leaves, divided by the largest
  |stored leaf value| of the model (a relative error: float32 agreement reads about 1e-7 to 1e-5).

G and H are rebuilt from the training rows, the model's leaf index of every row in every tree and the
margins before each tree: base score (XGBoost) or init score (LightGBM, as gbreg passes it) plus the
earlier trees' leaf values, an O(rows x trees) cumulative sum; no per-iteration prediction. Losses and
their exact hessians as the libraries compute them:

    squared error   g = f - y, h = 1
    logistic        g = p - y, h = p(1 - p)                 (XGBoost floors h at 1e-16)
    softmax         g = p_k - [y = k], h = c p_k (1 - p_k)   XGBoost c = 2 (floor 1e-16), LightGBM c = K/(K-1)

XGBoost keeps margins and gradients in float32, LightGBM margins in float64 and gradients in float32;
the rebuild follows each. XGBoost also gives a leaf 0 when H < min_child_weight (its ``CalcWeight``):
such leaves are compared with 0 and left out of the shrinkage metrics. LightGBM stores a tree it could
not split as one leaf of value 0, not a fitted value: those leaves are left out altogether.

Where the closed form does not hold, every metric is NaN (not logged) and the reason is given by
:func:`xgboost_skip_reason` / :func:`lightgbm_skip_reason`: row sampling (``subsample`` /
``bagging_fraction`` < 1, GOSS: the rows behind G and H are not all the training rows; column sampling
does not matter), leaf-value clamps and smoothing (``max_delta_step``, ``path_smooth``, monotone
constraints), leaf models (LightGBM ``linear_tree``), a booster other than XGBoost ``gbtree`` /
LightGBM ``gbdt`` (DART rescales trees, random forests average them), ``num_parallel_tree`` > 1, class
weights (``scale_pos_weight``, ``is_unbalance``), LightGBM's ``sigmoid`` != 1, quantized gradients, and
LightGBM with categorical features (its categorical splits add ``cat_l2`` to lambda).
HistGradientBoosting and CatBoost: :func:`sklearn_hgb_skip_reason` / :func:`catboost_skip_reason`
(docs/leaf_mechanism.md, "The two libraries without L1").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from gbreg.catalogue import names

LEAF_MECHANISM_STAT_NAMES = names("mechanism")

XGBOOST_HESSIAN_FLOOR = 1e-16


@dataclass(frozen=True)
class Loss:
    """The loss of a task as one library computes its gradients."""

    task: str  # regression | binary | multiclass
    softmax_hessian_factor: float = 1.0
    hessian_floor: float = 0.0
    float32_margins: bool = False  # XGBoost accumulates its prediction cache in float32
    float32_labels: bool = True  # XGBoost, LightGBM, CatBoost store labels in float32; scikit-learn in float64
    unit_hessian: bool = False  # CatBoost's Gradient leaf estimation: the denominator is the row count


@dataclass(frozen=True)
class Penalty:
    alpha: float
    lam: float
    eta: float
    min_hessian: float = 0.0  # XGBoost: a leaf with H < min_child_weight gets 0


def xgboost_loss(task: str) -> Loss:
    return Loss(task, 2.0, XGBOOST_HESSIAN_FLOOR, float32_margins=True)


def lightgbm_loss(task: str, n_classes: int) -> Loss:
    return Loss(task, n_classes / (n_classes - 1.0) if task == "multiclass" else 1.0)


# ---------------------------------------------------------------------------------------------- G and H


def row_gradients(margins: np.ndarray, y: np.ndarray, loss: Loss) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row gradient and hessian at ``margins`` (iterations x outputs x rows), as float32 like both
    libraries store them; the hessian is None for squared error and unit-hessian steps (1 for every row)."""
    if loss.task == "regression":
        return (margins - y).astype("float32", copy=False), None
    if loss.task == "binary":
        p = 1.0 / (1.0 + np.exp(-margins))
        g, h = p - y, p * (1.0 - p)
    else:
        # XGBoost's order: max starting at the smallest positive float, sum of exps in double, divide
        floor = np.finfo(margins.dtype).tiny if loss.float32_margins else -np.inf
        p = np.exp(margins - np.maximum(margins.max(axis=1, keepdims=True), floor))
        p /= p.sum(axis=1, keepdims=True, dtype="float64").astype(margins.dtype)
        onehot = np.arange(margins.shape[1])[None, :, None] == y.astype("int64")
        g, h = p - onehot, loss.softmax_hessian_factor * p * (1.0 - p)
    if loss.unit_hessian:
        return g.astype("float32", copy=False), None
    if loss.hessian_floor:
        h = np.maximum(h, loss.hessian_floor)
    return g.astype("float32", copy=False), h.astype("float32", copy=False)


def leaf_sums(leaf_index: np.ndarray, leaves: dict[str, np.ndarray], y: np.ndarray, base_margin: np.ndarray,
              loss: Loss) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and hessian sums (float64) of the training rows in each leaf, aligned with ``leaves``.

    ``leaf_index`` is rows x trees (the libraries' ``pred_leaf``), holding the ids of ``leaves["leaf"]``;
    trees are in model order, ``n_outputs`` per iteration (class = tree % n_outputs). Arrays are kept
    tree-major and C-ordered, so the cumulative sum and the flattening run over contiguous rows.
    """
    n_rows = len(y)
    n_outputs = len(base_margin)
    row_keys = np.asarray(leaf_index).reshape(n_rows, -1).T.astype("int64", order="C")  # trees x rows
    n_trees = row_keys.shape[0]
    stride = int(max(leaves["leaf"].max(initial=0), row_keys.max(initial=0))) + 1
    row_keys += np.arange(n_trees, dtype="int64")[:, None] * stride  # flat (tree, leaf) ids
    table_keys = leaves["tree"].astype("int64") * stride + leaves["leaf"]
    dtype = "float32" if loss.float32_margins else "float64"
    value_by_key = np.zeros(n_trees * stride, dtype)
    value_by_key[table_keys] = leaves["value"]  # exact in float32: XGBoost stores float32 leaves
    # margin before iteration m = base + trees of iterations < m, added one tree at a time as the library does
    margins = np.empty((n_trees // n_outputs, n_outputs, n_rows), dtype)
    margins[0] = np.asarray(base_margin, dtype)[:, None]
    margins[1:] = value_by_key[row_keys[:-n_outputs]].reshape(-1, n_outputs, n_rows)
    np.cumsum(margins, axis=0, out=margins)
    g, h = row_gradients(margins, (y.astype("float32") if loss.float32_labels else y).astype(dtype), loss)
    flat_keys = row_keys.ravel()
    size = n_trees * stride
    grad_sum = np.bincount(flat_keys, weights=g.ravel(), minlength=size)[table_keys]
    weights = None if h is None else h.ravel()
    hess_sum = np.bincount(flat_keys, weights=weights, minlength=size)[table_keys].astype("float64")
    return grad_sum, hess_sum


# ---------------------------------------------------------------------------------------------- metrics


def closed_form_values(grad_sum: np.ndarray, hess_sum: np.ndarray, penalty: Penalty) -> np.ndarray:
    """-sign(G) max(|G| - alpha, 0) / (H + lambda) * eta, and 0 where H < min_hessian (XGBoost)."""
    thresholded = np.maximum(np.abs(grad_sum) - penalty.alpha, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = -np.sign(grad_sum) * thresholded / (hess_sum + penalty.lam) * penalty.eta
    return np.where((hess_sum >= penalty.min_hessian) & (hess_sum > 0), values, 0.0)


def mechanism_stats(values: np.ndarray, grad_sum: np.ndarray, hess_sum: np.ndarray, penalty: Penalty,
                    fitted: np.ndarray | None = None) -> dict[str, float]:
    """The four metrics over the fitted leaves (all leaves when ``fitted`` is None)."""
    stats = dict.fromkeys(LEAF_MECHANISM_STAT_NAMES, float("nan"))
    fitted = np.ones(len(values), bool) if fitted is None else np.asarray(fitted, bool)
    if not fitted.any():
        return stats
    values, grad_sum, hess_sum = values[fitted], grad_sum[fitted], hess_sum[fitted]
    closed = closed_form_values(grad_sum, hess_sum, penalty)
    scale = max(float(np.abs(values).max()), float(np.abs(closed).max()))
    stats["leaf_closed_form_max_abs_error"] = float(np.abs(values - closed).max() / scale) if scale else 0.0
    penalized = (hess_sum >= penalty.min_hessian) & (hess_sum > 0)
    if not penalized.any():
        return stats
    abs_g, hess = np.abs(grad_sum[penalized]), hess_sum[penalized]
    # G = 0 exactly gives 0 without any penalty: only a nonzero G is zeroed by the threshold
    stats["leaf_l1_zeroed_fraction"] = float(np.mean((abs_g <= penalty.alpha) & (abs_g > 0)))
    abs_t = np.maximum(abs_g - penalty.alpha, 0.0)
    l1_part = float(np.sum((abs_g - abs_t) / hess))
    l2_part = float(np.sum(abs_t * (1.0 / hess - 1.0 / (hess + penalty.lam))))
    total = l1_part + l2_part
    if total > 0:
        stats["leaf_l1_shrinkage_share"], stats["leaf_l2_shrinkage_share"] = l1_part / total, l2_part / total
    return stats


def leaf_mechanism(leaf_index, leaves: dict[str, np.ndarray], y: np.ndarray, base_margin, loss: Loss,
                   penalty: Penalty, fitted: np.ndarray | None = None) -> tuple[dict[str, float], np.ndarray,
                                                                                 np.ndarray]:
    """Metrics and per-leaf G, H; with ``leaf_index`` None (skipped) or no trees, NaN metrics and sums."""
    if leaf_index is None or len(leaves["value"]) == 0:
        nan_column = np.full(len(leaves["value"]), np.nan)
        return dict.fromkeys(LEAF_MECHANISM_STAT_NAMES, float("nan")), nan_column, nan_column.copy()
    grad_sum, hess_sum = leaf_sums(leaf_index, leaves, y, np.atleast_1d(base_margin), loss)
    return mechanism_stats(leaves["value"], grad_sum, hess_sum, penalty, fitted), grad_sum, hess_sum


# ---------------------------------------------------------------------------------------------- libraries


def xgboost_skip_reason(native: dict) -> str | None:
    """Why the closed form does not describe this XGBoost training (None: it does)."""
    checks = [
        (native.get("booster", "gbtree") != "gbtree", "booster is not gbtree"),
        (float(native.get("subsample", 1.0)) < 1.0, "subsample < 1 (rows sampled per tree)"),
        (float(native.get("max_delta_step", 0.0)) != 0.0, "max_delta_step clamps leaf values"),
        (int(native.get("num_parallel_tree", 1)) > 1, "num_parallel_tree > 1"),
        (_any_constraint(native.get("monotone_constraints")), "monotone constraints clamp leaf values"),
        (native.get("process_type", "default") != "default", "process_type is not default"),
        (float(native.get("scale_pos_weight", 1.0)) != 1.0, "scale_pos_weight weights the rows"),
    ]
    return next((reason for failed, reason in checks if failed), None)


def lightgbm_skip_reason(native: dict, has_categorical: bool) -> str | None:
    """Why the closed form does not describe this LightGBM training (None: it does)."""
    bagging = int(native.get("bagging_freq", 0)) > 0 and min(
        float(native.get(name, 1.0)) for name in ("bagging_fraction", "pos_bagging_fraction", "neg_bagging_fraction")
    ) < 1.0
    checks = [
        (native.get("boosting", "gbdt") != "gbdt", "boosting is not gbdt"),
        (native.get("data_sample_strategy", "bagging") != "bagging", "GOSS samples and reweights rows"),
        (bagging, "bagging_fraction < 1 (rows sampled per tree)"),
        (float(native.get("max_delta_step", 0.0)) > 0.0, "max_delta_step clamps leaf values"),
        (float(native.get("path_smooth", 0.0)) > 0.0, "path_smooth blends leaves with their parent"),
        (bool(native.get("linear_tree", False)), "linear_tree fits a model in each leaf"),
        (_any_constraint(native.get("monotone_constraints")), "monotone constraints clamp leaf values"),
        (bool(native.get("use_quantized_grad", False)), "gradients are quantized"),
        (bool(native.get("is_unbalance", False)) or float(native.get("scale_pos_weight", 1.0)) != 1.0,
         "class weights weight the rows"),
        (float(native.get("sigmoid", 1.0)) != 1.0, "sigmoid != 1 changes the logistic gradients"),
        (has_categorical, "categorical features (cat_l2 adds to lambda on categorical splits)"),
    ]
    return next((reason for failed, reason in checks if failed), None)


def _any_constraint(value) -> bool:
    if value is None:
        return False
    if isinstance(value, dict):
        return any(int(v) != 0 for v in value.values())
    return any(int(v) != 0 for v in re.findall(r"-?\d+", str(value)))


def xgboost_base_margin(base_score: str, objective: str) -> np.ndarray:
    """The model's ``base_score`` (``"[1.5E2]"`` in XGBoost 3) as a margin: a probability for logistic."""
    values = np.array([float(v) for v in base_score.strip("[]").split(",") if v.strip()], dtype="float32")
    if objective == "binary:logistic":
        values = np.log(values / (1.0 - values)).astype("float32")
    return values


def xgboost_penalty(native: dict) -> Penalty:
    return Penalty(float(native.get("alpha", 0.0)), float(native.get("lambda", 1.0)), float(native.get("eta", 0.3)),
                   float(native.get("min_child_weight", 1.0)))


def lightgbm_penalty(native: dict) -> Penalty:
    return Penalty(float(native.get("lambda_l1", 0.0)), float(native.get("lambda_l2", 0.0)),
                   float(native.get("learning_rate", 0.1)))


def split_tree_leaves(leaves: dict[str, np.ndarray]) -> np.ndarray:
    """Leaves of trees with more than one leaf: LightGBM and HistGradientBoosting store a tree they could
    not split as one leaf of value 0 (HistGradientBoosting's root keeps its initial value 0), not a fit."""
    trees, counts = np.unique(leaves["tree"], return_counts=True)
    split = np.zeros(int(trees.max(initial=-1)) + 1, bool)
    split[trees] = counts > 1
    return split[leaves["tree"]]


lightgbm_fitted_leaves = split_tree_leaves  # the name gbreg.models.boosters.lgbm and its tests use


# ---------------------------------------------------------------------------------------------- no L1 term


def sklearn_hgb_loss(task: str) -> Loss:
    """Half squared error, half binomial and half multinomial (hessian p(1 - p), no factor), float64
    margins and labels, float32 gradients and hessians."""
    return Loss(task, float32_labels=False)


def sklearn_hgb_penalty(native: dict) -> Penalty:
    return Penalty(0.0, float(native.get("l2_regularization", 0.0)), float(native.get("learning_rate", 0.1)))


def sklearn_hgb_skip_reason(native: dict) -> str | None:
    """Why the closed form does not describe this HistGradientBoosting training (None: it does)."""
    if _any_constraint(native.get("monotonic_cst")):
        return "monotonic_cst clamps leaf values to the bounds of their parents"
    return None


def catboost_loss(task: str, leaf_estimation_method: str) -> Loss:
    """CatBoost's RMSE / Logloss / MultiClass derivatives (double, labels float32); ``Gradient`` leaf
    estimation divides by the row count instead of the hessian sum."""
    return Loss(task, unit_hessian=leaf_estimation_method == "Gradient")


def catboost_penalty(native: dict) -> Penalty:
    """l2_leaf_reg times the mean sample weight, which is 1: gbreg passes no weights (tests/test_catboost.py)."""
    return Penalty(0.0, float(native.get("l2_leaf_reg", 3.0)), float(native["learning_rate"]))


def catboost_skip_reason(settings: dict, task: str, has_ctrs: bool) -> str | None:
    """Why the closed form does not describe this CatBoost training (None: it does). ``settings`` is the
    trained model's ``get_all_params()`` (CatBoost's own defaults resolved: 10 leaf-estimation steps for
    Logloss). Row sampling (``bootstrap_type``, ``subsample``) and ``random_strength`` are not reasons: they
    act on the choice of the splits only, the leaf values are estimated on every row with weight 1 (found by
    experiment on CatBoost 1.2, tests/test_leaf_mechanism_new_libraries.py)."""
    method = settings.get("leaf_estimation_method", "Newton")
    class_weights = settings.get("class_weights") or []
    checks = [
        (settings.get("boosting_type", "Plain") != "Plain", "ordered boosting fits each row's step on earlier rows"),
        (int(settings.get("leaf_estimation_iterations", 1)) != 1,
         f"leaf_estimation_iterations = {settings.get('leaf_estimation_iterations')}: a leaf is several "
         f"{method} steps, not one (set leaf_estimation_iterations: 1)"),
        (method not in ("Newton", "Gradient"), f"leaf_estimation_method {method} has no closed form here"),
        (task == "multiclass" and method == "Newton",
         "MultiClass Newton steps solve the class-coupled system (H + lambda I) delta = -G per leaf, not one "
         "closed form per class (leaf_estimation_method: Gradient has one)"),
        (any(float(w) != 1.0 for w in class_weights), "class weights weight the rows"),
        (float(settings.get("model_shrink_rate") or 0.0) != 0.0,
         "model_shrink_rate shrinks the earlier trees (monotone constraints set it too)"),
        (bool(settings.get("posterior_sampling")) or bool(settings.get("langevin")), "Langevin noise in the leaves"),
        (has_ctrs, "categorical features through target statistics (CTRs): training rows were placed in leaves "
                   "by ordered statistics, not by the model's final ones"),
    ]
    return next((reason for failed, reason in checks if failed), None)
