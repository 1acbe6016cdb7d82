"""Does a claim hold across data sets? A suite's per-data-set verdicts (one :func:`gbreg.judge` row per
data set x hypothesis x library: ``effect``, ``ci_low``, ``ci_high``) combined by a random-effects
meta-analysis, judged in a study's vocabulary, and where the claim holds and fails described.

    rows = standard_errors(per_data_set)       # + se, se_from ('t' | 'z'), usable
    combined = meta_analyze(per_data_set)       # one row per hypothesis x library
    combined_verdict(combined.iloc[0], hypothesis)   # {'verdict': 'supported', 'reason': ..., ...}
    describe_contrast(contrast_data_sets(per_data_set, descriptors))

Method (docs/hypotheses.md, "Across data sets"; benchmarks/meta_calibration.py measures it):

* Standard error of a data set's effect from its interval: half-width / t_{1-α/2, df} for a symmetric t
  interval (``df``, else ``n_units`` - 1); otherwise (no df, or an asymmetric interval: sign-flip or
  bootstrap) half the width / z_{1-α/2}, flagged ``se_from = 'z'``.
* Between-data-set variance τ² by restricted maximum likelihood (default; Viechtbauer 2005), or Paule &
  Mandel (1982: generalized Q = k - 1) or DerSimonian & Laird (1986). REML and PM are the estimators
  recommended with few studies (Veroniki et al. 2016, Res. Synth. Methods 7:55; Langan et al. 2019, Res.
  Synth. Methods 10:83); with the CR2 interval below REML held the level best in the calibration.
* Interval and test: the estimate weighted by 1 / (v + τ²), with a cluster-robust variance, each data set
  its own cluster: CR2 (Bell & McCaffrey 2002) with Satterthwaite degrees of freedom, as robust variance
  estimation in meta-analysis (Hedges, Tipton & Johnson 2010, Res. Synth. Methods 1:39; Tipton 2015,
  Psychol. Methods 20:375; R's metafor ``robust(..., clubSandwich = TRUE)``). Why not Hartung-Knapp-
  Sidik-Jonkman (t with k - 1 df; offered as ``variance='hksj'`` and ``'hksj_modified'``, Röver, Knapp &
  Friede 2015): each data set's variance here is itself estimated from 2-5 df (a study's 3-6 repeats), so
  the weights are noisy; HKSJ then trusts an overweighted data set and its interval is too narrow (false
  positives 0.06-0.10 at α = 0.05), while CR2's df fall as the weights grow unequal (0.03-0.05;
  benchmarks/meta_calibration.py, docs/hypotheses.md). With equal weights CR2 is the t-test over the
  data sets' effects.
* I² = τ² / (τ² + s²) with s² the typical within-data-set variance (Higgins & Thompson 2002; the form of
  R's metafor, equal to (Q - df) / Q for the DL τ²). Cochran's Q with fixed-effect weights, χ²(k - 1).
* Prediction interval for a new data set's true effect: estimate ± t_{k-2} √(τ² + SE²) (Higgins,
  Thompson & Spiegelhalter 2009).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np

from gbreg.analysis.inference import MIN_UNITS

MIN_DATA_SETS = 3  # as a study's MIN_UNITS: fewer and the combined verdict is inconclusive
DEFAULT_TOLERANCE = 0.3  # trend: none, as gbreg.analysis.judgement
TAU2_METHODS = ("reml", "paule_mandel", "dersimonian_laird")
VARIANCES = ("cr2", "hksj", "hksj_modified")
GROUP_COLUMNS = ("hypothesis", "library")
_BISECTIONS = 200
_EXPECTED = {"increasing": 1, "decreasing": -1, "positive": 1, "negative": -1, None: 1}


def standard_errors(rows, alpha: float = 0.05):
    """``rows`` with ``se``, ``se_from`` ('t', 'z', 'few_units' or 'excluded') and ``usable`` (finite effect and
    interval, from at least MIN_UNITS units where ``n_units`` is known). The level of each interval: column
    ``alpha`` where present and finite, else ``alpha``.

    A data set with fewer units is no evidence in its own study (no test), and its interval is not either:
    two splits that happen to agree give a zero-width interval, which would carry all the weight."""
    from scipy.stats import norm, t

    missing = [c for c in ("effect", "ci_low", "ci_high") if c not in rows.columns]
    if missing:
        raise ValueError(f"meta-analysis: the per-data-set table needs the columns effect, ci_low and ci_high "
                         f"(missing: {', '.join(missing)})")
    effect, low, high = (_column(rows, c) for c in ("effect", "ci_low", "ci_high"))
    level = _column(rows, "alpha") if "alpha" in rows.columns else np.full(len(rows), np.nan)
    level = np.where(np.isfinite(level) & (level > 0) & (level < 1), level, alpha)
    df = _column(rows, "df") if "df" in rows.columns else np.full(len(rows), np.nan)
    n_units = _column(rows, "n_units") if "n_units" in rows.columns else np.full(len(rows), np.nan)
    df = np.where(np.isfinite(df), df, n_units - 1)
    few_units = np.isfinite(n_units) & (n_units < MIN_UNITS)
    usable = np.isfinite(effect) & np.isfinite(low) & np.isfinite(high) & (high >= low) & ~few_units
    half = (high - low) / 2
    symmetric = np.abs((effect - low) - (high - effect)) <= 1e-6 * np.abs(high - low) + 1e-15
    from_t = usable & symmetric & np.isfinite(df) & (df >= 1)
    with np.errstate(invalid="ignore"):
        se = np.where(from_t, half / t.ppf(1 - level / 2, np.where(from_t, df, 1)), half / norm.ppf(1 - level / 2))
    return rows.assign(se=np.where(usable, se, np.nan), usable=usable,
                       se_from=np.where(from_t, "t", np.where(usable, "z", np.where(few_units, "few_units",
                                                                                     "excluded"))))


def paule_mandel(effects, variances) -> np.ndarray:
    """τ² per row of ``effects`` / ``variances`` (batch, k): the root of Σ w (y - ŷ_w)² = k - 1 with
    w = 1 / (v + τ²), 0 when Q at τ² = 0 is already at most k - 1. Bisection: the left side falls with τ²
    and is below k - 1 at the effects' sample variance (ŷ_w minimizes it, and w < 1 / τ²)."""
    y, v = np.atleast_2d(effects), np.atleast_2d(variances)
    k = y.shape[-1]

    def excess(tau2):
        w = 1.0 / (v + tau2[:, None])
        mean = (w * y).sum(axis=1) / w.sum(axis=1)
        return (w * (y - mean[:, None]) ** 2).sum(axis=1) - (k - 1)

    low, high = np.zeros(len(y)), y.var(axis=1, ddof=1) if k > 1 else np.zeros(len(y))
    for _ in range(_BISECTIONS):
        mid = (low + high) / 2
        above = excess(mid) > 0
        low, high = np.where(above, mid, low), np.where(above, high, mid)
    return np.where(excess(np.zeros(len(y))) > 0, (low + high) / 2, 0.0)


