"""``gbreg report RUN_ID -o report.html``: one self-contained HTML report of a study (issue 7)."""

from __future__ import annotations

from pathlib import Path


def write_report(run_id: str, output: Path) -> Path:
    raise NotImplementedError("gbreg report is not implemented yet")
