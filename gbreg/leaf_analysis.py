"""Distribution of leaf values (and coefficients): Laplace vs Gaussian fits, zero mass (issue 4)."""

from __future__ import annotations

import numpy as np


def value_distribution_stats(values: np.ndarray) -> dict[str, float]:
    """Per-trial statistics of the leaf values (or coefficients); merged into the trial's metrics."""
    return {}
