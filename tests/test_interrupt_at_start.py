"""Ctrl-C while a study starts: a terminal sends it to every process of the group, workers included, while
they are still starting Python. The user gets one line saying how to run again, no traceback from any
process, and nothing in the store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest
from conftest import small_spec, write_spec

pytestmark = pytest.mark.slow

# ``gbreg run`` that stops when its workers have just been spawned (they are importing, the data are about to
# be loaded), says so on the pipe whose write end is argv[1], and waits there for the signal.
LAUNCHER = """
import os, sys, threading
import gbreg.run.study as study
from gbreg.cli import main

reached_fd = int(sys.argv[1])
sys.argv = ["gbreg", *sys.argv[2:]]
load_data = study._load_data

def reached_then_wait(spec, pool):
    os.write(reached_fd, b"reached\\n")
    threading.Event().wait()
    return load_data(spec, pool)

study._load_data = reached_then_wait
main()
"""


def test_ctrl_c_while_the_workers_start_says_how_to_run_again(tmp_path) -> None:
    spec_path = write_spec(tmp_path, small_spec(name="early"))
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(write_end), "run", str(spec_path), "-j", "2", "--set", "seed=3"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=(write_end,),
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(write_end)
    try:
        with os.fdopen(read_end) as reached:
            assert reached.readline() == "reached\n"
        os.killpg(process.pid, signal.SIGINT)  # the whole group, as a terminal's Ctrl-C
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err + out, err
    assert "KeyboardInterrupt" not in err + out, err
    assert err.strip().splitlines()[-1] == (
        "interrupted while the study was starting, before any trial was logged; run again with: "
        f"gbreg run {spec_path} --set seed=3 -j 2")
    store = tmp_path / "mlflow.db"
    if store.exists():
        with sqlite3.connect(store) as db:
            assert db.execute("select count(*) from runs").fetchone() == (0,)
