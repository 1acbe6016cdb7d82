"""A study on so few rows that LightGBM's (or HistGradientBoosting's) min_data_in_leaf allows no split is
warned about before it trains: every tree would be one leaf and every trial the same, silently."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
from conftest import small_spec, write_spec

from gbreg.spec.limits import leaf_size_warnings
from gbreg.spec.validation import load_spec


def tiny_study(folder, rows: int, **models):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"]).assign(y=rng.normal(size=rows))
    frame.to_csv(folder / "tiny.csv", index=False)
    spec = small_spec(data={"source": "file", "path": "tiny.csv", "target": "y"},
                      evaluation={"split": "holdout", "test_size": 0.25},
                      models={"xgboost": {"n_estimators": 5}, "lightgbm": {"n_estimators": 5, **models}})
    return write_spec(folder, spec)


def test_a_leaf_size_that_allows_no_split_is_warned_about(tmp_path):
    spec = load_spec(tiny_study(tmp_path, 40))  # 30 training rows: a split needs 2 x 20
    assert leaf_size_warnings(spec, 40) == [
        "lightgbm: min_data_in_leaf = 20 needs 40 training rows for a split, and a split here trains on 30: every "
        "tree will be a single leaf; set models.lightgbm.min_data_in_leaf to at most 15"]
    assert leaf_size_warnings(load_spec(tiny_study(tmp_path, 40, min_data_in_leaf=10)), 40) == []
    assert leaf_size_warnings(load_spec(tiny_study(tmp_path, 60)), 60) == []  # 45 rows: one split fits


def test_the_command_line_prints_it_as_a_warning(tmp_path):
    path = tiny_study(tmp_path, 40)
    result = subprocess.run([sys.executable, "-m", "gbreg", "validate", str(path)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "warning: lightgbm: min_data_in_leaf = 20 needs 40 training rows" in result.stderr
