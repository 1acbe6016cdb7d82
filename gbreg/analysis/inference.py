"""Replicate-level tests behind the verdicts (numpy/scipy, batched over data sets): t-tests over the
units (judge's default) and the exact sign-flip tests (``test='sign_flip'``).

Every function takes arrays whose leading axes are a batch (one row per data set), so the calibration
(tests/test_verdict_calibration.py, benchmarks/verdict_calibration.py) runs thousands of null data sets
through the very code :func:`gbreg.judge` uses. docs/hypotheses.md states the method and its figures.

* :class:`SignFlip`: the exact sign-flip (randomization) test of a location and its inversion, Hartigan's
  subset-mean interval. Flipping the signs of n independent, symmetric replicates gives 2^n equally likely
  arrangements; ``sum(eps * (d - mu0)) >= sum(d - mu0)`` holds exactly when the flipped subset's mean is
  at most mu0, so p-values and interval bounds are counts and order statistics of the 2^n - 1 subset means.
* :class:`TTest`: the one-sample t-test with the same interface; units that agree exactly (no spread) get
  the exact sign-flip p-values instead of an infinite t.
* :func:`spearman_rows`: Spearman's rho along the last axis, NaN for a constant row.
* :func:`split_trend`: per split, the mean rho over the configurations that vary (``trend: none``: over
  all, a constant configuration counting as rho = 0).
* :func:`binomial_sign_p`: exact two-sided sign test with zeros counted against both directions.
* :func:`holm`: Holm's step-down adjustment.

The best-point test (best interior minus best edge cell against a flat surface with the data's noise)
is in :mod:`gbreg.analysis.best_point_inference`.
"""

from __future__ import annotations

import math

import numpy as np

TESTS = ("t", "sign_flip")
MIN_UNITS = 3  # fewer independent units than this: no test, the verdict says so
EXACT_MAX_UNITS = 14  # 2^14 subset means; beyond that a Monte Carlo sample of sign flips
SIGN_FLIP_DRAWS = 20000
# The sign test keeps the configurations' variance component when an F test finds it at this level; the
# level comes from the calibration (docs/hypotheses.md): 0.25 and 0.5 left the test conservative.
CONFIG_POOLING_LEVEL = 0.10


class SignFlip:
    """Sign-flip distribution of the mean of ``d`` (shape ``(batch, n)``, NaN-free) around any mu0."""

    def __init__(self, d, rng=None):
        d = np.atleast_2d(np.asarray(d, dtype="float64"))
        self.n = d.shape[1]
        self.effect = d.mean(axis=1)
        weights, self.total = subset_weights(self.n, rng)
        self.means = np.sort(d @ weights.T, axis=1)  # (batch, subsets)

    @property
    def smallest_p(self) -> float:
        """The smallest one-sided p-value any data can give: 1 / 2^n."""
        return 1.0 / self.total

    def p_greater(self, mu0) -> np.ndarray:
        """One-sided p for H1: mean > mu0 (H0: mean <= mu0)."""
        below = (self.means <= np.asarray(mu0, dtype="float64")[..., None] + 1e-12).sum(axis=1)
        return (1.0 + below) / self.total

    def p_less(self, mu0) -> np.ndarray:
        """One-sided p for H1: mean < mu0."""
        above = (self.means >= np.asarray(mu0, dtype="float64")[..., None] - 1e-12).sum(axis=1)
        return (1.0 + above) / self.total

    def p_two_sided(self, mu0=0.0) -> np.ndarray:
        """Equal-tailed two-sided p for H0: mean = mu0 (twice the smaller one-sided p)."""
        return np.minimum(1.0, 2.0 * np.minimum(self.p_greater(mu0), self.p_less(mu0)))

    def interval(self, tail: float) -> tuple[np.ndarray, np.ndarray]:
        """Bounds (low, high) that each exclude mu0 exactly when the one-sided p at mu0 is < ``tail``.
        The level is attained as nearly as the 2^n arrangements allow (n = 6, tail 0.025: [min, max])."""
        k = math.ceil(tail * self.total) - 1
        if k < 1:
            shape = self.effect.shape
            return np.full(shape, -np.inf), np.full(shape, np.inf)
        return self.means[:, k - 1], self.means[:, self.means.shape[1] - k]


