"""``gbreg reproduce RUN_ID``: rerun a study from what its parent run recorded and compare (issue 5)."""

from __future__ import annotations


def reproduce(run_id: str, rtol: float = 0.0, allow_data_change: bool = False, jobs: int | None = None) -> int:
    """Rerun, print the differences, return the exit status (0: all match within rtol)."""
    raise NotImplementedError("gbreg reproduce is not implemented yet")