def dersimonian_laird(effects, variances) -> np.ndarray:
    """τ² by the method of moments with fixed-effect weights, truncated at 0."""
    y, v = np.atleast_2d(effects), np.atleast_2d(variances)
    w = 1.0 / v
    q = (w * (y - ((w * y).sum(axis=1) / w.sum(axis=1))[:, None]) ** 2).sum(axis=1)
    return np.maximum(0.0, (q - (y.shape[-1] - 1)) / (w.sum(axis=1) - (w**2).sum(axis=1) / w.sum(axis=1)))


def reml(effects, variances) -> np.ndarray:
    """τ² by restricted maximum likelihood (Viechtbauer 2005, J. Educ. Behav. Stat. 30:261), the global
    maximum of the restricted log-likelihood over τ² >= 0: a grid of 0 and 240 geometric steps from 1e-8
    to 100 times the scale of the data, then golden-section search between the best point's neighbours.
    (Fisher scoring, as R's metafor does it, oscillated or stopped at a local maximum on some simulated
    suites with one variance far below the rest; on the BCG trials both give metafor's τ², tests/test_meta.py.)"""
    y, v = np.atleast_2d(effects), np.atleast_2d(variances)
    scale = np.maximum(y.var(axis=1), v.mean(axis=1))[:, None]
    grid = np.concatenate([np.zeros((len(y), 1)), scale * np.geomspace(1e-8, 1e2, 241)[None]], axis=1)
    values = np.stack([_restricted_loglik(y, v, grid[:, j]) for j in range(grid.shape[1])], axis=1)
    best = values.argmax(axis=1)
    rows = np.arange(len(y))
    low, high = grid[rows, np.maximum(best - 1, 0)], grid[rows, np.minimum(best + 1, grid.shape[1] - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        rising = _restricted_loglik(y, v, left) < _restricted_loglik(y, v, right)
        low, high = np.where(rising, left, low), np.where(rising, high, right)
    tau2 = (low + high) / 2
    tau2 = np.where(_restricted_loglik(y, v, tau2) >= values[rows, best], tau2, grid[rows, best])
    return np.where(best == 0, 0.0, tau2)  # best at the boundary: below 1e-8 x scale, 0


def _restricted_loglik(y, v, tau2) -> np.ndarray:
    w = 1.0 / (v + tau2[:, None])
    total = w.sum(axis=1)
    mean = (w * y).sum(axis=1) / total
    return -0.5 * (np.log(v + tau2[:, None]).sum(axis=1) + np.log(total) + (w * (y - mean[:, None]) ** 2).sum(axis=1))


def random_effects(effects, variances, alpha: float = 0.05, method: str = "reml",
                   variance: str = "cr2") -> dict[str, np.ndarray]:
    """Random-effects meta-analysis of each row of ``effects`` / ``variances`` (batch, k), NaN-free: the
    estimate weighted by 1 / (v + τ²), its standard error, degrees of freedom and (1 - alpha) t interval,
    the two-sided p of 'combined effect = 0', τ², I², Cochran's Q and its p, the prediction interval.
    ``variance``: ``cr2`` (default, see the module), ``hksj`` or ``hksj_modified`` (scale factor at least
    1). A variance below 1e-12 of the row's scale is one where every unit agreed, exactly or up to rounding
    (an interval read back from a CSV can be 1e-16 wide): its data set's units showed no spread, which with
    3-6 units says little about its true variance. It takes the median of the row's other variances, so it
    weighs as a typical data set (:func:`floored_variances`)."""
    from scipy.stats import chi2, t

    if method not in TAU2_METHODS or variance not in VARIANCES:
        raise ValueError(f"meta-analysis: method must be one of {TAU2_METHODS} and variance one of "
                         f"{VARIANCES}, got {method!r}, {variance!r}")
    y = np.atleast_2d(np.asarray(effects, dtype="float64"))
    v = np.atleast_2d(np.asarray(variances, dtype="float64"))
    v = floored_variances(y, v)
    k = y.shape[1]
    fixed = 1.0 / v
    q = (fixed * (y - ((fixed * y).sum(axis=1) / fixed.sum(axis=1))[:, None]) ** 2).sum(axis=1)
    tau2 = {"paule_mandel": paule_mandel, "reml": reml, "dersimonian_laird": dersimonian_laird}[method](y, v)
    w = 1.0 / (v + tau2[:, None])
    estimate = (w * y).sum(axis=1) / w.sum(axis=1)
    nan = np.full(len(y), np.nan)
    if k < 2:
        return {"estimate": estimate, "se": nan, "df": nan, "ci_low": nan, "ci_high": nan, "p_value": nan,
                "tau2": nan, "i2": nan, "q": nan, "q_p": nan, "pi_low": nan, "pi_high": nan,
                "k": np.full(len(y), k)}
    if variance == "cr2":
        se2, df = _cr2(y - estimate[:, None], w)
    else:
        factor = (w * (y - estimate[:, None]) ** 2).sum(axis=1) / (k - 1)
        se2 = (np.maximum(factor, 1.0) if variance == "hksj_modified" else factor) / w.sum(axis=1)
        df = np.full(len(y), k - 1.0)
    se = np.sqrt(se2)
    half = t.ppf(1 - alpha / 2, df) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(se > 0, 2 * t.sf(np.abs(estimate) / se, df), (estimate == 0).astype(float))
    with np.errstate(divide="ignore", invalid="ignore"):  # one weight holding everything: typical is 0 or inf
        typical = (k - 1) * fixed.sum(axis=1) / (fixed.sum(axis=1) ** 2 - (fixed**2).sum(axis=1))
    spread = t.ppf(1 - alpha / 2, k - 2) * np.sqrt(tau2 + se2) if k > 2 else nan
    return {"estimate": estimate, "se": se, "df": df, "ci_low": estimate - half, "ci_high": estimate + half,
            "p_value": p, "tau2": tau2, "i2": tau2 / (tau2 + typical), "q": q, "q_p": chi2.sf(q, k - 1),
            "pi_low": estimate - spread, "pi_high": estimate + spread, "k": np.full(len(y), k)}


def floored_variances(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v`` (batch, k) with each zero variance (below 1e-12 of the row's scale) replaced by the median of
    the row's other variances, or by that tiny floor when all are zero (then every data set weighs the same).

    A data set whose units all agreed (ρ = -1 on each of 3 splits) once took all the weight: with a variance
    of 1e-12 the estimate was its effect, τ² was 0 and the interval zero wide, though the other data sets'
    effects ran from -1 to +0.17 (Cochran's Q p = 5e-7)."""
    scale = np.maximum(v.max(axis=1), (y**2).mean(axis=1))
    tiny = (1e-12 * np.where(scale > 0, scale, 1.0))[:, None]
    zero = v < tiny
    with warnings.catch_warnings():  # a row whose variances are all zero has no median: NaN, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = np.nanmedian(np.where(zero, np.nan, v), axis=1, keepdims=True)
    return np.where(zero, np.where(np.isfinite(typical), typical, tiny), v)


def _cr2(residuals, w) -> tuple[np.ndarray, np.ndarray]:
    """Bell & McCaffrey's CR2 variance of the weighted mean, each data set its own cluster, and its
    Satterthwaite df. Working model: data set i has variance 1 / w_i. With h_i = w_i / W (W = Σ w):
    Var = Σ (w_i / W)² e_i² / (1 - h_i); under the working model e has covariance P = diag(1 / w) - 1 / W,
    so df = (Σ a_i P_ii)² / Σ_ij a_i a_j P_ij² with a_i = (w_i / W)² / (1 - h_i) (and Σ a_i P_ii = 1 / W).
    Equal weights give the one-sample t-test over the data sets exactly."""
    total = w.sum(axis=1, keepdims=True)
    h = w / total
    a = h**2 / np.maximum(1 - h, 1e-15)
    covariance = np.eye(w.shape[1])[None] / w[:, :, None] - 1 / total[:, :, None]
    spread = np.einsum("bi,bij,bj->b", a, covariance**2, a)
    return (a * residuals**2).sum(axis=1), (1 / total[:, 0]) ** 2 / spread


def meta_analyze(rows, by=None, alpha: float = 0.05, method: str = "reml", variance: str = "cr2"):
    """One row per group of ``by`` (default: those of ``hypothesis``, ``library`` that ``rows`` has):
    k (data sets used), n_excluded (no finite effect or interval, or too few units), n_few_units (of
    those, the data sets with fewer than MIN_UNITS units), n_se_from_z, and the columns of
    :func:`random_effects`. ``rows``: one row per data set (and group) with effect, ci_low, ci_high,
    optionally df, n_units and alpha (the level of the row's interval)."""
    import pandas as pd

    rows = standard_errors(rows, alpha)
    by = [c for c in GROUP_COLUMNS if c in rows.columns] if by is None else list(by)
    groups = rows.groupby(by, sort=False, dropna=False) if by else [((), rows)]
    out = []
    for key, group in groups:
        used = group[group["usable"]]
        head = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        head |= {"k": len(used), "n_excluded": int((~group["usable"]).sum()),
                 "n_few_units": int((group["se_from"] == "few_units").sum()),
                 "n_se_from_z": int((used["se_from"] == "z").sum())}
        if used.empty:
            out.append(head)
            continue
        numbers = random_effects(used["effect"].to_numpy(float)[None], used["se"].to_numpy(float)[None] ** 2,
                                 alpha, method, variance)
        out.append(head | {name: float(value[0]) for name, value in numbers.items() if name != "k"})
    columns = [*by, "k", "n_excluded", "n_few_units", "n_se_from_z", "estimate", "se", "df", "ci_low", "ci_high", "p_value",
               "tau2", "i2", "q", "q_p", "pi_low", "pi_high"]
    return pd.DataFrame(out, columns=columns).assign(alpha=alpha, method=method, variance=variance)


def combined_verdict(combined, hypothesis=None, *, kind: str | None = None, direction: str | None = None,
                     tolerance: float | None = None, significance: float | None = None) -> dict:
    """'supported', 'contradicted' or 'inconclusive' for one row of :func:`meta_analyze` (estimate, se, k),
    with the reason, the p-value of that verdict and the (1 - significance) interval it used. The claim:
    a :class:`~gbreg.spec.hypotheses.Hypothesis` (or its mapping), or ``kind`` ('trend', 'sign', 'best'),
    ``direction`` ('increasing', 'decreasing', 'none', 'positive', 'negative'; None for best: positive =
    interior better), ``tolerance`` (trend none) and ``significance``. Directional: supported when the
    interval excludes 0 on the stated side, contradicted on the other. ``none``: supported when the interval
    lies inside ±tolerance, contradicted when entirely beyond one bound (TOST at significance / 2 a side)."""
    from scipy.stats import t

    if hypothesis is not None:
        from gbreg.spec.hypotheses import Hypothesis

        h = hypothesis if isinstance(hypothesis, Hypothesis) else Hypothesis.model_validate(hypothesis)
        kind, direction = h.kind, h.trend or h.sign
        tolerance, significance = h.tolerance, h.significance
    if kind not in ("trend", "sign", "best"):
        raise ValueError(f"combined_verdict: kind must be trend, sign or best, got {kind!r}")
    significance = 0.05 if significance is None else significance
    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    estimate, se, k = (float(_get(combined, name)) for name in ("estimate", "se", "k"))
    left_out = _few_units_text(_get(combined, "n_few_units"))
    if not (k >= MIN_DATA_SETS and math.isfinite(se)):
        return {"verdict": "inconclusive", "p_value": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "reason": f"only {k:.0f} data set(s) with a finite effect and interval: combining needs at "
                          f"least {MIN_DATA_SETS}" + left_out}
    df = float(_get(combined, "df"))
    df = df if math.isfinite(df) and df > 0 else k - 1
    half = t.ppf(1 - significance / 2, df) * se
    low, high = estimate - half, estimate + half

    def p_above(mu0):  # one-sided p for 'true combined effect > mu0'
        return float(t.sf((estimate - mu0) / se, df)) if se > 0 else float(estimate <= mu0)

    def p_below(mu0):
        return float(t.cdf((estimate - mu0) / se, df)) if se > 0 else float(estimate >= mu0)

    text = (f"combined effect {estimate:+.3g} ({1 - significance:.0%} CI {low:+.3g} to {high:+.3g}; "
            f"random effects, t with {df:.1f} df) over {k:.0f} data sets")
    if kind == "trend" and direction == "none":
        p_inside = min(1.0, 2 * max(p_above(-tolerance), p_below(tolerance)))
        p_beyond = min(1.0, 2 * min(p_above(tolerance), p_below(-tolerance)))
        verdict = ("supported" if p_inside < significance else "contradicted" if p_beyond < significance
                   else "inconclusive")
        reason = f"{text}; TOST against ±{tolerance:g}"
        p = p_inside if verdict != "contradicted" else p_beyond
    else:
        expected = _EXPECTED[direction] if kind != "best" else 1
        p = min(1.0, 2 * min(p_above(0.0), p_below(0.0)))
        side = 1 if estimate > 0 else -1
        verdict = ("inconclusive" if p >= significance else "supported" if side == expected else "contradicted")
        reason = text + ("; each data set's interior-minus-edge difference less its mean on flat surfaces, in "
                         "their SDs: positive = interior better than the choice of the best cells alone gives"
                         if kind == "best" else "")
    return {"verdict": verdict, "reason": reason + f"; p = {p:.2g}" + left_out, "p_value": p, "ci_low": low,
            "ci_high": high}


def _few_units_text(n_few_units) -> str:
    try:
        n = float(n_few_units)
    except (TypeError, ValueError):
        return ""
    if not n > 0:
        return ""
    return (f"; {n:.0f} data set(s) left out: fewer than {MIN_UNITS} independent units (splits or repeats) each, "
            f"so no interval to weigh (add repeats)")


def with_verdicts(combined, hypotheses: Mapping, key: str = "hypothesis"):
    """:func:`meta_analyze`'s table with verdict, verdict_p and reason, the claim of each row looked up
    in ``hypotheses`` (``combined[key]`` -> Hypothesis or its mapping)."""
    verdicts = [combined_verdict(row, hypotheses[row[key]]) for _, row in combined.iterrows()]
    return combined.assign(verdict=[v["verdict"] for v in verdicts], verdict_p=[v["p_value"] for v in verdicts],
                           reason=[v["reason"] for v in verdicts])


# ------------------------------------------------------------------------ where a claim holds and fails

OUTCOMES = {"supported": "holds", "contradicted": "fails", "inconclusive": "inconclusive"}


def contrast_data_sets(rows, descriptors, by=None, on: str = "data_set"):
    """Per group (as :func:`meta_analyze`) and outcome (holds = supported, fails = contradicted,
    inconclusive): n, the data sets, the median of every numeric descriptor (NaN where no data set of the
    outcome has one, e.g. ``noise`` of real data) and the counts of every other (e.g. ``task``).
    ``rows``: per-data-set verdicts with ``on`` and ``verdict``; ``descriptors``: one row per data set."""
    import pandas as pd

    if "verdict" not in rows.columns or on not in rows.columns or on not in descriptors.columns:
        raise ValueError(f"contrast_data_sets: rows need the columns {on!r} and 'verdict', descriptors {on!r}")
    by = [c for c in GROUP_COLUMNS if c in rows.columns] if by is None else list(by)
    merged = rows[[*by, on, "verdict"]].merge(descriptors, on=on, how="left")
    described = [c for c in descriptors.columns if c != on]
    numeric = [c for c in described if pd.api.types.is_numeric_dtype(descriptors[c])]
    out = []
    for key, group in (merged.groupby(by, sort=False, dropna=False) if by else [((), merged)]):
        head = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        for verdict, outcome in OUTCOMES.items():
            part = group[group["verdict"] == verdict]
            row = head | {"outcome": outcome, "n": len(part), "data_sets": [str(d) for d in part[on]]}
            row |= {c: float(part[c].median()) if part[c].notna().any() else math.nan for c in numeric}
            row |= {c: part[c].dropna().astype(str).value_counts().to_dict() for c in described if c not in numeric}
            out.append(row)
    return pd.DataFrame(out, columns=[*by, "outcome", "n", "data_sets", *described])


def describe_contrast(contrast, by=None, max_names: int = 5) -> str:
    """A markdown sentence or two per group of :func:`contrast_data_sets`: where the claim holds, where it
    fails (the data sets named when at most ``max_names``), and how the failing data sets differ from the
    holding ones (the median of each numeric descriptor)."""
    by = [c for c in GROUP_COLUMNS if c in contrast.columns] if by is None else list(by)
    described = [c for c in contrast.columns if c not in {"outcome", "n", "data_sets", *by}]
    lines = []
    for key, group in (contrast.groupby(by, sort=False, dropna=False) if by else [((), contrast)]):
        parts = {row["outcome"]: row for _, row in group.iterrows()}
        hold, fail, unsure = parts["holds"], parts["fails"], parts["inconclusive"]
        total = int(hold["n"] + fail["n"] + unsure["n"])
        name = " · ".join(str(k) for k in (key if isinstance(key, tuple) else (key,))) or "The claim"
        text = f"**{name}** holds on {int(hold['n'])} of {total} data sets{_profile(hold, described)}"
        text += f", fails on {int(fail['n'])}"
        if 0 < fail["n"] <= max_names:
            text += ": " + ", ".join(fail["data_sets"])
        text += f"{_profile(fail, described)}, and is inconclusive on {int(unsure['n'])}."
        differ = [f"{c} {_fmt(fail[c])} vs {_fmt(hold[c])}" for c in described
                  if hold["n"] and fail["n"] and _number(fail[c]) and _number(hold[c]) and fail[c] != hold[c]]
        if differ:
            text += " Median where it fails vs where it holds: " + "; ".join(differ) + "."
        lines.append(text)
    return "\n\n".join(lines)


def _profile(row, described: list[str]) -> str:
    """' (median rows 500, features 8; task regression 3)' for one outcome, '' when it has no data set."""
    numbers = [f"{c} {_fmt(row[c])}" for c in described if _number(row[c])]
    counts = [f"{c} " + ", ".join(f"{value} {n}" for value, n in row[c].items()) for c in described
              if isinstance(row[c], dict) and row[c]]
    text = "; ".join(([f"median {', '.join(numbers)}"] if numbers else []) + counts)
    return f" ({text})" if row["n"] and text else ""


def _number(value) -> bool:
    return isinstance(value, float) and not math.isnan(value)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _column(rows, name: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype="float64")


def _get(row, name: str):
    return row[name] if name in row else math.nan
