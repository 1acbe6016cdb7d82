"""What does the main process of a study hold in memory as its grid grows?

Runs ``gbreg run`` of the short benchmark study (diabetes, 100 rounds, both libraries, ``--trials``
trainings on a square grid; ``sweep_overhead.short_study``) inside this process, into a fresh SQLite store
in a temp folder, and prints at the start and the end of the sweep: the Python objects grown
(tracemalloc, with ``--objects``), SQLite's own memory (``sqlite3_memory_used`` of the library Python's sqlite3 module loads)
and the process's peak RSS. Compare two sizes: what grows with the trials beyond the results table's rows
is what a bigger grid costs.

The peak RSS is measured without tracemalloc: its own bookkeeping (a trace for every live block) grows
with the objects it traces, and read about 10 KB a trial of RSS that the study does not use. With
``--objects`` it traces the Python objects instead, and the RSS it prints then includes that bookkeeping.

Usage::

    python benchmarks/main_memory.py --trials 800
    python benchmarks/main_memory.py --trials 3200
    python benchmarks/main_memory.py --trials 800 --objects
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import resource
import sys
import tempfile
import tracemalloc
from pathlib import Path

import sweep_overhead as reference


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sqlite_memory_mb() -> float:
    try:
        library = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
        library.sqlite3_memory_used.restype = ctypes.c_int64
        return library.sqlite3_memory_used() / 1e6
    except (OSError, AttributeError, TypeError):
        return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=800, help="trainings: 2 x a square grid (50, 200, 800, 3200, ...)")
    parser.add_argument("--objects", action="store_true",
                        help="trace the Python objects grown (tracemalloc; its bookkeeping then inflates the RSS)")
    args = parser.parse_args()

    import gbreg.run.study as study_module
    import gbreg.run.sweep as sweep_module
    from gbreg import load_spec, run_study

    seen: dict[str, float] = {}
    run_sweep, finish = sweep_module.run_sweep, sweep_module._finish

    def measured_sweep(*positional, **named):
        seen.update(rss_start=peak_rss_mb(), sqlite_start=sqlite_memory_mb())
        if args.objects:
            tracemalloc.start(1)
        return run_sweep(*positional, **named)

    def measured_finish(*positional, **named):
        import gc

        gc.collect()
        seen.update(traced=tracemalloc.get_traced_memory()[0] / 1e6, rss_end=peak_rss_mb(),
                    sqlite_end=sqlite_memory_mb())
        if args.objects:
            tracemalloc.stop()
        return finish(*positional, **named)

    study_module.run_sweep, sweep_module._finish = measured_sweep, measured_finish
    with tempfile.TemporaryDirectory(prefix="gbreg-memory-") as folder:
        spec_path = Path(folder) / "spec.yaml"
        spec_path.write_text(reference.spec_yaml(reference.short_study(args.trials)))
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
        os.environ.pop("GBREG_MLFLOW_CONFIG", None)
        os.chdir(folder)
        outcome = run_study(load_spec(spec_path), verbosity=-1)
        os.chdir(Path(__file__).parent)
    n = outcome.n_ran
    print(f"main_memory: {n} trials, {os.cpu_count()} cpus")
    if args.objects:
        print(f"  Python objects grown over the sweep (tracemalloc): {seen['traced']:.1f} MB, "
              f"{1000 * seen['traced'] / n:.1f} KB a trial; the RSS below includes tracemalloc's bookkeeping")
    print(f"  SQLite's memory: {seen['sqlite_start']:.1f} -> {seen['sqlite_end']:.1f} MB")
    print(f"  peak RSS: {seen['rss_start']:.0f} MB at the sweep's start, {seen['rss_end']:.0f} MB at its end "
          f"({1000 * (seen['rss_end'] - seen['rss_start']) / n:.1f} KB a trial), {peak_rss_mb():.0f} MB at the study's end")


if __name__ == "__main__":
    sys.exit(main())
