"""The Dask executor: trials as tasks on a ``distributed`` cluster; the driver alone logs to MLflow.

Why this shape:

- A trial is :func:`gbreg.models.trial.run_trial` of a plain :class:`TrialTask` and the study's
  :class:`TrialContext`. The context (data set and splits) is scattered once with ``broadcast=True``,
  so every worker holds it before the first trial and a task ships only its few parameters; a
  restarted worker fetches it from a peer. ``run_trial`` caches prepared matrices per worker.
- Trainings use ``threads = cores of the host // threads of all workers on that host`` (the least
  over hosts): a worker runs one trial per thread, so this fills the machines without
  oversubscribing them. ``1`` for the usual ``dask worker --nthreads 1`` per core.
- A worker that dies mid-trial is the scheduler's business: it reschedules the trial on another
  worker until ``distributed.scheduler.allowed-failures`` workers died running it (``KilledWorker``).
  That trial then comes back as a failed :class:`TrialResult`; the study goes on and a later
  ``gbreg run`` resumes it like any failed trial.
- Without a scheduler address a ``LocalCluster`` of ``jobs`` single-threaded worker processes is
  started (spawned by the nannies, never forked after OpenMP started) and closed at the end.
- Workers must run the driver's versions of gbreg and the libraries: a mismatch is an error before
  the first trial, because the run's ``gbreg.version.*`` tags describe the driver.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version

from gbreg.errors import UserInputError
from gbreg.machine import available_cores
from gbreg.models.boosters import library_packages
from gbreg.models.trial import TrialContext, TrialResult, TrialTask, run_trial
from gbreg.run.executor import TrialExecutor
from gbreg.run.main_guard import check_main_guard

CONNECT_TIMEOUT_S = 10.0  # reaching the scheduler; a refused port fails after this
WAIT_FOR_WORKERS_S = 60.0  # a fresh cluster's workers may still be starting
# the cluster lost its last worker (and the data set with it): how long the study waits for one to join
# (a worker's machine rebooting, its nanny restarting it) before it stops
NO_WORKERS_WAIT_S = 120.0
WORKER_DEATHS_ALLOWED = 3  # LocalCluster: a trial is retried until this many more workers died running it
CONTEXT_RESUBMITS = 3  # a trial is resubmitted this often when every worker holding the data set died
IN_FLIGHT_PER_THREAD = 2  # tasks handed to the cluster per worker thread (keeps Ctrl-C and resume cheap)
TASK_KEY_PREFIX = "gbreg-trial"
MATCHED_PACKAGES = tuple(dict.fromkeys(("gbreg", *library_packages(), "scikit-learn", "numpy", "pandas")))

TrialFunction = Callable[[TrialTask, TrialContext], TrialResult]


class SchedulerError(UserInputError):
    """The Dask scheduler cannot be reached, has no workers, or its workers cannot run gbreg's trials."""


