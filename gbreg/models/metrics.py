"""Evaluation metrics by name, their direction, and the generalization gap.

Final train/test scores are computed here from predictions (not read back from the libraries), so both
boosters and the linear models are scored by one definition. Per-round curves come from the libraries'
own evaluation, under the native names each booster adapter declares (:data:`CURVE_TRANSFORMS`).
"""

from __future__ import annotations

import numpy as np

from gbreg.catalogue import HIGHER_IS_BETTER

# How a curve of the libraries' per-round evaluation becomes the metric's (each adapter's declaration
# names the native metric, gbreg.models.boosters.library.Library.curve_metrics): r2 per round is
# 1 - rmse^2 / var(y) of that set; accuracy is 1 - error. Other metrics are recorded as evaluated.
CURVE_TRANSFORMS = {"r2": "r2_from_rmse", "accuracy": "one_minus"}


def score(metric: str, y_true: np.ndarray, prediction: np.ndarray, task: str) -> float:
    """``prediction``: values (regression), P(class 1) (binary) or an (n, k) probability matrix."""
    from sklearn import metrics as skm

    if metric == "rmse":
        return float(np.sqrt(np.mean((y_true - prediction) ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(y_true - prediction)))
    if metric == "r2":
        return r_squared(y_true, prediction)
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


def r_squared(y_true: np.ndarray, prediction: np.ndarray) -> float:
    """scikit-learn's ``r2_score`` (one output, no weights, ``force_finite``) with its arithmetic: sums
    over axis 0 of (n, 1) columns, so the value is the same to the last bit; without its input checks,
    which cost more than the score itself on every trial (tests/test_metrics.py compares them)."""
    y = np.asarray(y_true, dtype="float64").reshape(-1, 1)
    if len(y) < 2:
        return float("nan")
    residual = float(np.sum((y - np.asarray(prediction, dtype="float64").reshape(-1, 1)) ** 2, axis=0)[0])
    total = float(np.sum((y - np.mean(y, axis=0)) ** 2, axis=0)[0])
    if residual == 0:
        return 1.0
    return 0.0 if total == 0 else 1 - residual / total


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


def native_curves(history: dict, native_name: str | None, metric: str, y_train: np.ndarray,
                  y_test: np.ndarray) -> dict[str, np.ndarray]:
    """``curve_train_<metric>``/``curve_test_<metric>`` from a library's per-round evaluation record
    (``history[part][native_name]``); none when the library evaluates no curve for the metric."""
    if not native_name:
        return {}
    return {f"curve_{part}_{metric}": transform_curve(history[part][native_name], CURVE_TRANSFORMS.get(metric), y)
            for part, y in (("train", y_train), ("test", y_test))}


def transform_curve(values: list[float], transform: str, y: np.ndarray) -> np.ndarray:
    curve = np.asarray(values, dtype="float64")
    if transform == "one_minus":
        return 1.0 - curve
    if transform == "r2_from_rmse":
        return 1.0 - curve**2 / np.var(y)
    return curve


def probabilities_from_margin(raw, task: str) -> np.ndarray:
    """The model's raw score as what gbreg scores: itself (regression), the sigmoid (binary) or the
    softmax over classes (multiclass), in float64."""
    raw = np.asarray(raw, dtype="float64")
    if task == "regression":
        return raw
    if task == "binary":
        return 1.0 / (1.0 + np.exp(-raw))
    raw = raw - raw.max(axis=1, keepdims=True)
    expo = np.exp(raw)
    return expo / expo.sum(axis=1, keepdims=True)
