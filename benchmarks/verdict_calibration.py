"""How often does each verdict test say 'supported' or 'contradicted' when it should not? And how often
does it detect a moderate effect? Null data sets drawn in the former design of studies/l1_l2_claims.yaml
(2 models x 4 reg_alpha x 4 reg_lambda, 4 repeats x 3 folds; the study now uses 12 holdout splits), run through the same functions gbreg.judge
uses (gbreg.analysis.inference) with judge's defaults: the repeat as the unit (each split's summary averaged over
the folds of its repeat) and test='t'. numpy only, no training.

    python benchmarks/verdict_calibration.py                    # 4 repeats x 3 folds, 2000 sets per cell
    python benchmarks/verdict_calibration.py --sets 1000 --repeats 3 4 --test sign_flip

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

from gbreg.analysis.best_point_inference import best_evidence
from gbreg.analysis.inference import sign_evidence, spearman_rows, split_trend, trend_evidence

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


def trend_units(cells: np.ndarray, unit: str, repeats: int, constant_as_zero: bool = False) -> np.ndarray:
    """Per-split mean rho along reg_lambda (configurations: model x reg_alpha), averaged over the folds of
    each repeat when ``unit`` is 'repeat', as gbreg.judge does (``constant_as_zero`` for ``trend: none``)."""
    sets = cells.shape[0]
    by_config = np.moveaxis(cells, 3, -1).reshape(sets, MODELS * ALPHAS, -1, LAMBDAS)
    d, _ = split_trend(spearman_rows(by_config), constant_as_zero)
    return d.reshape(sets, repeats, FOLDS).mean(axis=2) if unit == "repeat" else d


def unit_means(cells: np.ndarray, unit: str, repeats: int) -> np.ndarray:
    """Each cell's value per unit: its mean over the folds of a repeat, or the split itself."""
    return cells.reshape(*cells.shape[:-1], repeats, FOLDS).mean(axis=-1) if unit == "repeat" else cells


def verdict_codes(test: str, cells: np.ndarray, repeats: int, unit: str = "repeat", method: str = "t") -> np.ndarray:
    """+1 supported, -1 contradicted, 0 inconclusive for every data set (alpha = 0.05, no Holm).
    ``method``: judge's ``test`` ('t' or 'sign_flip')."""
    found = evidence_of(test, cells, repeats, unit, method)
    return np.where(found["p"] < ALPHA, found["candidate"], 0)


def evidence_of(test: str, cells: np.ndarray, repeats: int, unit: str = "repeat", method: str = "t") -> dict:
    """The gbreg.analysis.inference evidence (candidate, p, effect, interval) for every data set."""
    if test in ("trend", "none"):
        evidence = trend_evidence(trend_units(cells, unit, repeats, test == "none"),
                                  "increasing" if test == "trend" else "none",
                                  ALPHA, TOLERANCE, method)
    elif test == "sign":
        values = unit_means(cells, unit, repeats)
        evidence = sign_evidence(values.reshape(cells.shape[0], -1, values.shape[-1]), "positive", ALPHA, method)
    else:
        values = unit_means(cells[:, :1], unit, repeats)  # one configuration (one model)
        grid = values.reshape(cells.shape[0], 1, ALPHAS * LAMBDAS, -1)
        a, b = np.meshgrid(np.arange(ALPHAS), np.arange(LAMBDAS), indexing="ij")
        edge = ((a == 0) | (a == ALPHAS - 1) | (b == 0) | (b == LAMBDAS - 1)).ravel()
        evidence = best_evidence(grid, edge, maximize=False, alpha=ALPHA, test=method)
    return evidence


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


def false_rates(sets: int, repeats: int = 4, seed: int = 0, unit: str = "repeat",
                method: str = "t") -> dict[tuple[str, str], float]:
    """False supported-or-contradicted rate per (test, scenario)."""
    rates = {}
    for s, scenario in enumerate(SCENARIOS):
        for t, test in enumerate(TESTS):
            rng = np.random.default_rng([seed, repeats, s, t])
            cells = draw(rng, sets, repeats, scenario, CONFIG_AXES[test])
            if test == "none":
                cells = cells + boundary_slope(rng, repeats, scenario) * _Z[:, None]
            rates[test, scenario] = float(np.mean(verdict_codes(test, cells, repeats, unit, method) != 0))
    return rates


def power(sets: int, repeats: int = 4, seed: int = 0, unit: str = "repeat", method: str = "t") -> dict[str, float]:
    """Share of 'supported' under moderate effects with iid noise sd 1: a slope of 0.3 sd per axis step
    (trend), a shift of 0.3 sd (sign), no slope at all (none), a bowl 1 sd deep at its rim (best)."""
    codes = lambda test, cells: verdict_codes(test, cells, repeats, unit, method)  # noqa: E731
    rng = np.random.default_rng([seed, repeats, 99])
    shape_axes = CONFIG_AXES
    out = {}
    cells = draw(rng, sets, repeats, "iid", shape_axes["trend"]) + 0.3 * math.sqrt(1.25) * _Z[:, None]
    out["trend"] = float(np.mean(codes("trend", cells) == 1))
    out["none"] = float(np.mean(codes("none", draw(rng, sets, repeats, "iid", (1,))) == 1))
    out["sign"] = float(np.mean(codes("sign", draw(rng, sets, repeats, "iid", (1, 2)) + 0.3) == 1))
    bowl = 1.0 * ((_Z[:, None] ** 2 + _Z[None, :] ** 2) / (2 * _Z.max() ** 2))
    cells = draw(rng, sets, repeats, "iid", ()) + bowl[None, None, :, :, None]
    out["best"] = float(np.mean(codes("best", cells) == 1))
    return out


def attainable_level(units: int, method: str = "t") -> float:
    """The largest false-verdict rate a test over ``units`` can have at alpha = 0.05: alpha for the t-test,
    the largest 2k / 2^n below it for the exact sign-flip."""
    if method == "t":
        return ALPHA
    total = 2**units
    return 2 * (math.ceil(ALPHA / 2 * total) - 1) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=2000)
    parser.add_argument("--repeats", type=int, nargs="*", default=[4])
    parser.add_argument("--unit", choices=("repeat", "split"), default="repeat")
    parser.add_argument("--test", choices=("t", "sign_flip"), default="t", help="judge's test")
    args = parser.parse_args()
    for repeats in args.repeats:
        rates = false_rates(args.sets, repeats, unit=args.unit, method=args.test)
        units = repeats if args.unit == "repeat" else repeats * FOLDS
        print(f"\n{repeats} repeats x {FOLDS} folds, unit {args.unit} ({units}), test {args.test}, "
              f"{args.sets} null data sets per cell, alpha = {ALPHA}")
        print("| test | attainable level | " + " | ".join(SCENARIOS) + " | power (moderate effect) |")
        print("|---" * (len(SCENARIOS) + 3) + "|")
        powers = power(args.sets, repeats, unit=args.unit, method=args.test)
        for test in TESTS:
            cells = " | ".join(f"{rates[test, s]:.3f}" for s in SCENARIOS)
            print(f"| {test} | {attainable_level(units, args.test):.3f} | {cells} | {powers[test]:.2f} |")


if __name__ == "__main__":
    main()
