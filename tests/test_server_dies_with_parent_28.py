"""``gbreg server`` killed outright (SIGKILL) takes its ``mlflow server`` and uvicorn processes with it, so
the port is free and a new ``gbreg server`` starts on it. Real processes, a real SQLite store."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from gbreg.tracking.server import free_port, port_is_open

pytestmark = pytest.mark.slow

READY = "MLflow UI ready"


def start_server(folder: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    return subprocess.Popen([sys.executable, "-m", "gbreg", "server", "--port", str(port)], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_ready(process: subprocess.Popen, timeout: float = 120) -> str:
    """Its output until the line saying the server answers (the event, not a guess of how long it takes)."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        line = process.stdout.readline()
        if not line:  # it exited
            break
        seen.append(line)
        if line.startswith(READY):
            return "".join(seen)
    process.kill()
    pytest.fail(f"gbreg server never got ready: {''.join(seen)}{process.communicate(timeout=30)[0]}")


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigkill_of_gbreg_server_stops_its_mlflow_server_and_the_port_can_be_used_again(tmp_path):
    (tmp_path / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": "sqlite:///mlflow.db",
                                                         "artifact_location": "mlartifacts"}))
    port = free_port()
    first = start_server(tmp_path, port)
    wait_ready(first)
    processes = tree(first.pid)
    assert any("mlflow" in " ".join(p.cmdline()) for p in processes[1:]), [p.cmdline() for p in processes]
    assert any("uvicorn" in " ".join(p.cmdline()) for p in processes[1:]), [p.cmdline() for p in processes]
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    deadline = time.monotonic() + 60  # measured: the tree is gone about 1 s after the kill
    while (left := [p for p in processes if alive(p)]) or port_is_open("127.0.0.1", port):
        if time.monotonic() > deadline:
            for process in left:  # leave nothing behind for the other tests
                process.kill()
            pytest.fail(f"still there 60 s after SIGKILL of gbreg server: "
                        f"{[' '.join(p.cmdline())[:80] for p in left]}, port open: {port_is_open('127.0.0.1', port)}")
        time.sleep(0.1)
    first.stdout.close()

    second = start_server(tmp_path, port)
    try:
        wait_ready(second)
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out
    assert "MLflow server stopped." in out
