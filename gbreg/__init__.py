"""gbreg: measure what L1 and L2 regularization do to gradient-boosted trees and linear models.

    from gbreg import load_spec, run_study

    if __name__ == "__main__":  # in a script: the spawned workers import it again
        outcome = run_study(load_spec("studies/quickstart.yaml"))

The workers are spawned processes that import the script's ``__main__`` module; without the guard each of
them would start the study again, so a script that starts one at import is refused with that advice. In a notebook
no guard is needed. ``outcome`` is a :class:`StudyOutcome`; Ctrl-C during the sweep returns it with
``interrupted=True`` rather than raising (see :func:`run_study`).
"""

from __future__ import annotations

from importlib import import_module

from gbreg.errors import DataError, GbregError, SpecError, StudyFailed, TrackingError, UserInputError

# The public API, imported on first use: ``import gbreg`` (and so ``gbreg --help``) must not pay for
# pandas, pydantic and the booster registry that the spec, the run and the verdicts import.
_LAZY = {
    "Spec": "gbreg.spec.schema",
    "load_spec": "gbreg.spec.validation",
    "run_study": "gbreg.run.study",
    "StudyOutcome": "gbreg.run.sweep",
    "judge": "gbreg.analysis.judgement",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gbreg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["DataError", "GbregError", "Spec", "SpecError", "StudyFailed", "StudyOutcome", "TrackingError",
           "UserInputError", "judge", "load_spec", "run_study"]
