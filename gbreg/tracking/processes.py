"""Is the gbreg process that left something behind (a RUNNING run, a context file) still alive?"""

from __future__ import annotations

import os
import socket

import psutil

# A process that started this long after the thing it supposedly left behind has a recycled pid.
# The slack covers clock granularity between the store's timestamps and the kernel's start times.
START_SLACK_S = 2.0


def gbreg_process_alive(pid: int, left_at: float | None = None) -> bool:
    """True while ``pid`` is the process that left something at time ``left_at`` (seconds since the
    epoch): it exists, is a Python process, and had started by then. A pid the kernel gave to a newer
    process is not ours, whatever that process is."""
    if pid == os.getpid():
        return True
    try:
        process = psutil.Process(pid)
        if left_at is not None and process.create_time() > left_at + START_SLACK_S:
            return False
        command = " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return False
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return True  # someone else's, or exiting: not provably dead
    return "python" in command or "gbreg" in command


def running_elsewhere(host: str | None, pid: str | None) -> str | None:
    """Who may be running a run tagged RUNNING with ``gbreg.host``/``gbreg.pid``: ``"alive"`` (a live
    gbreg process on this host other than this one), ``"unknown"`` (another host: it cannot be checked
    from here, so, as :func:`gbreg.tracking.dead_runs.mark_dead_runs_failed` does, it is not taken for
    dead), or None (nobody: this process, a process that is gone, or no tags to tell)."""
    if not host or not (pid or "").isdigit():
        return None
    if host != socket.gethostname():
        return "unknown"
    if int(pid) == os.getpid() or not gbreg_process_alive(int(pid)):
        return None
    return "alive"
