"""Executors: run trial tasks and yield results as they finish. The main process logs them.

- ``inline``: in this process (``--jobs 1``): no spawn or import cost.
- ``local``: spawned worker processes (never forked: forking after XGBoost/LightGBM started their
  OpenMP threads deadlocks), each given the data set once through its initializer.
- ``dask``: tasks on a Dask ``distributed`` cluster (see :mod:`gbreg.execute_dask`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from gbreg.trial import TrialContext, TrialResult, TrialTask, install_context, run_trial


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """Workers x threads = cores."""
    return max(1, available_cores() // max(1, jobs))


class InlineExecutor:
    name = "inline"

    def __init__(self, context: TrialContext):
        install_context(context)

    def run(self, tasks: list[TrialTask], on_submit=None) -> Iterator[TrialResult]:
        for task in tasks:
            if on_submit:
                on_submit(task)
            yield run_trial(task)

    def close(self, cancel: bool = False) -> None:
        pass


class LocalExecutor:
    """A pool of spawned processes; keeps at most ``2 x jobs`` tasks in flight so Ctrl-C stops quickly."""

    name = "local"

    def __init__(self, context: TrialContext, jobs: int):
        self.jobs = jobs
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=install_context, initargs=(context,))

    def run(self, tasks: list[TrialTask], on_submit=None) -> Iterator[TrialResult]:
        """Yield results as they finish; ``on_submit(task)`` is called as each task is handed out."""
        pending = list(reversed(tasks))
        running: set[Future] = set()
        while pending or running:
            while pending and len(running) < 2 * self.jobs:
                task = pending.pop()
                if on_submit:
                    on_submit(task)
                running.add(self._pool.submit(run_trial, task))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)


def make_executor(kind: str, context: TrialContext, jobs: int, scheduler: str | None = None):
    if kind == "dask":
        from gbreg.execute_dask import DaskExecutor

        return DaskExecutor(context, jobs=jobs, scheduler=scheduler)
    if kind == "inline" or jobs <= 1:
        return InlineExecutor(context)
    return LocalExecutor(context, jobs)
