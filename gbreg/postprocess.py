"""Parent-run artifacts made after the sweep from the logged results (comparison, plots, findings).

Each step is a function ``step(tracker, prepared, outcome)`` of the results table; a step that fails
is reported and does not lose the study's runs.
"""

from __future__ import annotations


def _steps(submit) -> list:
    from gbreg.comparison import log_comparison
    from gbreg.hypotheses import log_findings, log_shrinkage
    from gbreg.plots import log_study_plots

    def log_plots(tracker, prepared, outcome) -> None:
        log_study_plots(tracker, prepared, outcome, submit)

    log_plots.__name__ = log_study_plots.__name__
    # shrinkage first: it adds leaf_shrinkage columns that the plots can use
    return [log_comparison, log_shrinkage, log_plots, log_findings]


def after_study(tracker, prepared, outcome, progress, submit=None) -> None:
    """``submit(function, argument) -> Future`` draws figures elsewhere (the runner passes its worker
    pool's); without it they are drawn here."""
    for step in _steps(submit):
        try:
            step(tracker, prepared, outcome)
        except Exception as exc:  # noqa: BLE001 - the trials are logged; a report step must not undo that
            progress.message(f"warning: {step.__name__} failed: {type(exc).__name__}: {exc}")
