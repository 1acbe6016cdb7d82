"""Study plots, computed from the results table then drawn with matplotlib's Agg backend (issue 7)."""

from __future__ import annotations


def log_study_plots(tracker, prepared, outcome) -> None:
    """Draw the study's figures and log them as PNG artifacts on the parent run."""
    return None
