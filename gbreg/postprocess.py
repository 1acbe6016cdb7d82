"""Parent-run artifacts made after the sweep from the logged results (comparison, plots, findings).

Each step is a function of the results table; a step that fails is reported and does not lose the
study's runs.
"""

from __future__ import annotations


def after_study(tracker, prepared, outcome, progress) -> None:
    steps: list = []
    for step in steps:
        try:
            step(tracker, prepared, outcome)
        except Exception as exc:  # noqa: BLE001 - the trials are logged; a report step must not undo that
            progress.message(f"warning: {step.__name__} failed: {type(exc).__name__}: {exc}")
