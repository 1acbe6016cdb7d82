"""How often does each verdict test say 'supported' or 'contradicted' when it should not? And how often
does it detect a moderate effect? Null data sets drawn in the design of studies/l1_l2_claims.yaml
(2 models x 4 reg_alpha x 4 reg_lambda, repeats x 3 folds), run through the same functions gbreg.judge
uses (gbreg.inference), numpy only, no training.

    python benchmarks/verdict_calibration.py               # 2 repeats x 3 folds and 4 x 3, 2000 sets each
    python benchmarks/verdict_calibration.py --sets 1000 --repeats 2

Scenarios (noise sd 1 everywhere):
  iid       independent noise in every cell (trial x split)
  split     every split gets its own random level and random slopes along both axes, N(0, 1), shared
            by all configurations on that split (mean 0: no effect across splits)
  config    every configuration the test compares gets its own random level N(0, 1), fixed across splits
            (for the sign test each trial: median 0; for trend / best the level of the whole curve / grid)
  folds     the folds of a repeat share half of the cell noise variance (a per-repeat component)
The null for `trend: none` is the tolerance boundary: a fixed slope that makes the expected mean rho
equal to the tolerance (0.3); a false verdict there is 'supported' (claims no trend) or 'contradicted'.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from gbreg.inference import best_evidence, sign_evidence, spearman_rows, split_trend, trend_evidence

MODELS, ALPHAS, LAMBDAS, FOLDS = 2, 4, 4, 3
SCENARIOS = ("iid", "split", "config", "folds")
TESTS = ("trend", "none", "sign", "best")
ALPHA = 0.05
TOLERANCE = 0.3
SHARED_FOLD_NOISE = 0.5
_Z = (np.arange(4) - 1.5) / math.sqrt(1.25)  # the 4 axis positions standardised (mean 0, sd 1)


def draw(rng, sets: int, repeats: int, scenario: str, config_axes: tuple[int, ...]) -> np.ndarray:
    """Null cells, shape (sets, models, alphas, lambdas, splits). ``config_axes``: the grid axes (1 alpha,
    2 lambda) that, with the model, make up one configuration of the test (its random level)."""
    splits = repeats * FOLDS
    shape = (sets, MODELS, ALPHAS, LAMBDAS, splits)
    if scenario == "folds":
        shared = rng.standard_normal((sets, MODELS, ALPHAS, LAMBDAS, repeats)).repeat(FOLDS, axis=-1)
        noise = math.sqrt(SHARED_FOLD_NOISE) * shared + math.sqrt(1 - SHARED_FOLD_NOISE) * rng.standard_normal(shape)
    else:
        noise = rng.standard_normal(shape)
    if scenario == "split":
        level, slope_a, slope_l = (rng.standard_normal((sets, 1, 1, 1, splits)) for _ in range(3))
        noise = noise + level + slope_a * _Z[:, None, None] + slope_l * _Z[:, None]
    if scenario == "config":
        level_shape = [sets, MODELS, 1, 1, 1]
        for axis in config_axes:
            level_shape[axis + 1] = shape[axis + 1]
        noise = noise + rng.standard_normal(level_shape)
    return noise


def trend_units(cells: np.ndarray, unit: str, repeats: int) -> np.ndarray:
    """Per-split mean rho along reg_lambda (configurations: model x reg_alpha), as gbreg.judge does."""
    sets = cells.shape[0]
    by_config = np.moveaxis(cells, 3, -1).reshape(sets, MODELS * ALPHAS, -1, LAMBDAS)
    d, _ = split_trend(spearman_rows(by_config))
    return d.reshape(sets, repeats, FOLDS).mean(axis=2) if unit == "repeat" else d


def verdict_codes(test: str, cells: np.ndarray, repeats: int, unit: str = "split") -> np.ndarray:
    """+1 supported, -1 contradicted, 0 inconclusive for every data set (alpha = 0.05, no Holm)."""
    if test in ("trend", "none"):
        evidence = trend_evidence(trend_units(cells, unit, repeats), "increasing" if test == "trend" else "none",
                                  ALPHA, TOLERANCE)
    elif test == "sign":
        evidence = sign_evidence(cells.reshape(cells.shape[0], -1, cells.shape[-1]), "positive", ALPHA)
    else:
        grid = cells[:, :1].reshape(cells.shape[0], 1, ALPHAS * LAMBDAS, -1)  # one configuration (one model)
        a, b = np.meshgrid(np.arange(ALPHAS), np.arange(LAMBDAS), indexing="ij")
        edge = ((a == 0) | (a == ALPHAS - 1) | (b == 0) | (b == LAMBDAS - 1)).ravel()
        evidence = best_evidence(grid, edge, maximize=False, alpha=ALPHA)
    return np.where(evidence["p"] < ALPHA, evidence["candidate"], 0)


CONFIG_AXES = {"trend": (1,), "none": (1,), "sign": (1, 2), "best": ()}


def boundary_slope(rng, repeats: int, scenario: str) -> float:
    """The fixed slope along reg_lambda whose expected mean rho is TOLERANCE under ``scenario``."""
    low, high = 0.0, 3.0
    pilot = [draw(rng, 4000, repeats, scenario, CONFIG_AXES["none"]) for _ in range(1)][0]
    for _ in range(30):
        middle = (low + high) / 2
        rho = trend_units(pilot + middle * _Z[:, None], "split", repeats).mean()
        low, high = (middle, high) if rho < TOLERANCE else (low, middle)
    return (low + high) / 2


def false_rates(sets: int, repeats: int, seed: int = 0, unit: str = "split") -> dict[tuple[str, str], float]:
    """False supported-or-contradicted rate per (test, scenario)."""
    rates = {}
    for s, scenario in enumerate(SCENARIOS):
        for t, test in enumerate(TESTS):
            rng = np.random.default_rng([seed, repeats, s, t])
            cells = draw(rng, sets, repeats, scenario, CONFIG_AXES[test])
            if test == "none":
                cells = cells + boundary_slope(rng, repeats, scenario) * _Z[:, None]
            rates[test, scenario] = float(np.mean(verdict_codes(test, cells, repeats, unit) != 0))
    return rates


def power(sets: int, repeats: int, seed: int = 0) -> dict[str, float]:
    """Share of 'supported' under moderate effects with iid noise sd 1: a slope of 0.3 sd per axis step
    (trend), a shift of 0.3 sd (sign), no slope at all (none), a bowl 1 sd deep at its rim (best)."""
    rng = np.random.default_rng([seed, repeats, 99])
    shape_axes = CONFIG_AXES
    out = {}
    cells = draw(rng, sets, repeats, "iid", shape_axes["trend"]) + 0.3 * math.sqrt(1.25) * _Z[:, None]
    out["trend"] = float(np.mean(verdict_codes("trend", cells, repeats) == 1))
    out["none"] = float(np.mean(verdict_codes("none", draw(rng, sets, repeats, "iid", (1,)), repeats) == 1))
    out["sign"] = float(np.mean(verdict_codes("sign", draw(rng, sets, repeats, "iid", (1, 2)) + 0.3, repeats) == 1))
    bowl = 1.0 * ((_Z[:, None] ** 2 + _Z[None, :] ** 2) / (2 * _Z.max() ** 2))
    cells = draw(rng, sets, repeats, "iid", ()) + bowl[None, None, :, :, None]
    out["best"] = float(np.mean(verdict_codes("best", cells, repeats) == 1))
    return out


def attainable_level(test: str, repeats: int) -> float:
    """The largest false-verdict rate an exact test can have at alpha = 0.05 in this design."""
    from gbreg.inference import smallest_sign_test_p  # noqa: F401 - documents where the sign test's floor is

    n = repeats * FOLDS
    total = 2**n
    return 2 * (math.ceil(ALPHA / 2 * total) - 1) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=2000)
    parser.add_argument("--repeats", type=int, nargs="*", default=[2, 4])
    args = parser.parse_args()
    for repeats in args.repeats:
        rates = false_rates(args.sets, repeats)
        print(f"\n{repeats} repeats x {FOLDS} folds, {args.sets} null data sets per cell, alpha = {ALPHA}")
        print("| test | exact attainable level | " + " | ".join(SCENARIOS) + " | power (moderate effect) |")
        print("|---" * (len(SCENARIOS) + 3) + "|")
        powers = power(args.sets, repeats)
        for test in TESTS:
            cells = " | ".join(f"{rates[test, s]:.3f}" for s in SCENARIOS)
            print(f"| {test} | {attainable_level(test, repeats):.3f} | {cells} | {powers[test]:.2f} |")


if __name__ == "__main__":
    main()
