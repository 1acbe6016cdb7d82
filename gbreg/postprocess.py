"""Parent-run artifacts made after the sweep from the logged results (comparison, plots, findings).

Each step is a function ``step(tracker, prepared, outcome)`` of the results table; a step that fails
is reported and does not lose the study's runs.
"""

from __future__ import annotations


def _steps(map_items) -> list:
    from gbreg.comparison import log_comparison
    from gbreg.hypotheses import log_findings, log_shrinkage
    from gbreg.plots import log_study_plots

    def log_plots(tracker, prepared, outcome) -> None:
        log_study_plots(tracker, prepared, outcome, map_items)

    log_plots.__name__ = log_study_plots.__name__
    # shrinkage first: it adds leaf_shrinkage columns that the plots can use
    return [log_comparison, log_shrinkage, log_plots, log_findings]


def after_study(tracker, prepared, outcome, progress, map_items=map) -> None:
    """``map_items(function, items)`` is where figures are drawn (the runner passes its worker pool's)."""
    for step in _steps(map_items):
        try:
            step(tracker, prepared, outcome)
        except Exception as exc:  # noqa: BLE001 - the trials are logged; a report step must not undo that
            progress.message(f"warning: {step.__name__} failed: {type(exc).__name__}: {exc}")
