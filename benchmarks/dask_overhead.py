"""What does the Dask path cost on one machine, and how does the scheduler's per-task overhead compare
with the time a trial trains?

Two measurements:

``study``
    The reference study (``studies/quickstart.yaml``: diabetes, XGBoost and LightGBM, 5 x 5 grid,
    200 rounds = 50 trials) run end to end as users run it, ``gbreg run SPEC -q -j 2`` with
    ``--executor local`` (2 spawned worker processes) and with ``--executor dask`` (a
    ``LocalCluster`` of 2 single-threaded worker processes, started and closed by gbreg). Each run is
    a child process with a fresh SQLite store in a temporary folder, timed by this parent from start
    to exit; the difference is the overhead of the distributed path. The trials' training times
    (``fit_seconds``) are read back from the dask run's store.
``tasks``
    In a child: a ``LocalCluster`` of 2 single-threaded workers is started (timed), the study's data
    set scattered to both, then ``--tasks`` no-op trials go through :class:`DaskExecutor` exactly as
    real trials do (submission window, result collection): ``per-task overhead = wall x worker
    threads / tasks``. With nothing to overlap, that is bound by the round trip driver -> scheduler
    -> worker -> driver (also timed alone), so it is the worst case. Then trial-like tasks that
    sleep ``--sleep`` s (about a median training): ``wall x threads / tasks - sleep`` is what a real
    trial pays, since each worker holds the next trial while one trains.

Usage::

    python benchmarks/dask_overhead.py                      # the reference study, once
    python benchmarks/dask_overhead.py --repeat 3 --json dask_overhead.json
    python benchmarks/dask_overhead.py --spec my_study.yaml --tasks 1000

The machine may be shared: the CPU other processes used during each child is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCE_SPEC = REPO / "studies" / "quickstart.yaml"
WAYS = ("local", "dask")


# ---------------------------------------------------------------------- children


def noop_trial(task, context):
    """A trial that trains nothing (it sleeps ``params['sleep']`` s, if given, as if it trained): what is
    left of its time is the scheduler's and the transport's."""
    from gbreg.models.trial import TrialResult

    time.sleep(task.params.get("sleep", 0.0))
    return TrialResult(task.trial_key, metrics={"n_rows": float(len(context.y))})


def measure_tasks(spec_path: Path, n_tasks: int, jobs: int, sleep: float) -> dict:
    """Child: cluster start/stop, scatter, per-task overhead and round trip of no-op trials on Dask."""
    import dask
    from distributed import Client, LocalCluster

    from gbreg.models.trial import TrialContext, TrialTask
    from gbreg.run.dask_cluster import WORKER_DEATHS_ALLOWED, DaskExecutor
    from gbreg.run.study import prepare_study
    from gbreg.spec.validation import load_spec

    prepared = prepare_study(load_spec(spec_path))
    context = TrialContext(prepared.dataset.X, prepared.dataset.y, prepared.task, prepared.dataset.n_classes,
                           [], prepared.metric, 0, threads=1)
    plan = prepared.plan
    tasks = [TrialTask(f"{plan[i % len(plan)].trial_key}{i:06d}", "booster", "xgboost", "xgboost", {})
             for i in range(n_tasks)]
    sleepers = [TrialTask(f"sleep{i:06d}", "booster", "xgboost", "xgboost", {"sleep": sleep})
                for i in range(max(20, n_tasks // 4))]

    began = time.perf_counter()
    with dask.config.set({"distributed.scheduler.allowed-failures": WORKER_DEATHS_ALLOWED}):
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
    Client(cluster, set_as_default=False).close()  # the executor connects on its own
    cluster_start = time.perf_counter() - began

    began = time.perf_counter()
    executor = DaskExecutor(context, jobs=jobs, scheduler=cluster.scheduler_address, trial_function=noop_trial)
    connect_and_scatter = time.perf_counter() - began
    threads = sum(executor._client.nthreads().values())
    list(executor.run(tasks[:4]))  # warm: workers import gbreg.models.trial and unpickle the function once

    round_trips = []
    for task in tasks[:30]:
        began = time.perf_counter()
        list(executor.run([task]))
        round_trips.append(time.perf_counter() - began)

    began = time.perf_counter()
    results = list(executor.run(tasks))
    batch_wall = time.perf_counter() - began
    assert len(results) == n_tasks and all(r.ok for r in results)

    began = time.perf_counter()
    results = list(executor.run(sleepers))
    sleep_wall = time.perf_counter() - began
    assert len(results) == len(sleepers) and all(r.ok for r in results)
    executor.close()

    began = time.perf_counter()
    cluster.close()
    cluster_close = time.perf_counter() - began
    return {"cluster_start_s": cluster_start, "connect_and_scatter_s": connect_and_scatter,
            "cluster_close_s": cluster_close, "worker_threads": threads, "n_tasks": n_tasks,
            "batch_wall_s": batch_wall, "per_task_overhead_ms": 1000 * batch_wall * threads / n_tasks,
            "round_trip_ms_median": 1000 * statistics.median(round_trips), "sleep_ms": 1000 * sleep,
            "overhead_ms_at_sleep": 1000 * (sleep_wall * threads / len(sleepers) - sleep)}


# ---------------------------------------------------------------------- parent


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent not idle since boot."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def children_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(cmd: list[str], cwd: Path) -> dict:
    """Run to exit; wall time, the child tree's CPU and the CPU other processes used meanwhile."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    cpu_before, busy_before = children_cpu_seconds(), busy_cpu_seconds()
    began = time.perf_counter()
    done = subprocess.run(cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    cpu = children_cpu_seconds() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return {"wall_s": wall, "cpu_s": cpu, "other_cpu_s": max(0.0, busy_cpu_seconds() - busy_before - cpu),
            "stdout": done.stdout}


def fit_seconds(store: Path) -> list[float]:
    """Every trial's training time, from a finished study's store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, filter_string="tags.`gbreg.kind` = 'booster'", max_results=10000)
    return [run.data.metrics["fit_seconds"] for run in runs]


def run_study_way(way: str, spec: Path, jobs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"dask_overhead_{way}_") as folder:
        workdir = Path(folder)
        (workdir / "mlflow.yaml").write_text("tracking_uri: sqlite:///mlflow.db\nartifact_location: mlartifacts\n")
        cmd = [sys.executable, "-m", "gbreg", "run", str(spec), "-q", "-j", str(jobs), "--executor", way]
        measured = run_child(cmd, workdir)
        measured["fit_seconds"] = fit_seconds(workdir / "mlflow.db")
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=REFERENCE_SPEC, help="reference study (default: quickstart)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for both ways")
    parser.add_argument("--tasks", type=int, default=400, help="no-op trials for the per-task overhead")
    parser.add_argument("--sleep", type=float, default=0.06,
                        help="trial-like task duration (s) for the overhead a real trial pays (default ~median fit)")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved repeats; medians are reported")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--child-tasks", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    spec = args.spec.resolve()
    if args.child_tasks:
        print(json.dumps(measure_tasks(spec, args.tasks, args.jobs, args.sleep)))
        return 0

    studies: dict[str, list[dict]] = {way: [] for way in WAYS}
    tasks: list[dict] = []
    for round_no in range(1, args.repeat + 1):
        for way in WAYS:
            result = run_study_way(way, spec, args.jobs)
            studies[way].append(result)
            print(f"[{round_no}/{args.repeat}] study {way:<5} {result['wall_s']:7.2f} s wall, {result['cpu_s']:6.1f} "
                  f"cpu s, other processes {result['other_cpu_s']:5.1f} cpu s", flush=True)
        with tempfile.TemporaryDirectory(prefix="dask_overhead_tasks_") as folder:
            child = run_child([sys.executable, str(Path(__file__).resolve()), "--child-tasks", "--spec", str(spec),
                               "--tasks", str(args.tasks), "--jobs", str(args.jobs), "--sleep", str(args.sleep)],
                              Path(folder))
        tasks.append({**json.loads(child["stdout"].strip().splitlines()[-1]), "other_cpu_s": child["other_cpu_s"]})
        print(f"[{round_no}/{args.repeat}] tasks {tasks[-1]['per_task_overhead_ms']:.2f} ms per task, "
              f"other processes {child['other_cpu_s']:5.1f} cpu s", flush=True)
    report = summarise(spec, args.jobs, studies, tasks)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def summarise(spec: Path, jobs: int, studies: dict[str, list[dict]], tasks: list[dict]) -> dict:
    median = statistics.median
    walls = {way: median(r["wall_s"] for r in runs) for way, runs in studies.items()}
    fits = [s for r in studies["dask"] for s in r["fit_seconds"]]
    overhead_ms = median(t["per_task_overhead_ms"] for t in tasks)
    return {
        "spec": str(spec), "jobs": jobs, "cpus": os.cpu_count(), "n_trials": len(studies["dask"][0]["fit_seconds"]),
        "wall_s": walls, "wall_s_all": {way: [round(r["wall_s"], 2) for r in runs] for way, runs in studies.items()},
        "dask_minus_local_s": walls["dask"] - walls["local"], "dask_over_local": walls["dask"] / walls["local"],
        "other_cpu_s_max": max(r["other_cpu_s"] for runs in studies.values() for r in runs),
        "fit_seconds_median": median(fits), "fit_seconds_min": min(fits), "fit_seconds_max": max(fits),
        "cluster_start_s": median(t["cluster_start_s"] for t in tasks),
        "connect_and_scatter_s": median(t["connect_and_scatter_s"] for t in tasks),
        "cluster_close_s": median(t["cluster_close_s"] for t in tasks),
        "per_task_overhead_ms": overhead_ms,
        "round_trip_ms_median": median(t["round_trip_ms_median"] for t in tasks),
        "overhead_over_fit_median": overhead_ms / 1000 / median(fits),
        "sleep_ms": tasks[0]["sleep_ms"], "overhead_ms_at_sleep": median(t["overhead_ms_at_sleep"] for t in tasks),
    }


def print_report(r: dict) -> None:
    print(f"\ndask_overhead: {Path(r['spec']).name}, {r['n_trials']} trials, -j {r['jobs']}, {r['cpus']} cpus")
    print(f"  study wall, local runner:          {r['wall_s']['local']:7.2f} s   (all: {r['wall_s_all']['local']})")
    print(f"  study wall, LocalCluster({r['jobs']} workers): {r['wall_s']['dask']:7.2f} s   "
          f"(all: {r['wall_s_all']['dask']})")
    print(f"  distributed path costs:            {r['dask_minus_local_s']:+7.2f} s   (x{r['dask_over_local']:.2f})")
    print(f"    of which LocalCluster start {r['cluster_start_s']:.2f} s, connect + scatter "
          f"{r['connect_and_scatter_s']:.2f} s, close {r['cluster_close_s']:.2f} s")
    print(f"  scheduler overhead per task:       {r['per_task_overhead_ms']:7.2f} ms  (single-task round trip "
          f"{r['round_trip_ms_median']:.1f} ms)")
    print(f"  trial training time (fit_seconds): median {1000 * r['fit_seconds_median']:.0f} ms "
          f"(min {1000 * r['fit_seconds_min']:.0f}, max {1000 * r['fit_seconds_max']:.0f})")
    print(f"  per-task overhead / median training: {100 * r['overhead_over_fit_median']:.1f} %  (no-op tasks: "
          "latency-bound, the worst case)")
    print(f"  overhead per {r['sleep_ms']:.0f} ms trial-like task: {r['overhead_ms_at_sleep']:.2f} ms "
          f"({100 * r['overhead_ms_at_sleep'] / r['sleep_ms']:.1f} %: the next trial waits on the worker while one "
          "trains)")
    if r["other_cpu_s_max"] > 2:
        print(f"  note: other processes used up to {r['other_cpu_s_max']:.0f} CPU s during a study run: "
              "the machine was shared, rerun on an idle one for firm figures")


if __name__ == "__main__":
    sys.exit(main())
