"""Whether the process that left a RUNNING run or a context file is still alive, on real processes."""

from __future__ import annotations

import subprocess
import sys
import time

from gbreg.tracking.processes import START_SLACK_S, gbreg_process_alive


def test_a_live_python_process_is_alive_and_a_finished_one_is_not():
    # the child says when it runs: until its exec is done, its command line can be empty
    child = subprocess.Popen([sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"ready\n"
    try:
        assert gbreg_process_alive(child.pid)
        assert gbreg_process_alive(child.pid, left_at=time.time())  # started before it left anything
    finally:
        child.communicate(b"")
    assert not gbreg_process_alive(child.pid)


def test_a_pid_recycled_by_a_newer_process_is_not_the_one_that_left_the_run():
    left_at = time.time() - 10 * START_SLACK_S  # the run was created well before this process started
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert not gbreg_process_alive(child.pid, left_at=left_at)
    finally:
        child.communicate(b"")


def test_a_live_process_that_is_not_python_is_not_gbreg():
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert not gbreg_process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
