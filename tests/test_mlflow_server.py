"""A real ``mlflow server`` started by gbreg.tracking.server: answers over HTTP, stops without leftovers.

Why a real server: the lifecycle (process group, health polling, SIGTERM then SIGKILL) is the point,
and it is exactly what mocks would hide.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gbreg.tracking.server import (
    MlflowServer,
    MlflowServerError,
    artifact_arguments,
    free_port,
    port_is_open,
    runs_page_url,
)


def descendant_pids(pid: int) -> set[int]:
    """``pid`` and every process below it, via psutil when installed, else /proc."""
    try:
        import psutil
    except ImportError:
        return _descendants_from_proc(pid)
    root = psutil.Process(pid)
    return {pid, *(child.pid for child in root.children(recursive=True))}


def _descendants_from_proc(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    found, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.update(children)
        frontier.extend(children)
    return found


def is_alive(pid: int) -> bool:
    """Running and not a zombie (a zombie holds no port and no memory worth mentioning)."""
    try:
        import psutil
    except ImportError:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X")
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow  # a server start is ~5 s
def test_server_serves_runs_over_http_and_stops_without_leftovers(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    store_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    artifacts = tmp_path / "mlartifacts"
    server = MlflowServer(store_uri, artifacts.as_uri(), host="127.0.0.1", port=free_port())
    with server:
        assert server.start_seconds is not None
        print(f"server answered after {server.start_seconds:.1f} s at {server.url}")
        started_pids = descendant_pids(server.process.pid)  # type: ignore[union-attr]
        assert len(started_pids) >= 2, "expected the mlflow CLI and its uvicorn worker"

        client = MlflowClient(tracking_uri=server.url)
        experiment_id = client.create_experiment("server-lifecycle")
        run = client.create_run(experiment_id, run_name="probe")
        client.log_param(run.info.run_id, "reg_alpha", "0.5")
        client.log_metric(run.info.run_id, "test_rmse", 1.25)
        client.set_terminated(run.info.run_id)

        fetched = client.get_run(run.info.run_id)
        assert fetched.data.params == {"reg_alpha": "0.5"}
        assert fetched.data.metrics == {"test_rmse": 1.25}
        assert fetched.info.artifact_uri.startswith(artifacts.as_uri()), (
            "experiments created through the server must use the configured local artifact folder")
        assert runs_page_url(server.url, experiment_id) == (
            f"{server.url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning")

    print(f"server stopped in {server.stop_seconds:.2f} s")
    assert not port_is_open("127.0.0.1", server.port), "port still answers after stop()"
    leftovers = sorted(pid for pid in started_pids if is_alive(pid))
    assert leftovers == [], f"processes left after stop(): {leftovers}"
    assert server.log_path is None, "the temporary server log should be removed on stop"


def test_start_failure_reports_the_server_log(tmp_path: Path) -> None:
    """A store MLflow cannot open must fail fast with MLflow's own words, not a timeout."""
    server = MlflowServer("bogus-scheme://nowhere", None, port=free_port(), start_timeout=60)
    with pytest.raises(MlflowServerError) as caught:
        server.start()
    message = str(caught.value)
    assert "exited with status" in message
    assert "server log" in message
    assert "bogus-scheme" in message
    assert not server.is_running()


def test_busy_port_is_refused_before_launching(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = MlflowServer(f"sqlite:///{tmp_path / 'x.db'}", None, port=port)
        with pytest.raises(MlflowServerError, match="already in use"):
            server.start()
        assert server.process is None


@pytest.mark.parametrize(
    ("location", "proxy", "expected_flags"),
    [
        (None, False, []),
        ("s3://bucket/prefix", False, ["--default-artifact-root", "s3://bucket/prefix"]),
    ],
)
def test_artifact_arguments_for_remote_or_missing_locations(
        location: str | None, proxy: bool, expected_flags: list[str]) -> None:
    assert artifact_arguments(location, proxy) == expected_flags


def test_artifact_arguments_for_a_local_folder(tmp_path: Path) -> None:
    folder_uri = (tmp_path / "art").as_uri()
    assert artifact_arguments(folder_uri) == [
        "--default-artifact-root", folder_uri, "--artifacts-destination", folder_uri]
    assert artifact_arguments(folder_uri, proxy_artifacts=True) == ["--artifacts-destination", folder_uri]
    assert (tmp_path / "art").is_dir()


def test_module_does_not_import_mlflow() -> None:
    """``gbreg --help`` must stay fast: importing the server helper must not import MLflow."""
    code = "import sys, gbreg.tracking.server; print(any(m.startswith('mlflow') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert result.stdout.strip() == "False"


SERVE_FOREVER_SCRIPT = """
import sys
from gbreg.cli_process import stop_signals_interrupt
from gbreg.spec.tracking_config import TrackingConfig
from gbreg.tracking.serve import serve_forever
config = TrackingConfig(tracking_uri=sys.argv[1], artifact_location=sys.argv[2], ui_port=int(sys.argv[3]))
with stop_signals_interrupt():  # as `gbreg ui` does
    serve_forever(config, experiments={"quickstart": "7"})
"""


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_forever_stops_cleanly_on_ctrl_c_and_sigterm(tmp_path: Path, stop_signal: int) -> None:
    """What ``gbreg ui`` does: print the address, serve until interrupted, leave nothing behind."""
    port = free_port()
    repo_root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-c", SERVE_FOREVER_SCRIPT, f"sqlite:///{tmp_path / 'mlflow.db'}",
               (tmp_path / "mlartifacts").as_uri(), str(port)]
    cli = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "PYTHONPATH": str(repo_root)})
    lines: list[str] = []
    try:
        assert cli.stdout is not None
        for line in cli.stdout:  # blocks until the server is ready (or the CLI dies)
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        output = "".join(lines)
        assert "MLflow UI ready" in output and f"http://127.0.0.1:{port}" in output, output
        assert f"runs of quickstart: {runs_page_url(f'http://127.0.0.1:{port}', '7')}" in output, output
        started_pids = descendant_pids(cli.pid) - {cli.pid}
        assert port_is_open("127.0.0.1", port)

        cli.send_signal(stop_signal)
        rest, _ = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, output + rest
    assert "MLflow server stopped." in rest, rest
    assert not port_is_open("127.0.0.1", port)
    leftovers = sorted(pid for pid in started_pids if is_alive(pid))
    assert leftovers == [], f"processes left after {signal.Signals(stop_signal).name}: {leftovers}"
