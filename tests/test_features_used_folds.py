"""A trial's read-back params under k-fold: ``features_used`` is the union over every fit, in the
data's column order (support recovery reads it as what the trial used), and ``converged`` is true only
when every fit converged; the other read-back values are the first fit's (docs/mlflow_contract.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gbreg.data_splits import Split
from gbreg.models.boosters.adapter import SplitResult
from gbreg.models.trial import TrialContext, TrialTask, aggregate, run_trial
from gbreg.spec.params import resolve_params

ROWS = 200


def _context_where_one_feature_varies_only_in_the_second_half() -> TrialContext:
    """``late`` is 0 on the first half of the rows, so the fold trained there cannot use it; the fold
    trained on the second half does. ``late`` comes first in the data, ``signal`` second."""
    rng = np.random.default_rng(0)
    signal = rng.normal(size=ROWS)
    late = np.where(np.arange(ROWS) < ROWS // 2, 0.0, rng.normal(size=ROWS))
    X = pd.DataFrame({"late": late, "signal": signal})
    y = signal + 5.0 * late + rng.normal(scale=0.1, size=ROWS)
    first, second = np.arange(ROWS // 2), np.arange(ROWS // 2, ROWS)
    splits = [Split(0, 0, first, second), Split(0, 1, second, first)]
    return TrialContext(X, y, "regression", 0, splits, "rmse", seed=0, threads=1)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_a_booster_trial_logs_the_features_any_fold_used(library):
    params = resolve_params(library, {"n_estimators": 10, "reg_alpha": 0.0, "reg_lambda": 1.0})
    result = run_trial(TrialTask("t", "booster", library, library, params),
                       _context_where_one_feature_varies_only_in_the_second_half())
    assert result.ok, result.error
    per_fold = result.folds["n_features_used"].tolist()
    assert per_fold == [1.0, 2.0]  # fold 0 could not split on `late`
    assert result.extra_params["features_used"] == ["late", "signal"]  # the data's order, not first use


def test_a_linear_trial_logs_the_features_any_fold_used():
    result = run_trial(TrialTask("t", "linear", "sklearn", "lasso", {"reg_alpha": 1.0, "reg_lambda": 0.0}),
                       _context_where_one_feature_varies_only_in_the_second_half())
    assert result.ok, result.error
    assert result.folds["n_features_used"].tolist() == [1.0, 2.0]
    assert result.extra_params["features_used"] == ["late", "signal"]


def _fit(features: list[str], **extra) -> SplitResult:
    return SplitResult(scores={"test_rmse": 1.0}, fit_seconds=0.0,
                       extra_params={"features_used": features, **extra})


def test_converged_only_when_every_fit_converged_and_other_values_are_the_first_fits():
    splits = [Split(0, fold, np.arange(1), np.arange(1)) for fold in range(3)]
    fits = [_fit(["b"], converged=True, sklearn_alpha=0.1), _fit(["c", "a"], converged=False, sklearn_alpha=0.2),
            _fit([], converged=True, sklearn_alpha=0.3)]
    extra = aggregate("t", splits, fits, columns=["a", "b", "c"]).extra_params
    assert extra == {"features_used": ["a", "b", "c"], "converged": False, "sklearn_alpha": 0.1}
    assert aggregate("t", splits, fits).extra_params["features_used"] == ["b", "c", "a"]  # no columns: first use
    assert aggregate("t", splits[:1], fits[:1]).extra_params["converged"] is True
