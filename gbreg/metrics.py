"""Evaluation metrics by name, their direction, and the generalization gap.

Final train/test scores are computed here from predictions (not read back from the libraries), so both
boosters and the linear models are scored by one definition. Per-round curves come from the libraries'
own evaluation, under the native names in :data:`NATIVE_CURVE_METRIC`.
"""

from __future__ import annotations

import numpy as np

HIGHER_IS_BETTER = {"rmse": False, "mae": False, "r2": True, "logloss": False, "auc": True, "accuracy": True}

# metric -> task -> (xgboost eval_metric, lightgbm metric, transform of the native value)
# r2 per round is 1 - rmse^2 / var(y) of that set; accuracy is 1 - error.
NATIVE_CURVE_METRIC: dict[str, dict[str, tuple[str, str, str]]] = {
    "rmse": {"regression": ("rmse", "rmse", "identity")},
    "mae": {"regression": ("mae", "l1", "identity")},
    "r2": {"regression": ("rmse", "rmse", "r2_from_rmse")},
    "logloss": {"binary": ("logloss", "binary_logloss", "identity"),
                "multiclass": ("mlogloss", "multi_logloss", "identity")},
    "auc": {"binary": ("auc", "auc", "identity")},
    "accuracy": {"binary": ("error", "binary_error", "one_minus"),
                 "multiclass": ("merror", "multi_error", "one_minus")},
}


def score(metric: str, y_true: np.ndarray, prediction: np.ndarray, task: str) -> float:
    """``prediction``: values (regression), P(class 1) (binary) or an (n, k) probability matrix."""
    from sklearn import metrics as skm

    if metric == "rmse":
        return float(np.sqrt(np.mean((y_true - prediction) ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(y_true - prediction)))
    if metric == "r2":
        return float(skm.r2_score(y_true, prediction))
    if task == "binary":
        if metric == "logloss":
            return float(skm.log_loss(y_true, np.clip(prediction, 1e-15, 1 - 1e-15), labels=[0, 1]))
        if metric == "auc":
            return float(skm.roc_auc_score(y_true, prediction)) if len(np.unique(y_true)) == 2 else float("nan")
        if metric == "accuracy":
            return float(np.mean((prediction > 0.5) == y_true))
    n_classes = prediction.shape[1]
    if metric == "logloss":
        return float(skm.log_loss(y_true, prediction, labels=np.arange(n_classes)))
    if metric == "auc":
        present = np.unique(y_true)
        if len(present) < n_classes:
            return float("nan")
        return float(skm.roc_auc_score(y_true, prediction, multi_class="ovr", average="macro"))
    if metric == "accuracy":
        return float(np.mean(np.argmax(prediction, axis=1) == y_true))
    raise ValueError(f"unknown metric {metric!r}")


def gap(metric: str, train: float, test: float) -> float:
    """Signed so that positive means overfitting (test worse than train)."""
    return train - test if HIGHER_IS_BETTER[metric] else test - train


def score_all(metrics: tuple[str, ...], y_train, p_train, y_test, p_test, task: str) -> dict[str, float]:
    """``train_<m>``, ``test_<m>`` and ``gap_<m>`` for every metric of the task."""
    out = {}
    for metric in metrics:
        train = score(metric, y_train, p_train, task)
        test = score(metric, y_test, p_test, task)
        out[f"train_{metric}"] = train
        out[f"test_{metric}"] = test
        out[f"gap_{metric}"] = gap(metric, train, test)
    return out


def native_curves(history: dict, library_index: int, metric: str, task: str, y_train: np.ndarray,
                  y_test: np.ndarray) -> dict[str, np.ndarray]:
    """``curve_train_<metric>``/``curve_test_<metric>`` from a library's per-round evaluation record
    (``history[part][native name]``; ``library_index`` 0 = XGBoost's name, 1 = LightGBM's)."""
    curve = NATIVE_CURVE_METRIC[metric].get(task)
    if not curve:
        return {}
    return {f"curve_{part}_{metric}": transform_curve(history[part][curve[library_index]], curve[2], y)
            for part, y in (("train", y_train), ("test", y_test))}


def transform_curve(values: list[float], transform: str, y: np.ndarray) -> np.ndarray:
    curve = np.asarray(values, dtype="float64")
    if transform == "one_minus":
        return 1.0 - curve
    if transform == "r2_from_rmse":
        return 1.0 - curve**2 / np.var(y)
    return curve
