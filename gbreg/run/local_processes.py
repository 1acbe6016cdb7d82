"""Executors: run trial tasks and yield results as they finish. The main process logs them.

- ``inline``: in this process (``--jobs 1``): no spawn or import cost.
- ``local``: spawned worker processes (never forked: forking after XGBoost/LightGBM started their
  OpenMP threads deadlocks), each given the data set once through its initializer.
- ``dask``: tasks on a Dask ``distributed`` cluster (see :mod:`gbreg.run.dask_cluster`).

All three are :class:`gbreg.run.executor.TrialExecutor` objects: the study's loop is written once.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from gbreg.machine import available_cores, threads_per_job
from gbreg.models.trial import (
    TrialContext,
    TrialResult,
    TrialTask,
    install_context,
    run_trial,
)
from gbreg.run.dask_cluster import DaskExecutor
from gbreg.run.executor import TrialExecutor
from gbreg.run.worker_processes import WorkerProcesses, mark_trial


class InlineExecutor(TrialExecutor):
    name = "inline"

    def __init__(self, context: TrialContext):
        self.provide(context)

    def provide(self, context: TrialContext) -> None:
        install_context(context)
        self.threads = context.threads

    def run(self, tasks: list[TrialTask], on_submit=None, on_worker_died=None) -> Iterator[TrialResult]:
        for task in tasks:
            if on_submit:
                on_submit(task)
            yield run_trial(task)


WORKER_DIED = ("WorkerDied: a worker process died (killed, or out of memory) while this trial was running, "
               "twice: it was run again once on a fresh worker")


# How often the loop looks for a worker that died without the pool noticing (it then waits forever)
WORKER_CHECK_SECONDS = 1.0

AHEAD_PER_JOB = 32  # trials started per worker before the store is open (LocalExecutor.submit_ahead)


class LocalExecutor(TrialExecutor):
    """A pool of spawned processes (:class:`gbreg.run.worker_processes.WorkerProcesses`); hands out at
    most ``2 x jobs`` tasks at a time, besides those started ahead of the store (:meth:`submit_ahead`).
    Tasks waiting in the pool are cancelled at once on Ctrl-C.

    A worker that dies (killed, out of memory) breaks the whole pool: the pool is restarted and every
    trial that was in flight is run again. Only a trial a worker had started uses up an attempt (the
    workers mark the trial they start); one started at two deaths is recorded as failed and the study
    goes on. A worker that dies while it sends a result stalls the pool instead of breaking it; the
    executor notices (it looks every ``WORKER_CHECK_SECONDS`` while nothing completes) and does the same.
    """

    name = "local"
    max_attempts = 2

    def __init__(self, context: TrialContext | None, jobs: int):
        """Without ``context`` the workers start before the data set is loaded; :meth:`provide` it before
        the first trial."""
        self.jobs = jobs
        self._workers = WorkerProcesses(jobs)
        if context is not None:
            self.provide(context)
        self._ahead: dict[str, tuple[TrialTask, Future]] = {}

    @property
    def _pool(self) -> ProcessPoolExecutor:
        return self._workers.pool

    @property
    def _context_path(self) -> str:
        return self._workers.context_path

    def provide(self, context: TrialContext) -> None:
        """The data set and splits the trials run on; each worker reads them at its first trial."""
        import pickle

        with open(self._context_path, "wb") as handle:
            pickle.dump(context, handle, protocol=pickle.HIGHEST_PROTOCOL)
        self.threads = context.threads

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
                self._ahead[task.trial_key] = (task, self._pool.submit(run_trial_ahead, task))
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
            unsent = self._hand_out(pending, running, attempts, announce)
            broken, stalled = [], False
            if not unsent:
                done, _ = wait(running, timeout=WORKER_CHECK_SECONDS, return_when=FIRST_COMPLETED)
                stalled = not done and self._workers.stalled_by_dead_worker()
                for future in done:
                    task = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken.append(task)
                        continue
                    announce(task)
                    yield result
            if unsent or broken or stalled:
                for future in list(running):  # finished before the worker died: keep
                    if future.done() and not future.cancelled() and future.exception() is None:
                        announce(running.pop(future))
                        yield future.result()
                tried = [*broken, *running.values()]  # their attempt was counted when they were submitted
                running.clear()
                started = self._workers.trials_in_workers()
                for task in tried:  # the pool stops every trial in flight; those not yet started lose no attempt
                    if task.trial_key not in started:
                        attempts[task.trial_key] -= 1
                lost = [*unsent, *tried]
                self._restart_pool(stalled)
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
                future = self._pool.submit(run_marked_trial, task)
            except BrokenProcessPool:
                return [task]
            attempts[task.trial_key] += 1
            running[future] = task
        return []

    def _restart_pool(self, stalled: bool = False) -> None:
        self._workers.restart(stalled)

    def close(self, cancel: bool = False) -> None:
        self._workers.close(cancel)


def uses_local_pool(kind: str, jobs: int) -> bool:
    """Whether ``kind`` with ``jobs`` runs on spawned local workers (one job runs inline)."""
    return kind == "local" and jobs > 1


def start_local_pool(jobs: int) -> LocalExecutor:
    """Spawn the local workers now, before the data set exists: they import the libraries meanwhile and
    read the context (given later by :func:`make_executor`) at their first trial."""
    return LocalExecutor(None, jobs)


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


def run_trial_ahead(task: TrialTask) -> TrialResult:
    """A trial started before the library check has answered (:meth:`LocalExecutor.submit_ahead`). With a
    parameter the check is about to refuse, LightGBM would print its native ``[Fatal]`` line here before
    the check's clean error; the trial's own error, if it has one, is in its result anyway."""
    from gbreg.run.param_check import native_output_silenced

    mark_trial(task.trial_key)
    with native_output_silenced():
        return run_trial(task)


def run_marked_trial(task: TrialTask) -> TrialResult:
    """A trial on a pool's worker, marked as started first (see :meth:`WorkerProcesses.trials_in_workers`)."""
    mark_trial(task.trial_key)
    return run_trial(task)
