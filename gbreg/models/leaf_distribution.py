"""Distribution of one trial's leaf values (and linear coefficients): Laplace vs Gaussian fits, zero mass.

Why both fits: the popular reading of the penalties is that L1 is a Laplace prior and L2 a Gaussian
prior on the weights (Goodfellow et al., Deep Learning, §7.1). Fitting both densities by maximum
likelihood to the values a trial learned, and comparing their log-likelihood per value, asks whether
the learned values *look like* draws from that prior. Both families have two parameters (location,
scale), so the per-value log-likelihood difference is a fair comparison (it is the AIC difference / 2n).

An L1 penalty puts an atom at exactly 0 (soft-thresholding) that no density models, so the fits use the
nonzero values only and the zero mass is reported on its own.

``value_distribution_stats`` runs in the worker for every split of every trial: numpy only, O(n).
``leaf_histogram_png`` draws one trial's values with both densities (matplotlib Agg, no pyplot state).
The shrinkage against the unregularized trial is computed after the sweep (:mod:`gbreg.analysis.shrinkage`).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from gbreg.catalogue import names

DISTRIBUTION_STAT_NAMES = names("distribution")

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
