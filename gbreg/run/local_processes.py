"""Executors: run trial tasks and yield results as they finish. The main process logs them.

- ``inline``: in this process (``--jobs 1``): no spawn or import cost.
- ``local``: spawned worker processes (never forked: forking after XGBoost/LightGBM started their
  OpenMP threads deadlocks), each given the data set once through its initializer.
- ``dask``: tasks on a Dask ``distributed`` cluster (see :mod:`gbreg.run.dask_cluster`).

All three are :class:`gbreg.run.executor.TrialExecutor` objects: the study's loop is written once.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from gbreg.machine import available_cores, threads_per_job
from gbreg.models.boosters import declarations
from gbreg.models.trial import (
    TrialContext,
    TrialResult,
    TrialTask,
    install_context,
    install_context_file,
    run_trial,
)
from gbreg.run.control import own_process_output
from gbreg.run.dask_cluster import DaskExecutor
from gbreg.run.executor import TrialExecutor
from gbreg.tracking.processes import gbreg_process_alive


class InlineExecutor(TrialExecutor):
    name = "inline"

    def __init__(self, context: TrialContext):
        install_context(context)
        self.threads = context.threads

    def run(self, tasks: list[TrialTask], on_submit=None, on_worker_died=None) -> Iterator[TrialResult]:
        for task in tasks:
            if on_submit:
                on_submit(task)
            yield run_trial(task)


WORKER_DIED = ("WorkerDied: the worker process running this trial died (killed, or out of memory); "
               "it was retried once on a fresh worker")


def _start_worker(context_path: str) -> None:
    """Worker initializer: only the main process handles Ctrl-C (it stops the workers itself), and the
    libraries are imported now, while the main process loads the data and opens the tracking store.

    The context comes through a file, read at the first trial, not through the spawn pipe: the main
    process would wait on that pipe until each child had started Python and imported (about 0.4 s a
    worker), and the workers can start before the data set is loaded.
    """
    import atexit
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    own_process_output()
    _die_with_parent()
    # A spawned child ends with sys.exit, and tearing down an interpreter that holds XGBoost, LightGBM
    # and matplotlib takes about 0.3 s, which the main process waits for at close. Nothing is left to
    # flush by then (results went through the pipe, multiprocessing's own exit hook has run), so the
    # worker leaves at once: this runs first among the exit hooks.
    atexit.register(os._exit, 0)
    install_context_file(context_path)
    import gc

    # The modules live as long as the worker: no full collection while they are imported (each would
    # scan the growing heap again), and none scans them afterwards.
    gc.disable()
    for library in declarations():
        importlib.import_module(library.module)

    gc.freeze()
    gc.enable()


def _die_with_parent() -> None:
    """Linux: a worker gets SIGKILL when the main process dies (even by SIGKILL), instead of lingering."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux/glibc: workers exit when their pipes close
        pass


AHEAD_PER_JOB = 32  # trials started per worker before the store is open (LocalExecutor.submit_ahead)
CONTEXT_FILE_PREFIX = "gbreg-context-"  # + the main process's pid: a killed study's file is found and removed


