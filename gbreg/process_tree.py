"""The processes gbreg starts die with the process that started them, and are found by their group.

Linux's ``PR_SET_PDEATHSIG`` has the kernel signal a child when its parent dies, even by SIGKILL, so a
killed ``gbreg run`` or ``gbreg server`` leaves no worker or ``mlflow server`` holding a port, a pipe or a
store lock. Elsewhere these are no-ops: workers then exit when their pipes close, and ``gbreg server``
stops its server in order on the signals it can catch.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _prctl() -> Callable | None:
    """libc's ``prctl`` (the running program's own symbols: no library search), None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """This process gets ``sig`` when its parent dies (a worker: SIGKILL, nothing of it is worth keeping)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def die_with_parent_preexec(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """The ``preexec_fn`` that makes a subprocess get ``sig`` when the process starting it dies, even by
    SIGKILL; None where that cannot be arranged (not Linux) or must not be (off the main thread).

    The kernel sends the signal when the *thread* that forked the child exits, not the process: a
    subprocess started from a short-lived thread would be stopped with it, so only the main thread, which
    lives as long as the process, asks for it.
    """
    prctl = _prctl()
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def request() -> None:  # runs in the child between fork and exec: no allocation-heavy work
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request was in place
            os.kill(os.getpid(), sig)

    return request


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group; via /proc, else a signal-0 probe."""
    proc = Path("/proc")
    if proc.is_dir():
        members = []
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
        return members
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []
    return [pgid]
