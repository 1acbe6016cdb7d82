"""Scores gbreg computes itself are scikit-learn's, to the last bit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import r2_score

from gbreg.models.metrics import r_squared


@pytest.mark.parametrize("seed", range(5))
def test_r_squared_is_scikit_learns_r2_score_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for n in (2, 3, 17, 442, 5000):
        y = rng.normal(size=n) * 10 ** rng.uniform(-4, 4)
        for prediction in (y + rng.normal(size=n) * y.std(), np.full(n, y.mean()), np.round(y), y[::-1].copy()):
            assert r_squared(y, prediction) == r2_score(y, prediction)


@pytest.mark.parametrize(("y", "prediction"), [([2.0, 2.0, 2.0], [2.0, 2.0, 2.0]),  # perfect on a constant
                                               ([2.0, 2.0, 2.0], [2.0, 3.0, 2.0]),  # wrong on a constant
                                               ([1, 2, 3, 4], [1, 2, 3, 5])])  # integer labels
def test_r_squared_edge_cases_are_scikit_learns(y, prediction):
    assert r_squared(np.array(y), np.array(prediction)) == r2_score(y, prediction)
