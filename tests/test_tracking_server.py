"""A study logged to a shared tracking server: a real ``mlflow server`` on loopback (SQLite backend, its
own artifact root), read back through ``MlflowClient`` over HTTP; ``gbreg server`` itself; and a server
that cannot be reached, which must stop a study before anything trains.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pandas as pd
import pytest
import yaml
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg.cli import app
from gbreg.tracking.server import MlflowServer, free_port, port_is_open

N_TRIALS = 12  # small_spec: 3 x 2 grid x 2 libraries


@pytest.fixture
def driver_dir(tmp_path, monkeypatch):
    """A driver's working directory with no store of its own (``tracking_uri`` is set per test)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("GBREG_MLFLOW_CONFIG", raising=False)
    folder = tmp_path / "driver"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.mark.slow  # a server start (~5 s) and a 12-trial study logged over HTTP
def test_study_logged_to_a_tracking_server_is_read_back_over_http(tmp_path, driver_dir) -> None:
    from mlflow.tracking import MlflowClient

    from gbreg.models.trial import LEAVES_ARTIFACT
    from gbreg.tracking.tracker import RESULTS_ARTIFACT, TAG_KIND, TAG_PARENT, TAG_TRIAL_KEY

    artifact_root = tmp_path / "server-artifacts"
    # proxy_artifacts: clients upload through the server (mlflow-artifacts:/), as remote drivers must
    with MlflowServer(f"sqlite:///{tmp_path / 'server.db'}", artifact_root.as_uri(), proxy_artifacts=True) as server:
        (driver_dir / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": server.url}))
        spec = write_spec(driver_dir, small_spec(mlflow={"experiment": "shared"}))
        result = CliRunner().invoke(app, ["run", str(spec), "-j", "1", "-q"])
        assert result.exit_code == 0, result.output

        client = MlflowClient(tracking_uri=server.url)
        experiment = client.get_experiment_by_name("shared")
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        parents = [r for r in runs if r.data.tags.get(TAG_KIND) == "study"]
        children = [r for r in runs if r.data.tags.get(TAG_KIND) == "booster"]
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        assert len(children) == N_TRIALS
        assert {r.info.status for r in children} == {"FINISHED"}
        assert {r.data.tags[TAG_PARENT] for r in children} == {parents[0].info.run_id}
        assert len({r.data.tags[TAG_TRIAL_KEY] for r in children}) == N_TRIALS
        assert {(r.data.params["reg_alpha"], r.data.params["reg_lambda"]) for r in children
                if r.data.params["library"] == "xgboost"} == {(a, b) for a in ("0", "1", "100") for b in ("0", "10")}
        assert all(r.data.metrics["test_rmse"] > 0 and r.data.metrics["n_trees"] == 20 for r in children)
        assert all(r.info.artifact_uri.startswith("mlflow-artifacts:") for r in runs)

        child = children[0]
        leaves = pd.read_parquet(client.download_artifacts(child.info.run_id, LEAVES_ARTIFACT, str(tmp_path)))
        assert {"tree", "leaf", "value", "cover", "depth"} <= set(leaves.columns)
        assert leaves["tree"].nunique() == child.data.metrics["n_trees"]
        results = pd.read_csv(client.download_artifacts(parents[0].info.run_id, RESULTS_ARTIFACT, str(tmp_path)))
        by_run = results.set_index("run_id")["test_rmse"]
        assert all(by_run[r.info.run_id] == pytest.approx(r.data.metrics["test_rmse"], rel=1e-12) for r in children)

    # The files went through the server into its artifact root; the driver wrote no store of its own.
    assert list(artifact_root.rglob(LEAVES_ARTIFACT))
    assert not (driver_dir / "mlflow.db").exists() and not (driver_dir / "mlartifacts").exists()


@pytest.mark.slow  # a server start, ~5 s
def test_gbreg_server_serves_the_store_of_mlflow_yaml_on_loopback(tmp_path) -> None:
    """``gbreg server``: the backend store and artifact root come from ``mlflow.yaml``, bound to 127.0.0.1."""
    from mlflow.tracking import MlflowClient

    (tmp_path / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": "sqlite:///team.db",
                                                          "artifact_location": "team-artifacts"}))
    MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'team.db'}").create_experiment("made-before")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    process = subprocess.Popen([sys.executable, "-m", "gbreg", "server", "--port", str(port)], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_health(f"http://127.0.0.1:{port}", process)
        client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
        assert client.get_experiment_by_name("made-before") is not None  # the store of mlflow.yaml
        made_here = client.create_experiment("made-through-server")
        outward = _outward_address()
        if outward is not None:  # loopback only unless --host says otherwise
            assert not port_is_open(outward, port)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    embedded = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'team.db'}")
    assert embedded.get_experiment(made_here).name == "made-through-server"


def test_unreachable_server_stops_the_study_before_training(driver_dir, monkeypatch) -> None:
    """``MLFLOW_TRACKING_URI`` names a server nobody runs: exit 2 with one clear line, nothing trained.

    The Dask scheduler named here does not exist either: the tracking check comes first and is fast.
    """
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    spec = write_spec(driver_dir, small_spec())
    with socket.create_server(("127.0.0.1", 0)) as scheduler:  # stands in for the scheduler: counts contacts
        contacts = _record_and_close_connections(scheduler)
        result = CliRunner().invoke(app, ["run", str(spec), "--executor", "dask",
                                          "--scheduler", f"tcp://127.0.0.1:{scheduler.getsockname()[1]}"])
    assert contacts == [], "the scheduler was contacted before the tracking server was checked"
    assert result.exit_code == 2, result.output
    assert f"error: tracking server {url} cannot be reached" in result.output
    assert "gbreg server" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in driver_dir.iterdir()) == ["spec.yaml"]  # nothing trained, nothing written


def _record_and_close_connections(server: socket.socket) -> list:
    """Accepts every connection to ``server`` and closes it at once (a client that reached it fails fast
    instead of waiting on a handshake); returns the list the peers are added to."""
    contacts: list = []

    def serve() -> None:
        while True:
            try:
                connection, peer = server.accept()
            except OSError:  # the server socket was closed
                return
            contacts.append(peer)
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return contacts


def _wait_for_health(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gbreg server exited {process.returncode}: {process.stdout.read()}")
        try:
            with opener.open(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"gbreg server did not answer on {url} within {timeout} s")


def _outward_address() -> str | None:
    """This machine's address on its default route, or None when it has no address but loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect sends no packet
        except OSError:
            return None
        address = sock.getsockname()[0]
    return None if address.startswith("127.") else address
