"""A LightGBM tree that could not split is one leaf every training row reaches: its cover is unknown, not 0.

Trained from an init score (as gbreg trains LightGBM), such a tree's model string records a leaf weight of
0; read as a cover of 0 it made the leaf "empty", so a penalty that zeroes every tree logged
zero_leaf_fraction 0 and empty_leaf_fraction 1 (the suite's H1 on every classification data set)."""

from __future__ import annotations

import numpy as np
import pytest
from test_catboost import _sklearn_fold

from gbreg.models.boosters import ADAPTERS
from gbreg.spec.params import resolve_params


@pytest.mark.parametrize("name", ["breast_cancer", "diabetes"])
def test_a_penalty_that_stops_every_split_zeroes_every_leaf(name):
    fold = _sklearn_fold(name)
    adapter = ADAPTERS["lightgbm"]
    params = resolve_params("lightgbm", {"n_estimators": 20, "num_leaves": 7, "reg_alpha": 1e6})
    metric = "logloss" if fold.task == "binary" else "rmse"
    result = adapter.train(adapter.prepare(fold, params), fold, params, metric, seed=0, threads=1)
    leaves = result.leaves
    assert (np.bincount(leaves["tree"]) == 1).all()  # every tree is one leaf
    assert (leaves["value"] == 0).all() and np.isnan(leaves["cover"]).all()
    assert result.stats["zero_leaf_fraction"] == 1.0 and result.stats["empty_leaf_fraction"] == 0.0