class TTest:
    """One-sample t-test of the mean of ``d`` (shape ``(batch, n)``) around any mu0, and its t interval;
    the interface of :class:`SignFlip`. Exact when the unit summaries are normal (averages over
    configurations and folds nearly are); p-values are continuous, so 3 units can reach any level when the
    units vary. When they do not (``no_spread``: every unit gave the same value, e.g. a mean ρ of +1 in
    every split, which 3-5 units do by chance), the t statistic would be infinite and p 0, but the normal
    model the t-test rests on is contradicted by the data: those rows get the exact sign-flip test's
    p-values instead (n units on one side: 1/2^n one-sided, 2/2^n two-sided), and ``smallest_p`` is that
    test's floor for them."""

    def __init__(self, d):
        d = np.atleast_2d(np.asarray(d, dtype="float64"))
        self.n = d.shape[1]
        self.effect = d.mean(axis=1)
        # one unit has no spread to measure (the verdict says so): NaN, without numpy's warning on stderr
        spread = d.std(axis=1, ddof=1) if self.n > 1 else np.full(len(d), np.nan)
        self.se = spread / math.sqrt(self.n)
        # exactly equal units (up to rounding of the averages that made them)
        self.no_spread = (self.n > 1) & (spread <= 1e-12 * np.maximum(np.abs(d).max(axis=1), 1e-300))
        self._exact = SignFlip(d[self.no_spread]) if self.no_spread.any() else None

    @property
    def smallest_p(self) -> np.ndarray:
        """Per row, the smallest one-sided p-value: 0 for a t-test over units that vary, the exact test's
        1/2^n where they do not."""
        return np.where(self.no_spread, 0.5**self.n, 0.0)

    def _t(self, mu0) -> np.ndarray:
        """t statistic (rows without spread are replaced by the exact test's p-values)."""
        diff = self.effect - np.asarray(mu0, dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.se > 0, diff / np.where(self.se > 0, self.se, 1.0),
                            np.where(diff != 0, np.sign(diff) * np.inf, 0.0))  # sign(0) * inf would be NaN

    def _with_exact(self, p, mu0, side: str) -> np.ndarray:
        if self._exact is None:
            return p
        p = np.array(p, dtype="float64")
        mu0 = np.broadcast_to(np.asarray(mu0, dtype="float64"), self.effect.shape)[self.no_spread]
        p[self.no_spread] = getattr(self._exact, side)(mu0)
        return p

    def p_greater(self, mu0) -> np.ndarray:
        from scipy.stats import t

        return self._with_exact(t.sf(self._t(mu0), self.n - 1), mu0, "p_greater")

    def p_less(self, mu0) -> np.ndarray:
        from scipy.stats import t

        return self._with_exact(t.cdf(self._t(mu0), self.n - 1), mu0, "p_less")

    def p_two_sided(self, mu0=0.0) -> np.ndarray:
        return np.minimum(1.0, 2.0 * np.minimum(self.p_greater(mu0), self.p_less(mu0)))

    def interval(self, tail: float) -> tuple[np.ndarray, np.ndarray]:
        from scipy.stats import t

        half = t.ppf(1 - tail, self.n - 1) * self.se
        return self.effect - half, self.effect + half


def location_test(d, test: str = "t"):
    """The test of a mean over independent unit summaries: ``t`` (default) or ``sign_flip`` (exact)."""
    return TTest(d) if test == "t" else SignFlip(d)


def subset_weights(n: int, rng=None) -> tuple[np.ndarray, int]:
    """Rows: the nonempty subsets of n replicates as averaging weights; and the number of arrangements
    (2^n, or the Monte Carlo draws + 1 when n > EXACT_MAX_UNITS)."""
    if n <= EXACT_MAX_UNITS:
        masks = ((np.arange(1, 2**n)[:, None] >> np.arange(n)) & 1).astype("float64")
        total = 2**n
    else:
        rng = rng if rng is not None else np.random.default_rng(0)
        masks = rng.integers(0, 2, (SIGN_FLIP_DRAWS, n)).astype("float64")
        masks = masks[masks.sum(axis=1) > 0]
        total = len(masks) + 1
    return masks / masks.sum(axis=1, keepdims=True), total


