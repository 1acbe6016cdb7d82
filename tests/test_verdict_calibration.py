"""Calibration, measured: null data sets in the claims studies' former design (2 models x 4 reg_alpha x
4 reg_lambda, 4 repeats x 3 folds) through the functions gbreg.judge uses, with judge's defaults (the repeat
as the unit, t-tests); each test's false supported-or-contradicted rate at alpha = 0.05 under four nulls
(benchmarks/verdict_calibration.py prints the full table, docs/hypotheses.md has the figures)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

SETS = 4000  # per scenario and test: Monte Carlo standard error 0.0034 at a true rate of 0.05
EXACT_SETS = 1000


def calibration():
    spec = importlib.util.spec_from_file_location("verdict_calibration", REPO / "benchmarks" / "verdict_calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_batched_path_is_what_judge_computes():
    """The calibration's arrays and judge's table give the same verdicts and p-values on the same data sets
    (judge's defaults: unit 'repeat' for 4 repeats x 3 folds, test 't')."""
    from gbreg import judge

    bench = calibration()
    rng = np.random.default_rng(5)
    cells = bench.draw(rng, 3, 4, "split", (1,)) + 0.2 * bench._Z[:, None]
    hypotheses = {"trend": {"metric": "m", "trend": "increasing", "along": "reg_lambda"},
                  "none": {"metric": "m", "trend": "none", "along": "reg_lambda"},
                  "sign": {"metric": "m", "sign": "positive"},
                  "best": {"best": "m", "interior": ["reg_alpha", "reg_lambda"], "where": {"model": "m0"}}}
    codes = {"supported": 1, "contradicted": -1, "inconclusive": 0}
    for test, hypothesis in hypotheses.items():
        evidence = bench.evidence_of(test, cells, 4)
        for k in range(3):
            verdict = judge(as_table(cells[k]), [hypothesis], ["reg_alpha", "reg_lambda"])[0]
            assert verdict.unit == "repeat" and verdict.n_units == 4
            assert verdict.p_value == pytest.approx(evidence["p"][k], abs=1e-12), (test, k)
            assert codes[verdict.verdict] == bench.verdict_codes(test, cells[k:k + 1], 4)[0], (test, k)


def as_table(cells: np.ndarray) -> pd.DataFrame:
    models, alphas, lambdas, splits = cells.shape
    rows = [{"library": f"m{m}", "model": f"m{m}", "reg_alpha": float(a), "reg_lambda": float(b),
             "repeat": s // 3, "fold": s % 3, "m": cells[m, a, b, s]}
            for m in range(models) for a in range(alphas) for b in range(lambdas) for s in range(splits)]
    return pd.DataFrame(rows)


# the false supported-or-contradicted rate every test must keep under every null scenario (alpha = 0.05):
# the issue's [0.035, 0.065]. The sign and best-point tests are approximations calibrated here
# (docs/hypotheses.md): before their fixes the sign test said 'supported' 2.6 % of the time with iid cells
# and the best-point test 7-10 % with 3 repeats.
BAND = (0.035, 0.065)


@pytest.mark.slow
@pytest.mark.parametrize("repeats", [3, 4])
def test_every_test_holds_its_level_under_realistic_nulls_and_finds_moderate_effects(repeats):
    """``repeats`` x 3 folds, SETS null data sets per scenario (iid, split-level random slopes,
    configuration-level random effects, folds of a repeat sharing noise) through gbreg.analysis.inference."""
    bench = calibration()
    rates = bench.false_rates(SETS, repeats=repeats, seed=1)
    assert {scenario for _, scenario in rates} == {"iid", "split", "config", "folds"}
    for (test, scenario), rate in rates.items():
        assert BAND[0] <= rate <= BAND[1], (test, scenario, rate)
    if repeats == 4:
        power = bench.power(SETS // 2, repeats=4, seed=3)
        assert power["trend"] > 0.9 and power["none"] > 0.7 and power["sign"] > 0.8 and power["best"] > 0.4


@pytest.mark.slow
def test_the_exact_sign_flip_path_over_twelve_splits_holds_its_attainable_level():
    """test='sign_flip', unit='split': 12 splits reach 2 * 102 / 4096 = 0.0498. Under nulls that keep the
    splits independent (iid, split slopes, configuration effects) no rate is above it (3 Monte Carlo
    standard errors; the best-point test, approximate, at most 0.08); the folds scenario breaks that
    independence and is why 'auto' uses the repeat."""
    bench = calibration()
    rates = bench.false_rates(EXACT_SETS, repeats=4, seed=4, unit="split", method="sign_flip")
    level = bench.attainable_level(12, "sign_flip")
    assert level == pytest.approx(2 * 102 / 4096)
    margin = 3 * math.sqrt(level * (1 - level) / EXACT_SETS)
    for test in ("trend", "none", "sign", "best"):
        for scenario in ("iid", "split", "config"):
            assert rates[test, scenario] <= (0.08 if test == "best" else level + margin), (test, scenario)
    assert rates["trend", "folds"] > level + margin  # what the repeat as the unit is for
