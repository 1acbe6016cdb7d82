"""Distribution of leaf values (and linear coefficients): Laplace vs Gaussian fits, zero mass, shrinkage.

Why both fits: the popular reading of the penalties is that L1 is a Laplace prior and L2 a Gaussian
prior on the weights (Goodfellow et al., Deep Learning, §7.1). Fitting both densities by maximum
likelihood to the values a trial learned, and comparing their log-likelihood per value, asks whether
the learned values *look like* draws from that prior. Both families have two parameters (location,
scale), so the per-value log-likelihood difference is a fair comparison (it is the AIC difference / 2n).

An L1 penalty puts an atom at exactly 0 (soft-thresholding) that no density models, so the fits use the
nonzero values only and the zero mass is reported on its own.

``value_distribution_stats`` runs in the worker for every split of every trial: numpy only, O(n).
``leaf_histogram_png`` draws one trial's values with both densities (matplotlib Agg, no pyplot state).
``shrinkage_table`` runs after the sweep on the results table (one row per trial).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from gbreg.catalogue import names

DISTRIBUTION_STAT_NAMES = names("distribution")

# post-sweep metrics: mean |value| (and the 50th / 90th percentile of |value|) relative to the same model
# at reg_alpha = reg_lambda = 0, other axes equal. Boosters get leaf_*, linear counterparts coef_*.
SHRINKAGE_METRIC_NAMES = names("post-sweep")

_LOG_2PI = math.log(2.0 * math.pi)
_NAN = float("nan")


def value_distribution_stats(values) -> dict[str, float]:
    """Per-split statistics of the leaf values (or coefficients); merged into the trial's metrics.

    Fits on the nonzero values (an L1 atom at 0 is not a density): Laplace MLE location = median,
    scale = mean |x - median|; Gaussian MLE location = mean, scale = standard deviation (ddof 0).
    Log-likelihoods are per value so trials with different leaf counts compare. Excess kurtosis is
    the moment estimator (Laplace 3, Gaussian 0). Fewer than 2 distinct nonzero values: fits are NaN
    (MLflow skips NaN metrics; the aggregate over splits ignores them).
    """
    values = np.asarray(values, dtype="float64").ravel()
    stats = dict.fromkeys(DISTRIBUTION_STAT_NAMES, _NAN)
    if values.size == 0:
        return stats
    abs_values = np.abs(values)
    nonzero = values[values != 0.0]
    stats["zero_mass"] = 1.0 - nonzero.size / values.size
    stats["n_nonzero_values"] = float(nonzero.size)
    stats["abs_q50"], stats["abs_q90"] = (float(q) for q in np.quantile(abs_values, [0.5, 0.9]))
    if nonzero.size < 2:
        return stats
    stats.update(_fit_both(nonzero))
    return stats


def _fit_both(x: np.ndarray) -> dict[str, float]:
    median = float(np.median(x))
    laplace_scale = float(np.mean(np.abs(x - median)))
    mean = float(x.mean())
    centred = x - mean
    variance = float(np.mean(centred**2))
    if laplace_scale <= 0.0 or variance <= 0.0:
        return {}
    laplace_loglik = -math.log(2.0 * laplace_scale) - 1.0  # mean |x - m| / b = 1 at the MLE
    gaussian_loglik = -0.5 * (_LOG_2PI + math.log(variance)) - 0.5
    difference = laplace_loglik - gaussian_loglik
    return {
        "laplace_loc": median, "laplace_scale": laplace_scale, "laplace_loglik": laplace_loglik,
        "gaussian_loc": mean, "gaussian_scale": math.sqrt(variance), "gaussian_loglik": gaussian_loglik,
        "laplace_loglik_minus_gaussian": difference, "laplace_wins": float(difference > 0.0),
        "excess_kurtosis": float(np.mean(centred**4) / variance**2 - 3.0),
    }


# ----------------------------------------------------------------------------------------------------
# histogram


def leaf_histogram_png(values, title: str) -> bytes:
    """A PNG of the nonzero values' histogram (density) with the fitted Laplace and Gaussian drawn over it.

    Uses a bare :class:`matplotlib.figure.Figure` on the Agg canvas: no pyplot global state, safe in
    worker processes and threads. The zero mass (not drawn: it is an atom) is written in the legend.
    """
    import io

    values = np.asarray(values, dtype="float64").ravel()
    stats = value_distribution_stats(values)
    nonzero = values[values != 0.0]
    axes = _histogram_axes() if nonzero.size else _new_histogram_axes()  # nothing to scale a reused one to
    if nonzero.size:
        axes.hist(nonzero, bins=min(60, max(10, int(np.sqrt(nonzero.size)))), density=True, histtype="stepfilled",
                  color="#c6d4e1", edgecolor="#8fa8bf", linewidth=0.6, label=f"nonzero values (n={nonzero.size})")
    if math.isfinite(stats["laplace_scale"]):
        grid = np.linspace(nonzero.min(), nonzero.max(), 400)
        b, m = stats["laplace_scale"], stats["laplace_loc"]
        axes.plot(grid, np.exp(-np.abs(grid - m) / b) / (2 * b), color="#c0392b", linewidth=1.4,
                  label=f"Laplace b={b:.3g} (ll/value {stats['laplace_loglik']:.3g})")
        s, mu = stats["gaussian_scale"], stats["gaussian_loc"]
        axes.plot(grid, np.exp(-0.5 * ((grid - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi)), color="#2c3e50",
                  linewidth=1.4, linestyle="--", label=f"Gaussian σ={s:.3g} (ll/value {stats['gaussian_loglik']:.3g})")
    zero_mass = stats["zero_mass"] if math.isfinite(stats["zero_mass"]) else 0.0
    axes.plot([], [], " ", label=f"exact zeros: {zero_mass:.1%} (not drawn)")
    axes.relim()
    axes.autoscale_view()
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, frameon=False)
    buffer = io.BytesIO()
    axes.figure.savefig(buffer, format="png")
    return buffer.getvalue()


_HISTOGRAM_FIGURES = threading.local()


def _histogram_axes():
    """The axes to draw a histogram on: one figure per thread, emptied and reused. Building a Figure and
    its Axes is about a quarter of a histogram's cost, and a worker draws one every trial."""
    axes = getattr(_HISTOGRAM_FIGURES, "axes", None)
    if axes is None:
        axes = _HISTOGRAM_FIGURES.axes = _new_histogram_axes()
    else:
        for artist in [*axes.patches, *axes.lines]:
            artist.remove()
        if axes.get_legend() is not None:  # absent if the last drawing failed half-way
            axes.get_legend().remove()
    return axes


