"""The reason of a best-point hypothesis: every configuration left out is named with why (CatBoost and
HistGradientBoosting on a reg_alpha x reg_lambda grid: no reg_alpha), and too few splits reads as a
sentence with and without configurations left out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gbreg import judge

NAN = float("nan")
AXES = ["reg_alpha", "reg_lambda"]
BEST = {"best": "m", "interior": AXES}
TOO_FEW = "only 1 split: a test needs at least 3 independent splits to say anything (add repeats)"


def cells(*, splits: int, libraries=("xgboost", "lightgbm"), no_alpha=(), partial=()) -> pd.DataFrame:
    """Per split a bowl over a 3 x 3 grid with noise: ``libraries`` on the full grid, ``no_alpha`` with
    reg_alpha absent (NaN), ``partial`` (linear counterparts) at reg_lambda = 0 < reg_alpha only."""
    rng = np.random.default_rng(26)
    rows = []
    for split in range(splits):
        for model in (*libraries, *no_alpha, *partial):
            alphas = [NAN] if model in no_alpha else [1.0, 10.0] if model in partial else [0.0, 1.0, 10.0]
            lambdas = [0.0] if model in partial else [0.0, 1.0, 10.0]
            for a in alphas:
                for b in lambdas:
                    value = (np.log1p(0 if np.isnan(a) else a) - np.log1p(1)) ** 2 + (np.log1p(b) - np.log1p(1)) ** 2
                    rows.append({"library": model, "model": model, "reg_alpha": a, "reg_lambda": b, "repeat": split,
                                 "fold": 0, "m": value + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


def best_reason(table: pd.DataFrame) -> str:
    return judge(table, [BEST], AXES)[0].reason


def test_one_split_reads_as_a_sentence_with_and_without_configurations_left_out():
    assert best_reason(cells(splits=1)) == TOO_FEW
    left_out = best_reason(cells(splits=1, no_alpha=("catboost", "sklearn_hgb"), partial=("logistic_l1",)))
    assert left_out == (TOO_FEW + "; left out, without a value at every cell of the grid: logistic_l1"
                        "; left out, without a value of reg_alpha: catboost, sklearn_hgb")


def test_splits_without_every_cell_are_counted_out_of_all():
    table = cells(splits=3)
    table = table[~((table["repeat"] > 0) & (table["model"] == "xgboost") & (table["reg_alpha"] == 10))]
    assert best_reason(table) == ("only 1 split of 3 with a value at every cell: a test needs at least 3 "
                                  "independent splits to say anything (add repeats)")


def test_libraries_without_reg_alpha_are_named_among_those_left_out():
    verdict = judge(cells(splits=4, no_alpha=("catboost", "sklearn_hgb")), [BEST], AXES)[0]
    assert np.isfinite(verdict.p_value) and verdict.numbers["n_configurations"] == 2
    assert verdict.numbers["n_configurations_left_out"] == 2
    assert ("over 2 configuration(s) and 4 splits; 1 interior and 8 edge cells; left out, without a value of "
            "reg_alpha: catboost, sklearn_hgb; t-scaled multiplier test") in verdict.reason
    alone = judge(cells(splits=4), [BEST], AXES)[0]
    assert "left out" not in alone.reason and alone.p_value == verdict.p_value


def test_a_library_without_reg_alpha_is_compared_along_reg_lambda():
    verdict = judge(cells(splits=4, no_alpha=("catboost",)), [{"best": "m", "interior": ["reg_lambda"]}], AXES)[0]
    assert verdict.numbers["n_configurations"] == 7 and "left out" not in verdict.reason


def test_a_configuration_without_any_value_of_the_metric_is_named():
    table = cells(splits=4, libraries=("xgboost", "lightgbm", "catboost"))
    table.loc[table["model"] == "catboost", "m"] = NAN  # every catboost trial failed
    assert "; left out, without a value of m: catboost" in best_reason(table)