class DaskExecutor(TrialExecutor):
    """Run trials on a Dask cluster and yield their results in the driver as they complete.

    ``scheduler`` is an address (``tcp://host:8786``); ``None`` starts a ``LocalCluster`` with
    ``jobs`` workers. ``threads`` fixes the threads per training (``gbreg reproduce`` needs the
    original's); by default the cluster's cores decide (:func:`threads_per_trial`); ``self.threads``
    and ``self.jobs`` say what was chosen. ``trial_function`` is what workers call with
    ``(task, context)``: always :func:`run_trial` except in tests that need a worker to die.
    """

    name = "dask"

    def __init__(self, context: TrialContext, jobs: int = 1, scheduler: str | None = None, *,
                 threads: int | None = None, trial_function: TrialFunction = run_trial,
                 connect_timeout: float = CONNECT_TIMEOUT_S):
        self.scheduler = scheduler
        self.trial_function = trial_function
        self._cluster = None
        if scheduler is None:
            self._cluster, self._client = _start_local_cluster(jobs)
        else:
            self._client = _connect(scheduler, connect_timeout)
        self._pending: dict = {}  # future -> (task, context future it uses), handed out and not yet yielded
        self._context = None  # the scattered TrialContext (a future)
        self._cluster_threads, self._threads_asked_at = 1, -1e9
        self.context_shipments = 0  # scatters of the context: 1 unless every worker holding it died
        self._resubmits: dict[str, int] = {}  # trial key -> times resubmitted because the context was lost
        try:
            facts = _worker_facts(self._client, self.address)
            nthreads = self._client.nthreads()
            self.jobs = sum(nthreads.values())  # trials running at once, for the record
            self.threads = threads or threads_per_trial(facts, nthreads)
            self._context_value = dataclasses.replace(context, threads=self.threads)
            self._scatter_context()
        except BaseException:
            self.close()
            raise

    @property
    def address(self) -> str:
        return self.scheduler or self._client.scheduler.address

    def run(self, tasks: list[TrialTask], on_submit=None, on_worker_died=None) -> Iterator[TrialResult]:
        """Yield results as trials complete; ``on_submit(task)`` runs as each is handed to the cluster.
        Dead workers are the scheduler's to handle (``on_worker_died`` is not called)."""
        from distributed import as_completed

        waiting = list(reversed(tasks))
        completed = as_completed(loop=self._client.loop)
        self._submit_more(waiting, completed, on_submit)
        for future in completed:
            task, context = self._pending.pop(future)
            if self._resubmitted(future, context, task, completed):
                continue
            result = self._collect(future, task)
            if result is None:  # finished, but its result died with its worker before it was fetched
                if self._resubmit_lost(task, completed):
                    continue
                result = _lost_result(task, future, self.address)
            future.release()
            self._submit_more(waiting, completed, on_submit)
            yield result

    def _submit_more(self, waiting: list[TrialTask], completed, on_submit) -> None:
        """Keep about two trials per worker thread on the cluster: the scheduler balances them, and an
        interrupted study has few runs to mark KILLED."""
        capacity = IN_FLIGHT_PER_THREAD * self._worker_threads()
        while waiting and len(self._pending) < capacity:
            task = waiting.pop()
            if on_submit:
                on_submit(task)
            self._submit(task, completed)

    def _worker_threads(self) -> int:
        """Worker threads on the cluster now (workers come and go), asked at most once a second."""
        now = time.monotonic()
        if now - self._threads_asked_at > 1.0:
            self._cluster_threads = max(1, sum(self._client.nthreads().values()))
            self._threads_asked_at = now
        return self._cluster_threads

    def _submit(self, task: TrialTask, completed) -> None:
        key = f"{TASK_KEY_PREFIX}-{task.trial_key}-{uuid.uuid4().hex[:8]}"
        future = self._client.submit(self.trial_function, task, self._context, key=key, pure=False)
        self._pending[future] = (task, self._context)
        completed.add(future)

    def _resubmitted(self, future, context, task: TrialTask, completed) -> bool:
        """Every worker holding the context ``future`` used died before their replacements fetched it:
        the scheduler cancels the trial though nothing is wrong with it. Ship the context again (once
        for all such trials) and resubmit, a bounded number of times."""
        lost = future.status == "cancelled" and context.status != "finished" and self._client.status == "running"
        return lost and self._resubmit_lost(task, completed)

    def _scatter_context(self) -> None:
        """Ship the context to every worker now, not once per trial (counted: the tests check). With no
        worker left on the cluster (the data set went with the last one), wait up to ``NO_WORKERS_WAIT_S``
        for one to join, then stop with a :class:`SchedulerError` that says what to do (not Dask's bare
        "No valid workers found", after its 10 s)."""
        deadline, warned = time.monotonic() + NO_WORKERS_WAIT_S, False
        while True:
            if self.context_shipments and not self._client.nthreads():
                if not warned:
                    warned = True
                    logging.getLogger("gbreg").warning(
                        f"the Dask scheduler {self.address} has no worker left; waiting up to "
                        f"{NO_WORKERS_WAIT_S:.0f} s for one to join (start one with `dask worker {self.address}`)")
                self._wait_for_a_worker(deadline)
            try:
                self._context = self._client.scatter(self._context_value, broadcast=True, hash=False)
                break
            except TimeoutError as exc:  # no worker to ship it to: its last one went away meanwhile
                if not self.context_shipments or time.monotonic() >= deadline:
                    raise self._no_workers() from exc
        self.context_shipments += 1

    def _wait_for_a_worker(self, deadline: float) -> None:
        try:
            self._client.wait_for_workers(1, timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError as exc:
            raise self._no_workers() from exc
        except OSError as exc:  # the scheduler went away too
            raise self._lost_scheduler() from exc

    def _no_workers(self) -> SchedulerError:
        return SchedulerError(f"the Dask scheduler {self.address} has had no worker for {NO_WORKERS_WAIT_S:.0f} s "
                              f"(its last one went away, taking the data set with it); start workers with "
                              f"`dask worker {self.address}`")

    def provide(self, context: TrialContext) -> None:
        """Train the trials handed out from now on on ``context`` (the same data set; a resumed study's
        thread count is its parent's): shipped to every worker again, the previous one released."""
        self.threads = context.threads
        self._context_value = context
        previous = self._context
        self._scatter_context()
        if previous is not None:
            previous.release()

    def _lost_scheduler(self) -> SchedulerError:
        """The scheduler stopped answering mid-sweep. Not the client's status (while it tries to reconnect it
        says "connecting", though it had been connected): what happened and what to do. The resume command
        is the caller's to add (:func:`gbreg.run.sweep.study_stopped`)."""
        return SchedulerError(f"lost the Dask scheduler {self.address}: it stopped answering; start a scheduler "
                              f"there and its workers (`dask scheduler`, `dask worker {self.address}`)")

    def _resubmit_lost(self, task: TrialTask, completed) -> bool:
        """Run a trial again whose finished result was lost with its worker (bounded, as for a lost
        data set); ship the data set again first if no worker holds it any more."""
        if self._resubmits.get(task.trial_key, 0) >= CONTEXT_RESUBMITS or self._client.status != "running":
            return False
        self._resubmits[task.trial_key] = self._resubmits.get(task.trial_key, 0) + 1
        if self._context.status != "finished":
            self._scatter_context()
        self._submit(task, completed)
        return True

    def _collect(self, future, task: TrialTask) -> TrialResult | None:
        """The trial's result; a trial that killed too many workers, or could not run, is a failed one.
        None: the trial finished but its result was lost with its worker before it could be fetched."""
        if future.status == "finished":
            from concurrent.futures import CancelledError

            try:
                return future.result()
            except CancelledError:  # distributed's FutureCancelledError: "already forgotten"
                return None
            except OSError as exc:  # distributed's CommClosedError: the result's fetch lost the scheduler
                raise self._lost_scheduler() from exc
        if future.status == "cancelled" and self._client.status != "running":
            raise self._lost_scheduler()
        exception = future.exception() if future.status == "error" else None
        if exception is not None:
            error = f"{type(exception).__name__}: {_first_line(exception)}"
        elif future.status == "cancelled":  # its data set was lost with the workers, resubmits used up
            error = (f"KilledWorker: the workers running this trial kept dying and took its data set with "
                     f"them (Dask task {future.key}, resubmitted {self._resubmits.get(task.trial_key, 0)} times)")
        else:
            error = f"Dask task {future.key} ended as {future.status!r}"
        return TrialResult(task.trial_key, error=error, error_detail=f"{error}\nscheduler: {self.address}")

    def close(self, cancel: bool = False) -> None:
        """Disconnect; stop the ``LocalCluster`` this executor started. Idempotent.

        ``cancel`` drops the trials still on the cluster (a remote worker finishes the one it is
        running, a local worker process is stopped with the cluster)."""
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        if client is not None:
            if cancel and self._pending:
                with contextlib.suppress(Exception):  # the scheduler may be gone already
                    client.cancel(list(self._pending), force=True)
            self._pending.clear()
            if self._context is not None:  # released first, so closing workers loses no data it holds
                self._context.release()
                self._context = None
            client.close()
        if cluster is not None:
            cluster.close()


def _lost_result(task: TrialTask, future, address: str) -> TrialResult:
    error = (f"KilledWorker: the result of Dask task {future.key} was lost with its worker, again after "
             f"{CONTEXT_RESUBMITS} reruns")
    return TrialResult(task.trial_key, error=error, error_detail=f"{error}\nscheduler: {address}")


def threads_per_trial(facts: dict[str, dict], nthreads: dict[str, int]) -> int:
    """Threads one training may use: per host, its cores shared by every worker thread on it; the least
    over hosts, so no machine is oversubscribed. ``facts``/``nthreads`` are keyed by worker address."""
    host_cores: dict[str, int] = {}
    host_threads: dict[str, int] = {}
    for address, worker in facts.items():
        host = worker["host"]
        host_cores[host] = worker["cores"]
        host_threads[host] = host_threads.get(host, 0) + nthreads.get(address, 1)
    return max(1, min((host_cores[h] // max(1, host_threads[h]) for h in host_cores), default=1))


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a trial's numbers, from metadata (nothing is imported)."""
    found = {}
    for name in MATCHED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def worker_facts() -> dict:
    """Run on each worker: where it is, how many cores it sees, what it has installed."""
    return {"host": socket.gethostname(), "cores": available_cores(), "versions": package_versions()}


# ---------------------------------------------------------------------- cluster set-up


def _start_local_cluster(jobs: int):
    """A ``LocalCluster`` of ``jobs`` single-threaded, nanny-restarted worker processes, and its client."""
    import dask
    from distributed import Client, LocalCluster

    check_main_guard()  # its worker processes are spawned too
    with dask.config.set({"distributed.scheduler.allowed-failures": WORKER_DEATHS_ALLOWED,
                          "distributed.worker.multiprocessing-method": "spawn"}):
        cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    try:
        client = Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return cluster, client


def _connect(address: str, timeout: float):
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(f"Dask scheduler {address} cannot be reached ({_first_line(exc)}); start it with "
                             "`dask scheduler`, or fix --scheduler / executor.scheduler in mlflow.yaml") from exc


def _worker_facts(client, address: str) -> dict[str, dict]:
    """Wait for a worker, then check every worker can import gbreg and runs the driver's versions."""
    try:
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
    except TimeoutError as exc:
        raise SchedulerError(f"Dask scheduler {address}: no worker joined within {WAIT_FOR_WORKERS_S:.0f} s; "
                             "start some with `dask worker " + address + "`") from exc
    try:
        facts = client.run(worker_facts)
    except Exception as exc:
        raise SchedulerError(f"Dask workers of {address} cannot run gbreg ({type(exc).__name__}: "
                             f"{_first_line(exc)}); install the driver's gbreg on every worker") from exc
    expected = package_versions()
    for worker, found in sorted(facts.items()):
        differences = [f"{name} {found['versions'].get(name)} (driver {wanted})"
                       for name, wanted in expected.items() if found["versions"].get(name) != wanted]
        if differences:
            raise SchedulerError(f"Dask worker {worker} ({found['host']}) runs {', '.join(differences)}; "
                                 "workers must match the driver so results are reproducible")
    return facts


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


__all__ = ["DaskExecutor", "SchedulerError", "threads_per_trial", "worker_facts"]
