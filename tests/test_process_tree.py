"""Processes gbreg starts die with the process that started them, even one killed outright (Linux)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from gbreg.process_tree import die_with_parent_preexec, group_members

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

SLEEPER = "import sys, time; print('ready', flush=True); time.sleep(600)"

# The middle process starts the grandchild one of two ways, prints its pid, then waits to be killed.
MIDDLE = textwrap.dedent("""
    import subprocess, sys, time
    from gbreg.process_tree import die_with_parent, die_with_parent_preexec
    how = sys.argv[1]
    if how == "preexec":  # gbreg server: the request is made between fork and exec
        child = subprocess.Popen([sys.executable, "-c", {sleeper!r}], stdout=subprocess.PIPE, text=True,
                                 preexec_fn=die_with_parent_preexec())
    else:  # a worker: the child asks for itself
        code = "from gbreg.process_tree import die_with_parent; die_with_parent(); " + {sleeper!r}
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\\n"
    print(child.pid, flush=True)
    time.sleep(600)
""").format(sleeper=SLEEPER)


@pytest.mark.parametrize("how", ["preexec", "in_child"])
def test_grandchild_dies_when_its_parent_is_killed_outright(how):
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE, how], stdout=subprocess.PIPE, text=True)
    try:
        grandchild = psutil.Process(int(middle.stdout.readline()))
        assert grandchild.is_running()
        middle.kill()
        middle.wait(30)
        psutil.wait_procs([grandchild], timeout=30)  # returns when it is gone, or after 30 s
        assert not grandchild.is_running(), "the grandchild outlived the process that started it"
    finally:
        middle.kill()


def test_preexec_is_only_requested_from_the_main_thread():
    import threading

    found = []
    thread = threading.Thread(target=lambda: found.append(die_with_parent_preexec()))
    thread.start()
    thread.join()
    assert found == [None]  # the signal would come when that short-lived thread ends
    assert callable(die_with_parent_preexec())


def test_group_members_lists_the_live_processes_of_a_group():
    leader = subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert leader.stdout.readline() == "ready\n"
        assert group_members(leader.pid) == [leader.pid]
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(30)  # reaped: no zombie left in the group
        assert group_members(leader.pid) == []
    finally:
        leader.kill()