def _remove_dead_context_files() -> None:
    """Delete context files left in the temp folder by gbreg processes that were killed (SIGKILL)."""
    import tempfile
    from pathlib import Path


    for path in Path(tempfile.gettempdir()).glob(f"{CONTEXT_FILE_PREFIX}*.pickle"):
        pid = path.name.removeprefix(CONTEXT_FILE_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not gbreg_process_alive(int(pid), left_at=_modified_at(path)):
            with contextlib.suppress(OSError):
                path.unlink()


def _modified_at(path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


class LocalExecutor(TrialExecutor):
    """A pool of spawned processes; keeps at most ``2 x jobs`` tasks in flight so Ctrl-C stops quickly.

    A worker that dies (killed, out of memory) breaks the whole pool: the pool is restarted and each
    trial that was in flight is retried once; a trial in flight during a second death is recorded as
    failed and the study goes on.
    """

    name = "local"
    max_attempts = 2

    def __init__(self, context: TrialContext | None, jobs: int):
        """Without ``context`` the workers can start (:meth:`warm_up`) before the data set is loaded;
        :meth:`provide` it before the first trial."""
        import tempfile

        self.jobs = jobs
        _remove_dead_context_files()
        handle, self._context_path = tempfile.mkstemp(prefix=f"{CONTEXT_FILE_PREFIX}{os.getpid()}-",
                                                      suffix=".pickle")
        os.close(handle)
        if context is not None:
            self.provide(context)
        self._ahead: dict[str, tuple[TrialTask, Future]] = {}
        self._pool = self._new_pool()

    def provide(self, context: TrialContext) -> None:
        """The data set and splits the trials run on; each worker reads them at its first trial."""
        import pickle

        with open(self._context_path, "wb") as handle:
            pickle.dump(context, handle, protocol=pickle.HIGHEST_PROTOCOL)
        self.threads = context.threads

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(self._context_path,))

    def warm_up(self) -> None:
        """Start the workers now (they import the libraries) instead of at the first trial."""
        for _ in range(self.jobs):
            self._pool.submit(os.getpid)

    def call(self, function, argument) -> Future:
        """Run ``function(argument)`` on a worker (ahead of any trial submitted after it). A pool broken by
        a worker that died since the last call is replaced first."""
        try:
            return self._pool.submit(function, argument)
        except BrokenProcessPool:
            self._restart_pool()
            return self._pool.submit(function, argument)

    def submit_ahead(self, tasks: list[TrialTask]) -> None:
        """Start the first tasks now, before the store is open; :meth:`run` adopts the ones it is given
        and drops the others. For plans none of whose trials can be done yet (see the runner).

        Up to ``AHEAD_PER_JOB x jobs`` tasks: opening the store and starting the parent run take the
        main process about half a second, which the workers would otherwise spend idle once short
        trials (tens of milliseconds) ran out. A task waiting in the pool is cancelled at once on
        Ctrl-C, and none gets its MLflow run before it starts (see :meth:`run`)."""
        for task in tasks[: AHEAD_PER_JOB * self.jobs]:
            try:
                self._ahead[task.trial_key] = (task, self._pool.submit(run_trial, task))
            except BrokenProcessPool:  # a worker died already: run() submits these again
                break

    def run(self, tasks: list[TrialTask], on_submit=None, on_worker_died=None) -> Iterator[TrialResult]:
        """Yield results as they finish; ``on_submit(task)`` is called once per task as it is handed out,
        ``on_worker_died(tasks)`` each time a dead worker broke the pool, with the trials it took down.

        A worker can die at any moment: while a trial is handed out (``submit`` raises), while results
        are awaited (their futures raise), or while the replacement pool starts. Each way ends here:
        every trial that was in flight is retried on a new pool, once; a trial in flight during a second
        death comes back as a failed result.
        """
        attempts: Counter[str] = Counter()
        announced: set[str] = set()
        running: dict[Future, TrialTask] = {}
        wanted = {task.trial_key for task in tasks}
        for key, (task, future) in self._ahead.items():
            if key in wanted:
                running[future] = task
                attempts[key] += 1
            else:
                future.cancel()
        self._ahead.clear()
        pending = deque(task for task in tasks if attempts[task.trial_key] == 0)

        def announce(task: TrialTask) -> None:
            if task.trial_key not in announced:
                announced.add(task.trial_key)
                if on_submit:
                    on_submit(task)

        while pending or running:
            for future, task in running.items():  # a task started ahead is announced once it runs
                if future.running() or future.done():
                    announce(task)
            broken = self._hand_out(pending, running, attempts, announce)
            if not broken:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken.append(task)
                        continue
                    announce(task)
                    yield result
            if broken:
                for future in list(running):  # finished before the worker died: keep
                    if future.done() and not future.cancelled() and future.exception() is None:
                        announce(running.pop(future))
                        yield future.result()
                lost = [*broken, *running.values()]
                running.clear()
                self._restart_pool()
                if on_worker_died:
                    on_worker_died(lost)
                for task in reversed(lost):
                    if attempts[task.trial_key] >= self.max_attempts:
                        announce(task)
                        yield TrialResult(task.trial_key, error=WORKER_DIED)
                    else:
                        pending.appendleft(task)

    def _hand_out(self, pending: deque, running: dict, attempts: Counter, announce) -> list[TrialTask]:
        """Submit pending tasks up to ``2 x jobs`` in flight, each ``announce``d first; returns ``[task]`` if
        the pool turned out broken when it was handed out (the task never started, so the attempt is not
        counted)."""
        while pending and len(running) < 2 * self.jobs:
            task = pending.popleft()
            announce(task)
            try:
                future = self._pool.submit(run_trial, task)
            except BrokenProcessPool:
                return [task]
            attempts[task.trial_key] += 1
            running[future] = task
        return []

    def _restart_pool(self) -> None:
        """Replace a pool a dead worker broke; its other workers are already being stopped by it."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self, cancel: bool = False) -> None:
        if cancel:
            processes = getattr(self._pool, "_processes", None) or {}
            for process in list(processes.values()):
                process.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        with contextlib.suppress(OSError):
            os.unlink(self._context_path)


def uses_local_pool(kind: str, jobs: int) -> bool:
    """Whether ``kind`` with ``jobs`` runs on spawned local workers (one job runs inline)."""
    return kind == "local" and jobs > 1


def start_local_pool(jobs: int) -> LocalExecutor:
    """Spawn the local workers now, before the data set exists: they import the libraries meanwhile and
    read the context (given later by :func:`make_executor`) at their first trial."""
    pool = LocalExecutor(None, jobs)
    pool.warm_up()
    return pool


def make_executor(kind: str, context: TrialContext, jobs: int, scheduler: str | None = None,
                  threads: int | None = None, pool: LocalExecutor | None = None):
    """The executor for ``kind`` and ``jobs``, given the context. ``pool`` is a local pool already started
    by :func:`start_local_pool` (one is started here otherwise). ``threads`` (fixed by ``gbreg
    reproduce``) is kept by Dask, which otherwise sizes trainings to the cluster's cores; local executors
    already have it in ``context.threads``."""
    if kind == "dask":
        return DaskExecutor(context, jobs=jobs, scheduler=scheduler, threads=threads)
    if not uses_local_pool(kind, jobs):
        return InlineExecutor(context)
    pool = pool or start_local_pool(jobs)
    pool.provide(context)
    return pool


__all__ = ["InlineExecutor", "LocalExecutor", "TrialExecutor", "available_cores", "make_executor",
           "start_local_pool", "threads_per_job", "uses_local_pool"]
