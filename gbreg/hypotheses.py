"""Hypotheses a study states under ``expect:`` and their verdicts (issue 4)."""

from __future__ import annotations


def expectation_problems(spec) -> list[tuple[str, str]]:
    """Spec problems in ``expect:`` as (key path, message); called at validation time."""
    return [("expect", "hypotheses are not supported yet")] if spec.expect else []


def log_findings(tracker, prepared, outcome) -> None:
    """Test each hypothesis on the results; log findings.md and verdicts on the parent run."""
    return None


def findings_text(client, parent) -> str:
    """The findings.md of a study's parent run."""
    raise NotImplementedError
