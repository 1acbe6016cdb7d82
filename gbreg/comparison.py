"""Boosters next to their linear counterparts: comparison.csv and support recovery (issue 3)."""

from __future__ import annotations


def log_comparison(tracker, prepared, outcome) -> None:
    """Log comparison.csv (and support recovery for synthetic data) on the parent run."""
    return None


def comparison_frame(client, parent):
    """The comparison table of a study's parent run (its comparison.csv)."""
    raise NotImplementedError
