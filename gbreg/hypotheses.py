"""Hypotheses a study states under ``expect:`` and their verdicts (issue 4; vocabulary to come)."""

from __future__ import annotations


def expectation_problems(spec) -> list[tuple[str, str]]:
    return [("expect", "hypotheses are not supported yet")] if spec.expect else []
