"""Is the combination across data sets (gbreg.analysis.meta) calibrated with few data sets? Null suites of k
data sets run through the same functions a suite uses: per data set an effect with a t interval as
gbreg.judge reports it, the standard error recovered from the interval (meta.standard_errors), then the
random-effects meta-analysis (meta.random_effects). numpy/scipy only, no training.

    python benchmarks/meta_calibration.py                       # 20,000 suites per cell
    python benchmarks/meta_calibration.py --suites 4000 --k 4 8 --methods reml_cr2 reml_hksj
    python benchmarks/meta_calibration.py --units 4 4 --spread 1.0    # 4 repeats each, unequal noise
    python benchmarks/meta_calibration.py --best --suites 2000         # best-point claims on flat surfaces

Each data set: true effect ~ N(mean, tau²); its effect is the mean over n units, n uniform in 3..6 (a
study's repeats; --units), the units N(true effect, sigma²) with sigma = 0.3 exp(N(0, 0.5²)) per data set
(--spread; so the within-data-set variances differ, about 0.03 typical, and each is estimated from 2-5 df),
reported as effect ± t_{0.975, n-1} sd / √n. tau² none 0, small 0.01 (a third of the typical within
variance), large 0.1 (three times it). Printed per k and tau²: the false-positive rate at α = 0.05 (the
combined interval excludes 0 when the true combined effect is 0) with its 95% Monte Carlo interval;
coverage of the combined interval at a true mean of 0.15; coverage of the 95% prediction interval for a
new data set's true effect; power at 0.15.

``--best``: the same question for best-point claims, whose per-data-set effect (best interior minus best
edge cell) is below 0 on a flat surface by the choice of the maxima alone. Each data set: a flat 5 x 4 grid
(the shipped suite's), n units as above, a level per unit and cell noise sigma; its statistic and the
sign-flip null's mean and SD (gbreg.analysis.best_point_inference), then the suite's scale
(gbreg.suite.aggregate.standardized) and the meta-analysis. Printed: the combined false positives, each
direction, for the centred scale the suite uses and for the raw effect over its standard error (before
2026-12-03).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd
from scipy.stats import t

from gbreg.analysis.meta import random_effects, standard_errors

ALPHA = 0.05
TAU2 = {"none": 0.0, "small": 0.01, "large": 0.1}
SHIFT = 0.15
METHODS = {"reml_cr2": ("reml", "cr2"), "pm_cr2": ("paule_mandel", "cr2"), "pm_hksj": ("paule_mandel", "hksj"),
           "pm_hksj_modified": ("paule_mandel", "hksj_modified"), "reml_hksj": ("reml", "hksj"),
           "dl_hksj": ("dersimonian_laird", "hksj")}


def draw_suites(rng, suites: int, k: int, tau2: float, mean: float = 0.0, units_range=(3, 6),
                spread: float = 0.5) -> tuple[pd.DataFrame, np.ndarray]:
    """One per-data-set row per (suite, data set) as gbreg.judge reports it, and the true effects."""
    truth = mean + math.sqrt(tau2) * rng.standard_normal((suites, k))
    n = rng.integers(units_range[0], units_range[1] + 1, (suites, k))
    sigma = 0.3 * np.exp(spread * rng.standard_normal((suites, k)))
    units = truth[..., None] + sigma[..., None] * rng.standard_normal((suites, k, units_range[1]))
    used = np.arange(units_range[1]) < n[..., None]
    effect = np.where(used, units, 0).sum(axis=2) / n
    sd = np.sqrt(np.where(used, (units - effect[..., None]) ** 2, 0).sum(axis=2) / (n - 1))
    half = t.ppf(1 - ALPHA / 2, n - 1) * sd / np.sqrt(n)
    rows = pd.DataFrame({"effect": effect.ravel(), "ci_low": (effect - half).ravel(),
                         "ci_high": (effect + half).ravel(), "n_units": n.ravel(), "alpha": ALPHA})
    return rows, truth


def combine(rows: pd.DataFrame, suites: int, k: int, method: str) -> dict[str, np.ndarray]:
    rows = standard_errors(rows)
    tau2_method, variance = METHODS[method]
    return random_effects(rows["effect"].to_numpy().reshape(suites, k), rows["se"].to_numpy().reshape(suites, k) ** 2,
                          ALPHA, tau2_method, variance)


def rate(hits: np.ndarray) -> tuple[float, float, float]:
    """Share and its 95% Wilson interval."""
    n, p = len(hits), float(np.mean(hits))
    z = 1.959964
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return p, centre - half, centre + half


def cell(rng, suites: int, k: int, tau2: float, method: str, **design) -> dict[str, float]:
    rows, _ = draw_suites(rng, suites, k, tau2, **design)
    null = combine(rows, suites, k, method)
    false_positive, low, high = rate((null["ci_low"] > 0) | (null["ci_high"] < 0))
    rows, _ = draw_suites(rng, suites, k, tau2, SHIFT, **design)
    shifted = combine(rows, suites, k, method)
    new = SHIFT + math.sqrt(tau2) * rng.standard_normal(suites)
    return {"fpr": false_positive, "fpr_low": low, "fpr_high": high,
            "coverage": float(np.mean((shifted["ci_low"] <= SHIFT) & (SHIFT <= shifted["ci_high"]))),
            "pi_coverage": float(np.mean((shifted["pi_low"] <= new) & (new <= shifted["pi_high"]))),
            "power": float(np.mean(shifted["ci_low"] > 0))}


def table(suites: int, ks: list[int], methods: list[str], seed: int = 0, **design) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = [{"method": method, "k": k, "tau2": name} | cell(rng, suites, k, tau2, method, **design)
           for method in methods for k in ks for name, tau2 in TAU2.items()]
    return pd.DataFrame(out)


def best_table(suites: int, ks: list[int], seed: int = 0, units_range=(3, 6), spread: float = 0.5) -> pd.DataFrame:
    """Flat best-point suites (see the module): false positives of the combined verdict per k and scale."""
    from gbreg.analysis.best_point_inference import best_evidence
    from gbreg.spec.hypotheses import Hypothesis
    from gbreg.suite.aggregate import standardized

    rng = np.random.default_rng(seed)
    ga, gl = np.meshgrid(np.arange(5), np.arange(4), indexing="ij")
    edge = ((ga == 0) | (ga == 4) | (gl == 0) | (gl == 3)).ravel()
    h = Hypothesis.model_validate({"best": "test_rmse", "interior": ["reg_alpha", "reg_lambda"]})
    out = []
    for k in ks:
        rows = []
        for n in range(units_range[0], units_range[1] + 1):  # one batch per number of units
            count = suites * k
            sigma = 0.3 * np.exp(spread * rng.standard_normal((count, 1, 1, 1)))
            values = rng.standard_normal((count, 1, 1, n)) + sigma * rng.standard_normal((count, 1, edge.size, n))
            evidence = best_evidence(values, edge, False, ALPHA)  # the suite's default test, t
            rows.append(pd.DataFrame({name: evidence[name] for name in ("effect", "ci_low", "ci_high", "null_mean",
                                                                       "null_sd")}).assign(n_units=n))
        pick = rng.integers(0, len(rows), (suites, k))  # each data set's number of units, uniform
        table = pd.concat(rows, ignore_index=True)
        index = pick * (suites * k) + np.arange(suites * k).reshape(suites, k)
        chosen = table.iloc[index.ravel()].reset_index(drop=True)
        raw = chosen.assign(alpha=ALPHA, df=np.nan)
        for scale, frame in (("centred", standardized(chosen, h)[0]), ("raw / SE (before)", _raw_z(raw))):
            se = standard_errors(frame)
            result = random_effects(se["effect"].to_numpy().reshape(suites, k), se["se"].to_numpy().reshape(suites, k) ** 2,
                                    ALPHA)
            low, high = result["ci_low"], result["ci_high"]
            out.append({"k": k, "scale": scale, "contradicted": float(np.mean(high < 0)),
                        "supported": float(np.mean(low > 0)), "mean_estimate": float(np.mean(result["estimate"]))})
    return pd.DataFrame(out)


def _raw_z(rows: pd.DataFrame) -> pd.DataFrame:
    """The scale a suite combined best points on before 2026-12-03: the raw effect over its standard error."""
    from scipy.stats import norm

    se = standard_errors(rows)["se"].to_numpy(float)
    z = rows["effect"].to_numpy(float) / se
    half = norm.ppf(1 - ALPHA / 2)
    return rows.assign(effect=z, ci_low=z - half, ci_high=z + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", type=int, default=20000)
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8, 15])
    parser.add_argument("--methods", nargs="+", default=["reml_cr2"], choices=list(METHODS))
    parser.add_argument("--units", type=int, nargs=2, default=[3, 6], metavar=("MIN", "MAX"),
                        help="units (repeats) per data set, uniform in MIN..MAX")
    parser.add_argument("--spread", type=float, default=0.5, help="sd of log sigma across data sets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--best", action="store_true", help="best-point claims on flat surfaces (see the module)")
    args = parser.parse_args()
    if args.best:
        result = best_table(args.suites, args.k, args.seed, tuple(args.units), args.spread)
        print(f"{args.suites} flat best-point suites per k, alpha {ALPHA}: combined verdicts (expected 0.025 each)")
        print("| k | scale | contradicted | supported | mean combined estimate |")
        print("|---|---|---|---|---|")
        for _, r in result.iterrows():
            print(f"| {r['k']} | {r['scale']} | {r['contradicted']:.3f} | {r['supported']:.3f} | "
                  f"{r['mean_estimate']:+.3f} |")
        return
    result = table(args.suites, args.k, args.methods, args.seed, units_range=tuple(args.units), spread=args.spread)
    print(f"{args.suites} suites per cell, alpha {ALPHA}; coverage / power at a true combined effect of {SHIFT}")
    print("| method | k | tau² | false positive (95% MC interval) | CI coverage | PI coverage | power |")
    print("|---|---|---|---|---|---|---|")
    for _, r in result.iterrows():
        print(f"| {r['method']} | {r['k']} | {r['tau2']} ({TAU2[r['tau2']]:g}) | {r['fpr']:.3f} "
              f"({r['fpr_low']:.3f}–{r['fpr_high']:.3f}) | {r['coverage']:.3f} | {r['pi_coverage']:.3f} | "
              f"{r['power']:.2f} |")


if __name__ == "__main__":
    main()
