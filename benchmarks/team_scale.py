"""A 1,000-trial study of short trials through the team set-up against the same study on one machine:
trials per second and the driver's CPU per trial.

The study: scikit-learn's diabetes data, XGBoost with 5 rounds of depth-2 trees, a grid of reg_alpha x
reg_lambda (40 x 25 = 1,000 trials of a few milliseconds of training each), logged like any gbreg study
(params, metrics, curves, leaves.parquet, the leaf histogram). Two ways, each ``gbreg run spec.yaml -q``
as a child process, timed by this parent from start to exit:

``local``
    the embedded SQLite store, ``-j 2`` (two spawned worker processes on this machine);
``team``
    ``gbreg server`` on a throw-away PostgreSQL cluster (artifacts proxied) and a Dask scheduler with two
    single-threaded workers, each its own process (tests/team_services.py, as the tests start them).

The driver's own CPU (user + system, not its workers') is sampled with psutil every 0.1 s until it
exits; for ``team``, the CPU of the tracking server's processes and of PostgreSQL is measured too. The
machine may be shared: the CPU all processes used during each run is printed beside it. Every run is
checked to have logged one FINISHED run per trial.

Usage::

    python benchmarks/team_scale.py                          # both ways, 1,000 trials
    python benchmarks/team_scale.py --trials 200 --json team_scale.json

Needs PostgreSQL's binaries (``bash .ci/install-postgresql.sh``) and ``pip install -e '.[team]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from team_services import CALLER_SETTINGS, TeamServices, postgres_bin_dir  # noqa: E402 - the line above

SAMPLE_S = 0.1


def study(name: str, n_trials: int) -> dict:
    """``n_trials`` short XGBoost trials: a grid of 40 reg_alpha values by n_trials / 40 reg_lambda values."""
    n_alpha = 40 if n_trials >= 80 else 2
    n_lambda = max(1, n_trials // n_alpha)
    return {
        "name": name, "seed": 0, "mlflow": {"experiment": name},
        "data": {"source": "sklearn", "name": "diabetes"},
        "evaluation": {"split": "holdout", "test_size": 0.25, "metric": "rmse"},
        "models": {"xgboost": {"n_estimators": 5, "max_depth": 2, "learning_rate": 0.3}},
        "sweep": {"reg_alpha": _grid(n_alpha), "reg_lambda": _grid(n_lambda)},
    }


def _grid(n: int) -> list[float]:
    """0 and n - 1 penalties spread evenly in log space from 0.001 to 100."""
    return [0.0] + [float(f"{10 ** (-3 + 5 * i / max(1, n - 2)):.4g}") for i in range(n - 1)]


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds of these processes and everything below them, reaped children included."""
    total = 0.0
    for pid in roots:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                t = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


def machine_busy() -> float:
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def run_driver(folder: Path, mlflow_yaml: dict, spec: dict, args: list[str], servers: list[int]) -> dict:
    """``gbreg run`` in ``folder``: wall time, the driver's CPU, the servers' CPU, the machine's CPU."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mlflow.yaml").write_text(yaml.safe_dump(mlflow_yaml))
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in CALLER_SETTINGS}
    servers_before, busy_before = tree_cpu(servers), machine_busy()
    began = time.perf_counter()
    with (folder / "driver.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "gbreg", "run", "spec.yaml", "-q", *args], cwd=folder,
                                   env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    driver = psutil.Process(process.pid)
    driver_cpu = 0.0
    while process.poll() is None:
        try:
            times = driver.cpu_times()
            driver_cpu = times.user + times.system  # its own, not its workers'
        except psutil.NoSuchProcess:
            break
        time.sleep(SAMPLE_S)
    wall = time.perf_counter() - began
    if process.wait() != 0:
        raise SystemExit(f"gbreg run failed; {folder / 'driver.log'}:\n{(folder / 'driver.log').read_text()[-3000:]}")
    return {"wall_s": wall, "driver_cpu_s": driver_cpu, "servers_cpu_s": tree_cpu(servers) - servers_before,
            "machine_cpu_s": machine_busy() - busy_before}


def finished_trials(tracking_uri: str, experiment: str) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], "attributes.status = 'FINISHED' and tags.`gbreg.kind` = 'booster'",
                              max_results=50000)
    return len(runs)


def measure(way: str, n_trials: int, folder: Path, team: TeamServices | None) -> dict:
    name = f"scale-{way}-{n_trials}"
    spec = study(name, n_trials)
    if team is None:
        result = run_driver(folder / way, {"tracking_uri": "sqlite:///mlflow.db"}, spec, ["-j", "2"], [])
        uri = f"sqlite:///{folder / way / 'mlflow.db'}"
    else:
        servers = [team.server.process.pid, team.postgres.postmaster_pid()]
        result = run_driver(folder / way, team.driver_config(dask=True), spec, [], servers)
        uri = team.server.url
    done = finished_trials(uri, name)
    if done != n_trials:
        raise SystemExit(f"{way}: {done} FINISHED trials of {n_trials}")
    result.update(way=way, trials=n_trials, trials_per_s=n_trials / result["wall_s"],
                  driver_cpu_ms_per_trial=1000 * result["driver_cpu_s"] / n_trials,
                  servers_cpu_ms_per_trial=1000 * result["servers_cpu_s"] / n_trials)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        print("error: PostgreSQL's binaries are absent; install them with: bash .ci/install-postgresql.sh",
              file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="gbreg-team-scale-") as tmp:
        folder = Path(tmp)
        results.append(measure("local", args.trials, folder, None))
        with TeamServices(folder / "team", bin_dir) as team:
            results.append(measure("team", args.trials, folder, team))
    print(f"{'way':6} {'trials':>6} {'wall s':>7} {'trials/s':>8} {'driver CPU ms/trial':>20} "
          f"{'server+PostgreSQL CPU ms/trial':>31} {'machine CPU s':>14}")
    for r in results:
        print(f"{r['way']:6} {r['trials']:>6} {r['wall_s']:>7.1f} {r['trials_per_s']:>8.2f} "
              f"{r['driver_cpu_ms_per_trial']:>20.1f} {r['servers_cpu_ms_per_trial']:>31.1f} {r['machine_cpu_s']:>14.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
