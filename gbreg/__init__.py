"""gbreg: measure what L1 and L2 regularization do to gradient-boosted trees and linear models.

    from gbreg import load_spec, run_study
    outcome = run_study(load_spec("studies/quickstart.yaml"))
"""

from __future__ import annotations

from gbreg.errors import DataError, GbregError, SpecError, StudyFailed, TrackingError, UserInputError
from gbreg.spec import Spec, load_spec


def run_study(spec, **kwargs):
    """Run (or resume) a study; see :func:`gbreg.runner.run_study`. Imported lazily to keep start-up fast."""
    from gbreg.runner import run_study as _run_study

    return _run_study(spec, **kwargs)


def judge(cells, expect, axes, **kwargs):
    """Verdicts for hypotheses on a trial x split table; see :func:`gbreg.judgement.judge` (imported lazily)."""
    from gbreg.judgement import judge as _judge

    return _judge(cells, expect, axes, **kwargs)


__all__ = ["DataError", "GbregError", "Spec", "SpecError", "StudyFailed", "TrackingError", "UserInputError",
           "judge", "load_spec", "run_study"]
