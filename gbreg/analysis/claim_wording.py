"""How the verdicts on trend, sign and best-point claims word their evidence: too few units, p-values,
intervals of effects bounded to [-1, 1], and the markdown tables of findings.md. Shared by
:mod:`gbreg.analysis.judgement`, :mod:`gbreg.analysis.trend_claim` and :mod:`gbreg.analysis.best_point_claim`."""

from __future__ import annotations

import math

import pandas as pd

from gbreg.analysis.inference import MIN_UNITS
from gbreg.spec.hypotheses import Hypothesis


def too_few_units(n: int, unit: str, qualifier: str = "") -> str | None:
    """Why ``n`` units allow no test (None when they do); ``qualifier`` follows the count ("of 3 with ...")."""
    if n >= MIN_UNITS:
        return None
    return (f"only {unit_word(unit, n)}{qualifier}: a test needs at least {MIN_UNITS} independent {unit}s to say "
            f"anything (add repeats)")


def too_few(smallest_p: float, h: Hypothesis, what: str) -> str:
    return (f"{what}: the smallest p-value an exact test can give here is {smallest_p:.3g}, not below the level "
            f"{h.significance:g}, whatever the data")


def no_spread(n: int, unit: str, summary: str, p: float) -> str:
    """Why units that all gave the same ``summary`` get the exact sign-flip p-value, not the t-test's 0."""
    return (f"the {n} {unit}s agree exactly ({summary} in every one), so there is no spread for a t-test (its "
            f"normal model does not fit); the exact sign-flip test over {n} {unit}s cannot go below "
            f"2/2^{n} = {2 * 0.5**n:.3g}: p = {p:.3g}; more {'repeats' if unit == 'repeat' else 'splits'} decide")


def unit_word(unit: str, n: int) -> str:
    return f"{n} {unit}{'s' if n != 1 else ''}"


def p_text(p: float) -> str:
    if p == 0:  # units that agree exactly get the exact test's p (no_spread); only underflow is left
        return "0 (below the floating-point range)"
    return f"{p:.2g}"


def bounded_ci(level: float, low: float, high: float, n_units: int, unit: str) -> str:
    """'95% CI +0.71 to +1.00' for an effect in [-1, 1] (a mean ρ, a share difference): the t-interval
    clipped to that range; 'no interval from 1 split' when there is none."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"no interval from {unit_word(unit, n_units)}"
    return f"{level:.0%} CI {max(low, -1.0):+.2f} to {min(high, 1.0):+.2f}"


def markdown_table(rows: list[list[str]], header: list[str]) -> str:
    """A markdown table of cells already formatted as text: kept as they are (no number parsing) and
    without alignment colons, so it renders as the tables of findings.md always have."""
    return pd.DataFrame(rows, columns=header).to_markdown(index=False, disable_numparse=True, stralign=None)