def spearman_rows(values) -> np.ndarray:
    """Spearman's rho between position (0, 1, ... along the last axis, the sorted axis values) and the
    values; NaN where a row is constant. Average ranks for ties."""
    from scipy.stats import rankdata

    values = np.asarray(values, dtype="float64")
    ranks = rankdata(values, axis=-1)
    x = np.arange(values.shape[-1], dtype="float64")
    x = x - x.mean()
    y = ranks - ranks.mean(axis=-1, keepdims=True)
    spread = np.sqrt((y**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (y @ x) / (spread * np.sqrt((x**2).sum()))
    constant = np.ptp(values, axis=-1) == 0
    return np.where(constant, np.nan, rho)


def split_trend(rho, constant_as_zero: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``rho``: (batch, configurations, splits) with NaN for constant configurations. Returns the
    per-split mean rho over the configurations that vary (0 where every configuration of a split is
    constant: the metric does not move at all there) and the count of constant cells per data set.
    ``constant_as_zero`` (``trend: none``): a constant configuration has no trend and counts as rho = 0."""
    if constant_as_zero:
        rho = np.asarray(rho, dtype="float64")
        return np.nan_to_num(rho, nan=0.0).mean(axis=1), np.isnan(rho).sum(axis=(1, 2))
    varying = ~np.isnan(rho)
    count = varying.sum(axis=1)
    with np.errstate(invalid="ignore"):
        d = np.where(count > 0, np.nansum(rho, axis=1) / np.maximum(count, 1), 0.0)
    return d, (~varying).sum(axis=(1, 2))


def binomial_sign_p(n_positive, n_negative, n_total) -> np.ndarray:
    """Two-sided exact sign test of 'the median is 0'. Zeros stay in n_total: a zero is neither positive
    nor negative, so it counts against either claim (conservative; dropping them would call 8 ones among
    280 zeros 'positive')."""
    from scipy.stats import binom

    n_positive, n_negative, n_total = (np.asarray(v) for v in (n_positive, n_negative, n_total))
    upper = binom.sf(n_positive - 1, n_total, 0.5)
    lower = binom.sf(n_negative - 1, n_total, 0.5)
    return np.minimum(1.0, 2.0 * np.minimum(upper, lower))


def smallest_sign_test_p(n_total: int) -> float:
    return float(min(1.0, 2.0 * 0.5**n_total)) if n_total else 1.0


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(p_values, dtype="float64")
    adjusted = np.full_like(p, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


# ----------------------------------------------------------------------------------------------------
# evidence per kind of hypothesis, batched: candidate verdict (+1 supported, -1 contradicted, 0 none),
# p-value of that candidate, effect and interval. judge() and the calibration both call these.


def trend_evidence(d, trend: str, alpha: float, tolerance: float, test: str = "t") -> dict[str, np.ndarray]:
    """``d``: (batch, units), the per-split (or per-repeat) mean rho. Directional trends: two-sided test of
    mean rho = 0 (``test``). ``none``: two one-sided tests (TOST) against -tolerance and
    +tolerance at alpha / 2 each: supported when the (1 - alpha) interval lies inside +-tolerance,
    contradicted when it lies entirely beyond one bound (so at the boundary each false verdict has at most
    alpha / 2 and together at most alpha). The interval is the (1 - alpha) interval of the same test.
    ``test``: ``t`` (one-sample t over the units) or ``sign_flip`` (exact, needs >= 6 units to reach 0.05)."""
    flips = location_test(d, test)
    low, high = flips.interval(alpha / 2)
    if trend == "none":
        p_equivalent = 2 * np.maximum(flips.p_greater(-tolerance), flips.p_less(tolerance))
        p_beyond = 2 * np.minimum(flips.p_greater(tolerance), flips.p_less(-tolerance))
        candidate = np.where(p_equivalent <= p_beyond, 1, -1)
        p = np.minimum(1.0, np.minimum(p_equivalent, p_beyond))
    else:
        expected = 1 if trend == "increasing" else -1
        p = flips.p_two_sided(0.0)
        candidate = np.sign(flips.effect).astype(int) * expected
    return {"candidate": candidate, "p": p, "effect": flips.effect, "ci_low": low, "ci_high": high,
            "smallest_p": np.full(p.shape, 2 * flips.smallest_p),
            "no_spread": np.broadcast_to(getattr(flips, "no_spread", False), p.shape)}


def sign_evidence(values, sign: str, alpha: float, test: str = "t") -> dict[str, np.ndarray]:
    """``values``: (batch, configurations, units), NaN-free, each a configuration's mean over the folds of
    a unit. Statistic: per configuration x unit the sign (+1 / 0 / -1); the effect is the share positive
    minus the share negative. 'Mostly positive' means more than half the cells are positive, so the test
    in the observed direction is on 2 * [value > 0] - 1 (a zero counts against both signs). Configurations
    and units are crossed random effects: the variance of the grand mean is the spread of the unit means
    (cell noise + unit effects shared by every configuration) plus the configuration component, which the
    unit means share and so do not show: (MS_config - MS_residual) / (configurations x units), included
    when the configurations differ more than the cell noise explains (F test at CONFIG_POOLING_LEVEL, a
    "sometimes pool" rule); Satterthwaite degrees of freedom. ``test='sign_flip'``: the exact two-unit test
    (:func:`sign_evidence_exact`)."""
    if test != "t":
        return sign_evidence_exact(values, sign, alpha)
    values = np.asarray(values, dtype="float64")
    positive, negative = (values > 0).astype("float64"), (values < 0).astype("float64")
    net = positive - negative
    direction = np.sign(net.mean(axis=(1, 2)))
    cells = np.where(direction[:, None, None] >= 0, 2 * positive - 1, 2 * negative - 1)
    t_stat, df, se = _crossed_t(cells)
    from scipy.stats import t

    # one-sided in the observed direction, doubled: a negative t (zeros outnumber that sign) gives p = 1
    p = np.where(direction != 0, np.minimum(1.0, 2 * t.sf(t_stat, df)), 1.0)
    # every cell the same code (every configuration of the majority sign on every unit): no spread, an
    # infinite t. The t-test does not apply; the exact sign-flip test over the unit means does (2/2^n)
    unit_means = cells.mean(axis=1)
    no_spread = (se <= 1e-12) & (direction != 0)
    smallest_p = np.where(no_spread, min(1.0, 2 * 0.5 ** cells.shape[2]), 0.0)
    if no_spread.any():
        p[no_spread] = np.minimum(1.0, 2 * SignFlip(unit_means[no_spread]).p_greater(0.0))
    effect = net.mean(axis=(1, 2))
    half = t.ppf(1 - alpha / 2, df) * se
    config_means = values.mean(axis=2)
    expected = 1 if sign == "positive" else -1
    return {"candidate": (direction * expected).astype(int), "p": p, "effect": effect,
            "ci_low": effect - half, "ci_high": effect + half, "df": df,
            "n_positive": (config_means > 0).sum(axis=1), "n_negative": (config_means < 0).sum(axis=1),
            "n_zero": (config_means == 0).sum(axis=1), "median": np.median(config_means, axis=1),
            "smallest_p": smallest_p, "no_spread": no_spread}


def _crossed_t(cells) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed t statistic of the grand mean of ``cells`` (batch, configurations, units) under crossed random
    configuration and unit effects, its Satterthwaite df and standard error (see :func:`sign_evidence`)."""
    n_configs, n_units = cells.shape[1:]
    grand = cells.mean(axis=(1, 2))
    config_means, unit_means = cells.mean(axis=2), cells.mean(axis=1)
    ms_config = n_units * config_means.var(axis=1, ddof=1)
    ms_unit = n_configs * unit_means.var(axis=1, ddof=1)
    residual = cells - config_means[:, :, None] - unit_means[:, None, :] + grand[:, None, None]
    df_config, df_unit, df_residual = n_configs - 1, n_units - 1, max((n_configs - 1) * (n_units - 1), 1)
    ms_residual = (residual**2).sum(axis=(1, 2)) / df_residual
    config_part = np.maximum(ms_config - ms_residual, 0.0)
    from scipy.stats import f

    # Adding the configuration component whenever MS_config > MS_residual (half the time when it is 0)
    # overstates the variance: the test said 'supported' 2.6 % of the time at alpha 0.05 with no effect.
    with np.errstate(divide="ignore", invalid="ignore"):
        p_config = f.sf(ms_config / np.where(ms_residual > 0, ms_residual, np.nan), df_config, df_residual)
    on = (config_part > 0) & (n_configs > 1) & ~(np.nan_to_num(p_config, nan=0.0) >= CONFIG_POOLING_LEVEL)
    total = ms_unit + np.where(on, config_part, 0.0)
    spread = ms_unit**2 / df_unit + np.where(on, ms_config**2 / max(df_config, 1) + ms_residual**2 / df_residual, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(spread > 0, total**2 / np.where(spread > 0, spread, 1.0), df_unit)
        se = np.sqrt(total / (n_configs * n_units))
        t_stat = np.where(se > 0, grand / np.where(se > 0, se, 1.0), np.where(grand != 0, np.sign(grand) * np.inf, 0.0))
    return t_stat, np.maximum(df, 1.0), se


def sign_evidence_exact(values, sign: str, alpha: float) -> dict[str, np.ndarray]:
    """``values``: (batch, configurations, splits), NaN-free. Two units, both must agree (an
    intersection-union test, p = the larger p): configurations (each summarised by its mean over splits;
    exact sign test, zeros reported and counted against both directions) and splits (each summarised by
    the median over configurations; exact sign-flip test). A split effect shared by every configuration
    cannot fake the first, a configuration effect fixed across splits cannot fake the second."""
    values = np.asarray(values, dtype="float64")
    summary = values.mean(axis=2)  # (batch, configs)
    n_pos, n_neg = (summary > 0).sum(axis=1), (summary < 0).sum(axis=1)
    n_configs = summary.shape[1]
    p_configs = binomial_sign_p(n_pos, n_neg, n_configs)
    flips = SignFlip(np.median(values, axis=1))
    p_splits = flips.p_two_sided(0.0)
    direction_configs = np.sign(n_pos - n_neg)
    direction_splits = np.sign(flips.effect)
    agree = (direction_configs == direction_splits) & (direction_configs != 0)
    expected = 1 if sign == "positive" else -1
    low, high = median_interval(summary, alpha)
    return {"candidate": np.where(agree, direction_configs * expected, 0).astype(int),
            "p": np.where(agree, np.maximum(p_configs, p_splits), 1.0), "effect": np.median(summary, axis=1),
            "ci_low": low, "ci_high": high, "p_configurations": p_configs, "p_splits": p_splits,
            "n_positive": n_pos, "n_negative": n_neg, "n_zero": n_configs - n_pos - n_neg,
            "smallest_p": np.full(p_configs.shape, max(smallest_sign_test_p(n_configs), 2 * flips.smallest_p))}


def median_interval(x, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Distribution-free (1 - alpha) interval for the median of each row: order statistics whose
    binomial coverage is at least 1 - alpha (infinite when the row is too short)."""
    from scipy.stats import binom

    x = np.sort(np.asarray(x, dtype="float64"), axis=-1)
    n = x.shape[-1]
    k = 0  # the largest k with P(Bin(n, 1/2) <= k - 1) <= alpha / 2: [x_(k), x_(n-k+1)] covers the median
    while k < n // 2 and binom.cdf(k, n, 0.5) <= alpha / 2:
        k += 1
    if k < 1:
        return np.full(x.shape[:-1], -np.inf), np.full(x.shape[:-1], np.inf)
    return x[..., k - 1], x[..., n - k]