def _new_histogram_axes():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(5.0, 3.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_xlabel("value")
    axes.set_ylabel("density")
    axes.xaxis.set_major_locator(MaxNLocator(5))  # fewer ticks: each costs a text layout (20% of the time)
    axes.yaxis.set_major_locator(MaxNLocator(4))
    figure.subplots_adjust(left=0.13, right=0.97, top=0.9, bottom=0.15)  # tight_layout costs a full draw
    return axes


# ----------------------------------------------------------------------------------------------------
# shrinkage against the unregularized trial (after the sweep)


def shrinkage_table(results, other_axes: list[str]):
    """Per trial: |value| statistics relative to the same model at reg_alpha = reg_lambda = 0.

    ``results`` is the study's results table (one row per trial); ``other_axes`` are the sweep axes
    besides the two penalties, which must be equal between a trial and its reference. A linear
    counterpart fitted at positive penalties only (lasso, ridge) is compared with the ``ols`` trial. Returns a
    DataFrame indexed like ``results`` with the shrinkage columns (NaN where no reference exists) and
    the list of models that have no unregularized reference.

    The mean ratio (``*_shrinkage``) says how much the penalty shrinks values overall. The ratios at the
    50th and 90th percentile of |value| tell proportional shrinkage (L2: every value scaled by the same
    factor, so the two ratios are equal) from a subtracted constant (L1: small values lose relatively
    more and snap to 0, so the 50th-percentile ratio falls below the 90th).
    """
    import pandas as pd

    out = pd.DataFrame(index=results.index, columns=list(SHRINKAGE_METRIC_NAMES), dtype="float64")
    if not len(results) or "model" not in results.columns:
        return out, []
    frame = results.copy()
    for axis in ("reg_alpha", "reg_lambda"):
        if axis not in frame.columns:
            frame[axis] = 0.0
    keys = ["model", *[a for a in other_axes if a in frame.columns]]
    key_frame = frame[keys].astype(object).where(frame[keys].notna(), "<none>").astype(str)
    group_key = key_frame.agg("|".join, axis=1)
    unregularized = (pd.to_numeric(frame["reg_alpha"], errors="coerce") == 0) & (
        pd.to_numeric(frame["reg_lambda"], errors="coerce") == 0)
    missing = []
    ols = frame[(frame["model"] == "ols")].head(1)  # the linear counterparts' unregularized fit
    for model in frame["model"].dropna().unique():
        rows = frame["model"] == model
        linear = "kind" in frame.columns and (frame.loc[rows, "kind"] == "linear").all()
        prefix, mean_column = ("coef", "coef_l1") if linear else ("leaf", "leaf_abs_mean")
        if (rows & unregularized).any():
            reference = frame[rows & unregularized].set_index(group_key[rows & unregularized])
            reference = reference[~reference.index.duplicated()]
        elif linear and len(ols):  # lasso and ridge are fitted at positive penalties only: compare with OLS
            reference = pd.concat([ols] * int(rows.sum())).set_index(group_key[rows].to_numpy())
            reference = reference[~reference.index.duplicated()]
        else:
            missing.append(str(model))
            continue
        for column, source in ((f"{prefix}_shrinkage", mean_column), (f"{prefix}_shrinkage_q50", "abs_q50"),
                               (f"{prefix}_shrinkage_q90", "abs_q90")):
            if source not in frame.columns:
                continue
            base = group_key[rows].map(reference[source])
            with np.errstate(divide="ignore", invalid="ignore"):
                out.loc[rows, column] = (pd.to_numeric(frame.loc[rows, source], errors="coerce")
                                         / pd.to_numeric(base, errors="coerce")).replace([np.inf, -np.inf], np.nan)
        out.loc[rows, f"{prefix}_shrinkage_q90_minus_q50"] = (out.loc[rows, f"{prefix}_shrinkage_q90"]
                                                              - out.loc[rows, f"{prefix}_shrinkage_q50"])
    return out, missing
