"""What this machine offers a study: the cores this process may run on, and how they are shared out."""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may use (its CPU affinity: a container's or taskset's limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """Workers x threads = cores."""
    return max(1, available_cores() // max(1, jobs))
