"""Parent-run artifacts made after the sweep from the logged results (comparison, results.csv, plots,
findings).

Each step is a function ``step(tracker, prepared, outcome)`` of the results table; a step that fails
is reported (``outcome.report_failures``; ``gbreg run`` then exits 1) and does not lose the study's runs.
"""

from __future__ import annotations

from gbreg.analysis.comparison import log_comparison
from gbreg.analysis.findings import add_shrinkage_columns, log_findings, log_shrinkage_metrics
from gbreg.report.plots import log_study_plots
from gbreg.tracking.tracker import RESULTS_ARTIFACT

# each step as the user knows it (what it makes), for the warning when it fails: keyed by the step's name
STEP_DESCRIPTIONS = {
    "log_comparison": "make the comparison of the libraries (comparison.csv)",
    "add_shrinkage_columns": "add the leaf-shrinkage columns to results.csv",
    "log_study_plots": "make the study's plots (plots/ on the parent run)",
    "log_shrinkage_metrics": "log the leaf-shrinkage metrics (leaf_shrinkage*) on the trial runs",
    "log_findings": "test the hypotheses and make the findings (findings.md)",
}


def step_description(step) -> str:
    name = getattr(step, "__name__", str(step))
    return STEP_DESCRIPTIONS.get(name, f"complete the step {name}")


def after_study(tracker, prepared, outcome, progress, submit=None) -> None:
    """``submit(function, argument) -> Future`` draws figures elsewhere (the runner passes its worker
    pool's); this process then logs the shrinkage metrics while they are drawn. Without it the figures
    are drawn here."""

    def run(step) -> None:
        try:
            step(tracker, prepared, outcome)
        except Exception as exc:  # noqa: BLE001 - the trials are logged; a report step must not undo that
            what = step_description(step)
            outcome.report_failures.append(f"{what}: {type(exc).__name__}: {exc}")
            progress.warning(f"could not {what}: {type(exc).__name__}: {exc}")

    shrinkage_logged = False

    def log_shrinkage() -> None:
        nonlocal shrinkage_logged
        shrinkage_logged = True
        run(log_shrinkage_metrics)

    def log_plots(tracker, prepared, outcome) -> None:
        log_study_plots(tracker, prepared, outcome, submit, meanwhile=log_shrinkage)

    log_plots.__name__ = log_study_plots.__name__
    run(log_comparison)
    run(add_shrinkage_columns)  # columns the figures can use
    if len(outcome.results):  # after the shrinkage columns: results.csv has every metric of the child runs
        tracker.log_text(tracker.parent_run_id, outcome.results.to_csv(index=False), RESULTS_ARTIFACT)
    run(log_plots)
    if not shrinkage_logged:  # the figures' step ended before it got to them
        log_shrinkage()
    run(log_findings)
