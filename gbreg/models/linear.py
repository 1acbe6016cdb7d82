"""Linear-model counterparts of the boosters, on a penalty scale matched to the boosters' objective.

A counterpart is the scikit-learn linear model that minimizes the same objective as the boosters, up to
a constant factor, with the linear model's coefficients in place of the leaf weights. The mapping from
gbreg's ``reg_alpha``/``reg_lambda`` to scikit-learn's settings lives in one place,
:func:`sklearn_settings`, whose docstring derives it (docs/linear_counterparts.md says the same for
users); tests/test_linear.py checks it against a direct scipy minimization of the booster-style
objective.

Which model runs at which grid point: each counterpart covers one kind of point (:data:`COVERS`), so
that listing a family's models gives every point exactly one matching model of that family.

No scikit-learn import at module level: ``gbreg.plan`` reads :data:`COVERS` without loading it.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gbreg.catalogue import METRICS_BY_TASK
from gbreg.models.boosters.adapter import FoldData, SplitResult
from gbreg.models.metrics import score_all

# The kind of penalty at a grid point: "none" (α = λ = 0), "l1" (λ = 0 < α), "l2" (α = 0 < λ),
# "elasticnet" (both > 0).
COVERS: dict[str, frozenset[str]] = {
    "ols": frozenset({"none"}),
    "lasso": frozenset({"l1"}),
    "ridge": frozenset({"l2"}),
    "elasticnet": frozenset({"elasticnet"}),
    "logistic_l1": frozenset({"l1"}),
    # λ = 0 is the limit of the L2 path: unpenalized logistic regression (C = inf)
    "logistic_l2": frozenset({"l2", "none"}),
    "logistic_elasticnet": frozenset({"elasticnet"}),
    # a hard-margin SVM (no penalty) has no finite C, and liblinear has no elastic net
    "linear_svm_l1": frozenset({"l1"}),
    "linear_svm_l2": frozenset({"l2"}),
}

# Model families: one panel / one column block per family in the comparison.
FAMILY = {"ols": "linear", "lasso": "linear", "ridge": "linear", "elasticnet": "linear",
          "logistic_l1": "logistic", "logistic_l2": "logistic", "logistic_elasticnet": "logistic",
          "linear_svm_l1": "linear_svm", "linear_svm_l2": "linear_svm"}

# liblinear (pure-L1 logistic regression, linear SVMs) penalizes the intercept as the weight of a
# synthetic constant feature of this value: the intercept's penalty is reg·|b|/s (or ½·reg·(b/s)²),
# negligible at s = 1e4 (tests/test_linear.py measures the effect against the exact optimum).
LIBLINEAR_INTERCEPT_SCALING = 1e4
# Convergence settings: tight enough that the fit is the optimum of the objective to ~1e-5 relative on
# standardized features; a fit that stops at max_iter is logged with converged = False.
COORDINATE_DESCENT_TOL = 1e-8
LOGISTIC_TOL = 1e-6
LIBLINEAR_TOL = 1e-6
MAX_ITER = 5_000


def point_kind(reg_alpha: float, reg_lambda: float) -> str:
    if reg_alpha > 0 and reg_lambda > 0:
        return "elasticnet"
    if reg_alpha > 0:
        return "l1"
    return "l2" if reg_lambda > 0 else "none"


def covers(model: str, reg_alpha: float, reg_lambda: float) -> bool:
    """Whether ``model`` is the counterpart of the grid point (reg_alpha, reg_lambda)."""
    return point_kind(reg_alpha, reg_lambda) in COVERS[model]


_KIND_TEXT = {"none": "unpenalized (reg_alpha = reg_lambda = 0)", "l1": "pure-L1 (reg_lambda = 0 < reg_alpha)",
              "l2": "pure-L2 (reg_alpha = 0 < reg_lambda)", "elasticnet": "mixed (reg_alpha > 0 and reg_lambda > 0)"}


def describe_covers(model: str) -> str:
    """The kinds of grid point ``model`` is the counterpart of, in words (for error messages)."""
    return " or ".join(_KIND_TEXT[kind] for kind in _KIND_TEXT if kind in COVERS[model])


def sklearn_settings(model: str, reg_alpha: float, reg_lambda: float, n_train: int) -> dict:
    """The scikit-learn estimator and settings whose objective is the boosters' at (α, λ), up to a factor.

    XGBoost and LightGBM minimize, over the leaf weights w (here: the coefficients of a linear model
    on the standardized, one-hot-encoded design X, with an unpenalized intercept b)::

        J(w, b) = Σᵢ loss(yᵢ, xᵢ·w + b) + α·‖w‖₁ + ½·λ·‖w‖₂²

    with loss = ½(y − ŷ)² for regression (gradient ŷ − y, hessian 1) and the log-loss (binary or
    softmax) for classification. Dividing J by a positive constant does not move its minimum, so:

    * ElasticNet minimizes ``1/(2n)·‖y − Xw − b‖² + a·ρ·‖w‖₁ + ½·a·(1 − ρ)·‖w‖²``. Times n:
      ``½‖r‖² + n·a·ρ·‖w‖₁ + ½·n·a·(1 − ρ)·‖w‖²``, so n·a·ρ = α and n·a·(1 − ρ) = λ:
      **a = (α + λ)/n, ρ = l1_ratio = α/(α + λ)**.
    * Lasso (ρ = 1, λ = 0): **a = α/n**.
    * Ridge minimizes ``‖r‖² + a·‖w‖²`` = 2·(½‖r‖² + ½·a·‖w‖²): **a = λ** (no 1/n).
    * LinearRegression: α = λ = 0.
    * LogisticRegression minimizes ``C·Σ logloss + ρ·‖w‖₁ + ½·(1 − ρ)·‖w‖²``. Divided by C:
      ``Σ logloss + (ρ/C)·‖w‖₁ + ½·((1 − ρ)/C)·‖w‖²``, so **C = 1/(α + λ), l1_ratio = α/(α + λ)**;
      α = λ = 0 is C = inf (unpenalized). ``penalty=`` is deprecated since scikit-learn 1.8: the
      penalty is expressed by l1_ratio and C alone.
    * LinearSVC minimizes ``C·Σ squared_hinge + ‖w‖₁`` (L1) or ``C·Σ squared_hinge + ½‖w‖²`` (L2):
      **C = 1/α** (L1) and **C = 1/λ** (L2). Its loss is not the booster's; the penalty scale is.

    n is the number of training rows of the split. The intercept is unpenalized in every objective
    above; liblinear (pure-L1 logistic, LinearSVC) penalizes it weakly, see
    :data:`LIBLINEAR_INTERCEPT_SCALING`.
    """
    kind = point_kind(reg_alpha, reg_lambda)
    if kind not in COVERS[model]:
        raise ValueError(f"{model!r} is not the counterpart of reg_alpha={reg_alpha:g}, reg_lambda={reg_lambda:g} "
                         f"(a {kind!r} point); it covers {sorted(COVERS[model])}")
    total = reg_alpha + reg_lambda
    if model == "ols":
        return {"estimator": "LinearRegression"}
    if model == "lasso":
        return {"estimator": "Lasso", "sklearn_alpha": reg_alpha / n_train}
    if model == "ridge":
        return {"estimator": "Ridge", "sklearn_alpha": reg_lambda}
    if model == "elasticnet":
        return {"estimator": "ElasticNet", "sklearn_alpha": total / n_train, "l1_ratio": reg_alpha / total}
    if model.startswith("logistic_"):
        l1_ratio = reg_alpha / total if total > 0 else 0.0
        return {"estimator": "LogisticRegression", "C": 1.0 / total if total > 0 else math.inf,
                "l1_ratio": l1_ratio}
    penalty = "l1" if model == "linear_svm_l1" else "l2"
    return {"estimator": "LinearSVC", "penalty": penalty, "loss": "squared_hinge",
            "C": 1.0 / (reg_alpha if penalty == "l1" else reg_lambda)}


def make_estimator(settings: dict, n_classes: int, seed: int):
    """The scikit-learn estimator for :func:`sklearn_settings`' output, with gbreg's solver choices."""
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
    from sklearn.svm import LinearSVC

    name = settings["estimator"]
    if name == "LinearRegression":
        return LinearRegression()
    if name == "Ridge":
        return Ridge(alpha=settings["sklearn_alpha"])
    if name == "Lasso":
        return Lasso(alpha=settings["sklearn_alpha"], tol=COORDINATE_DESCENT_TOL, max_iter=MAX_ITER)
    if name == "ElasticNet":
        return ElasticNet(alpha=settings["sklearn_alpha"], l1_ratio=settings["l1_ratio"],
                          tol=COORDINATE_DESCENT_TOL, max_iter=MAX_ITER)
    if name == "LogisticRegression":
        solver = logistic_solver(settings["l1_ratio"], n_classes)
        scaling = {"intercept_scaling": LIBLINEAR_INTERCEPT_SCALING} if solver == "liblinear" else {}
        tol = LIBLINEAR_TOL if solver == "liblinear" else LOGISTIC_TOL
        return LogisticRegression(C=settings["C"], l1_ratio=settings["l1_ratio"], solver=solver, tol=tol,
                                  max_iter=MAX_ITER, random_state=seed, **scaling)
    return LinearSVC(penalty=settings["penalty"], loss=settings["loss"], dual=False, C=settings["C"],
                     tol=LIBLINEAR_TOL, max_iter=MAX_ITER, intercept_scaling=LIBLINEAR_INTERCEPT_SCALING,
                     random_state=seed)


def logistic_solver(l1_ratio: float, n_classes: int) -> str:
    """lbfgs for L2 (exact, unpenalized intercept); liblinear for binary pure L1 (saga needs minutes
    near separability, measured on breast_cancer); saga for elastic net and multiclass L1."""
    if l1_ratio == 0.0:
        return "lbfgs"
    if l1_ratio == 1.0 and n_classes <= 2:
        return "liblinear"
    return "saga"


# ----------------------------------------------------------------------------------------------------
# the design matrix


@dataclass
class Design:
    """Column names of the transformed design and, for each, the original feature it comes from."""

    columns: list[str]
    origins: list[str]


def make_preprocessor(X: pd.DataFrame):
    """Impute and standardize numeric columns, one-hot categorical ones (missing is its own category).

    The boosters see the raw frame (native missing values and categoricals); the linear models need a
    numeric design on one scale so that one penalty treats every coefficient alike.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in X.columns if c not in categorical]
    parts = []
    if numeric:
        parts.append(("numeric", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                                           ("scale", StandardScaler())]), numeric))
    if categorical:
        parts.append(("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def design_of(preprocessor) -> Design:
    columns, origins = [], []
    for name, transformer, features in preprocessor.transformers_:
        if name == "numeric":
            columns += list(features)
            origins += list(features)
        elif name == "categorical":
            for feature, categories in zip(features, transformer.categories_):
                columns += [f"{feature}={category}" for category in categories]
                origins += [feature] * len(categories)
    return Design(columns, origins)


def _to_frame(X: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as object columns with NaN for missing (what OneHotEncoder expects)."""
    out = X.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(object).where(out[column].notna(), np.nan)
    return out


# ----------------------------------------------------------------------------------------------------
# one fit


def fit_counterpart(model: str, params: dict, fold: FoldData, metric: str, seed: int) -> SplitResult:
    """Fit the counterpart ``model`` at the grid point in ``params`` on one split and measure it.

    ``metric`` is unused: a linear model has no per-round curves; every metric of the task is scored.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import Pipeline


    settings = sklearn_settings(model, float(params["reg_alpha"]), float(params["reg_lambda"]), len(fold.y_train))
    X_train, X_test = _to_frame(fold.X_train), _to_frame(fold.X_test)
    pipeline = Pipeline([("prepare", make_preprocessor(fold.X_train)),
                         ("model", make_estimator(settings, fold.n_classes, seed))])
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipeline.fit(X_train, fold.y_train)
        predictor = _calibrated(pipeline, X_train, fold.y_train) if settings["estimator"] == "LinearSVC" else pipeline
    fit_seconds = time.perf_counter() - start
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    p_train, p_test = _predict(predictor, X_train, fold.task), _predict(predictor, X_test, fold.task)
    scores = score_all(METRICS_BY_TASK[fold.task], fold.y_train, p_train, fold.y_test, p_test, fold.task)
    design = design_of(pipeline.named_steps["prepare"])
    coefficients = coefficient_table(pipeline.named_steps["model"].coef_, design)
    stats = coefficient_stats(coefficients, design)
    extra = {**settings, "converged": converged, "features_used": features_used(coefficients, design)}
    if settings["estimator"] == "LogisticRegression":
        extra["solver"] = pipeline.named_steps["model"].solver
    return SplitResult(scores=scores, coefficients=coefficients, stats=stats, fit_seconds=fit_seconds,
                       extra_params=extra)


def _calibrated(pipeline, X_train: pd.DataFrame, y_train: np.ndarray):
    """A linear SVM has no probabilities: Platt scaling (sigmoid of the decision function) fitted on
    the training split, the SVM itself left as fitted (FrozenEstimator). logloss and auc are those of
    the calibrated probabilities; accuracy thresholds them at 0.5 (binary) or takes the argmax."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    return CalibratedClassifierCV(FrozenEstimator(pipeline), method="sigmoid").fit(X_train, y_train)


def _predict(predictor, X: pd.DataFrame, task: str) -> np.ndarray:
    if task == "regression":
        return np.asarray(predictor.predict(X), dtype="float64")
    probabilities = np.asarray(predictor.predict_proba(X), dtype="float64")
    return probabilities[:, 1] if task == "binary" else probabilities


def coefficient_table(coef: np.ndarray, design: Design) -> pd.DataFrame:
    """One row per (class, design column): ``feature``, ``klass`` (0 unless multiclass), ``coef``."""
    coef = np.atleast_2d(np.asarray(coef, dtype="float64"))
    n_classes, n_columns = coef.shape
    return pd.DataFrame({"feature": design.columns * n_classes,
                         "klass": np.repeat(np.arange(n_classes), n_columns).astype("int16"),
                         "coef": coef.ravel()})


def features_used(coefficients: pd.DataFrame, design: Design) -> list[str]:
    """Original features with a nonzero coefficient for some class (a one-hot feature counts once)."""
    origin = dict(zip(design.columns, design.origins))
    nonzero = coefficients.loc[coefficients["coef"] != 0.0, "feature"].map(origin)
    used = set(nonzero)
    return [feature for feature in dict.fromkeys(design.origins) if feature in used]


def coefficient_stats(coefficients: pd.DataFrame, design: Design) -> dict[str, float]:
    """Sparsity and size of the coefficients (intercept excluded); ``coef_l2`` is the Euclidean norm."""
    values = coefficients["coef"].to_numpy()
    n_nonzero = int(np.count_nonzero(values))
    return {
        "n_nonzero_coef": float(n_nonzero),
        "zero_coef_fraction": 1.0 - n_nonzero / len(values) if len(values) else 0.0,
        "coef_l1": float(np.abs(values).sum()),
        "coef_l2": float(np.sqrt(np.sum(values**2))),
        "n_features_used": float(len(features_used(coefficients, design))),
    }
