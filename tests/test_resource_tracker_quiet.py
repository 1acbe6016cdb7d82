"""After a Ctrl-C while the workers start, the command line's last line is how to run again: the resource
tracker's warning about the pool's semaphores (printed once the gbreg process is gone) is filtered."""

from __future__ import annotations

import subprocess
import sys

LEAVE_SEMAPHORES = """
import os, sys
if sys.argv[1] == "quiet":
    from gbreg.console import quiet_resource_tracker
    quiet_resource_tracker()
import multiprocessing
context = multiprocessing.get_context("spawn")
kept = context.Lock(), context.Semaphore()
print("interrupted", file=sys.stderr, flush=True)
os._exit(130)  # as the command line ends, without the pool's cleanup
"""


def stderr_of(mode: str) -> str:
    # the tracker shares stderr: reading to its end waits for the tracker to exit, not for a clock
    return subprocess.run([sys.executable, "-c", LEAVE_SEMAPHORES, mode], capture_output=True, text=True,
                          timeout=60).stderr


def test_the_resource_trackers_warning_is_filtered():
    assert "leaked semaphore objects" in stderr_of("plain")  # what a user saw after the message
    assert stderr_of("quiet").strip() == "interrupted"
