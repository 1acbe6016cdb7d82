"""Where a ``gbreg run`` leaves cores idle: the CPU its main process and its workers use in each quarter
second, from psutil polled every 50 ms, and the idle core-seconds over the run.

Usage (in a folder with the spec; a fresh store is made there, ``mlflow.db`` and ``mlartifacts`` removed)::

    python benchmarks/cpu_timeline.py spec.yaml

``python benchmarks/sweep_overhead.py`` writes its short study's spec with ``spec_yaml(short_study(50))``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time

import psutil

BUCKET_S = 0.25
POLL_S = 0.05


def cpu_samples(command: list[str]) -> tuple[float, int, list[tuple[float, dict[int, float]]]]:
    """Run ``command``; (wall seconds, its pid, [(time, {pid: CPU seconds so far})] for it and its children)."""
    start = time.perf_counter()
    process = subprocess.Popen(command)
    root = psutil.Process(process.pid)
    samples = []
    while process.poll() is None:
        now = time.perf_counter() - start
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        row = {}
        for each in processes:
            try:
                times = each.cpu_times()
                row[each.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                pass
        samples.append((now, row))
        time.sleep(POLL_S)
    return time.perf_counter() - start, process.pid, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--cores", type=int, default=psutil.cpu_count())
    args = parser.parse_args()
    shutil.rmtree("mlartifacts", ignore_errors=True)
    if os.path.exists("mlflow.db"):
        os.remove("mlflow.db")
    wall, main_pid, samples = cpu_samples(["gbreg", "run", args.spec, "-q"])
    used: dict[int, dict[str, float]] = {}
    before: dict[int, float] = {}
    for now, row in samples:
        for pid, cpu in row.items():
            part = "main" if pid == main_pid else "workers"
            used.setdefault(int(now / BUCKET_S), {"main": 0.0, "workers": 0.0})[part] += cpu - before.get(pid, 0.0)
            before[pid] = cpu
    idle = 0.0
    print(f"wall {wall:.2f} s; CPU cores in use per {BUCKET_S} s (main process, its workers)")
    for bucket in sorted(used):
        main_cpu, workers = used[bucket]["main"], used[bucket]["workers"]
        idle += max(0.0, args.cores * BUCKET_S - main_cpu - workers)
        print(f"{bucket * BUCKET_S:6.2f} s  main {main_cpu / BUCKET_S:4.2f}  workers {workers / BUCKET_S:4.2f}  "
              + "#" * int((main_cpu + workers) / BUCKET_S * 10))
    print(f"idle core-seconds: {idle:.2f}")


if __name__ == "__main__":
    main()
