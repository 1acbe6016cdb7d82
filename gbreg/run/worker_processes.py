"""The spawned worker processes of a local pool, and how each starts.

The workers import XGBoost, LightGBM and scikit-learn (a second or more each) on the other cores while
the main process loads the data and imports MLflow. Workers are spawned, never forked: forking after
XGBoost or LightGBM started their OpenMP threads deadlocks.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import shutil
import signal
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CONTEXT_FILE_PREFIX = "gbreg-context-"  # + the main process's pid: a killed study's file is found and removed
MARKERS_PREFIX = "gbreg-workers-"  # + the main process's pid: the folder of the workers' trial markers
MARKER_WIDTH = 64  # a trial key (16 hex digits) padded, so each write replaces the last whole


class WorkerProcesses:
    """``jobs`` spawned processes, started at once, and the file their trial context will come through.

    The context (data set and splits) is written later (:meth:`gbreg.run.local_processes.LocalExecutor.provide`)
    and read by each worker at its first trial, not sent through the spawn pipe: the main process would
    wait on that pipe until each child had started Python and imported (about 0.4 s a worker), and the
    workers can start before the data set is loaded. A pool broken by a worker's death is replaced by
    :meth:`restart`; :meth:`close` may be called more than once.
    """

    def __init__(self, jobs: int):
        import tempfile

        from gbreg.run.main_guard import check_main_guard

        check_main_guard()  # before anything is spawned or written
        self.jobs = jobs
        _remove_dead_context_files()
        handle, self.context_path = tempfile.mkstemp(prefix=f"{CONTEXT_FILE_PREFIX}{os.getpid()}-",
                                                     suffix=".pickle")
        os.close(handle)
        self.markers = tempfile.mkdtemp(prefix=f"{MARKERS_PREFIX}{os.getpid()}-")  # a file per worker: its trial
        self._dead_seen = 0
        self.pool = self._new_pool()
        for _ in range(jobs):  # a pool spawns a process only for a task: start them all now
            self.pool.submit(os.getpid)

    def _new_pool(self) -> ProcessPoolExecutor:
        return _InterruptFreePool(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_start_worker, initargs=(self.context_path, self.markers))

    def _processes(self) -> dict:
        """pid -> process of the pool's workers, as the pool holds them (a copy: the pool changes it)."""
        return dict(getattr(self.pool, "_processes", None) or {})

    def trials_in_workers(self) -> set[str]:
        """The trial keys the pool's workers were running (each writes its trial's key before starting it):
        when a worker dies, CPython's pool stops every trial in flight, and only these had started."""
        keys = set()
        for pid in self._processes():
            with contextlib.suppress(OSError):
                keys.add(Path(self.markers, str(pid)).read_text().strip())
        return keys - {""}

    def stalled_by_dead_worker(self) -> bool:
        """Whether a worker is dead and the pool has not noticed, at two looks in a row. A worker killed
        while it sent a result leaves the pool's reader waiting for the rest of the message and the other
        workers waiting for the queue's lock: the pool never breaks and nothing completes."""
        processes = self._processes().values()
        dead = not getattr(self.pool, "_broken", False) and any(p.exitcode is not None for p in processes)
        self._dead_seen = self._dead_seen + 1 if dead else 0
        return self._dead_seen >= 2

    def restart(self, stalled: bool = False) -> None:
        """Replace a pool a dead worker broke; its other workers are already being stopped by it. A
        ``stalled`` pool (see :meth:`stalled_by_dead_worker`) is stopped here: its workers are killed and this
        process's end of the result pipe is closed, so the pool's reader gets end-of-file instead of waiting
        for ever (the interpreter would wait for that thread at exit)."""
        if stalled:
            for process in self._processes().values():
                process.kill()
            writer = getattr(getattr(self.pool, "_result_queue", None), "_writer", None)
            if writer is not None:
                writer.close()
        self._dead_seen = 0
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for process in self._processes().values():
                process.terminate()
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)
        with contextlib.suppress(OSError):
            os.unlink(self.context_path)
        shutil.rmtree(self.markers, ignore_errors=True)


class _InterruptFreePool(ProcessPoolExecutor):
    """A pool whose workers never see Ctrl-C, not even while Python starts in them.

    A terminal's Ctrl-C reaches every process of the foreground group. Only the main process acts on it (it
    stops the workers itself); a worker that got it while importing, before its initializer could ignore
    it, printed a KeyboardInterrupt traceback. So each worker is spawned with SIGINT blocked (a blocked
    signal stays blocked across fork and exec) and its initializer ignores it before unblocking it, which
    discards one already pending. In the main process the signal waits the few milliseconds of the spawn
    and is then delivered as usual. ``_spawn_process`` is where CPython's pool starts each process.
    """

    def _spawn_process(self):
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            super()._spawn_process()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


_marker: int | None = None  # this worker's marker file (a descriptor), when it is a pool's worker


def mark_trial(trial_key: str) -> None:
    """Written by a worker before it starts a trial: what :meth:`WorkerProcesses.trials_in_workers` reads."""
    if _marker is not None:
        os.pwrite(_marker, trial_key.encode().ljust(MARKER_WIDTH), 0)


def _start_worker(context_path: str, markers: str) -> None:
    """Worker initializer: only the main process handles Ctrl-C (it stops the workers itself), and the
    libraries are imported now, while the main process loads the data and opens the tracking store."""
    import atexit
    import gc

    from gbreg.models.boosters import declarations
    from gbreg.models.trial import install_context_file
    from gbreg.process_tree import die_with_parent
    from gbreg.run.control import own_process_output

    global _marker

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by _InterruptFreePool's spawn
    _marker = os.open(os.path.join(markers, str(os.getpid())), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    own_process_output()
    die_with_parent(signal.SIGKILL)  # nothing of a worker is worth keeping once the study's process is gone
    # A spawned child ends with sys.exit, and tearing down an interpreter that holds XGBoost, LightGBM
    # and matplotlib takes about 0.3 s, which the main process waits for at close. Nothing is left to
    # flush by then (results went through the pipe, multiprocessing's own exit hook has run), so the
    # worker leaves at once: this runs first among the exit hooks.
    atexit.register(os._exit, 0)
    install_context_file(context_path)
    # The modules live as long as the worker: no full collection while they are imported (each would
    # scan the growing heap again), and none scans them afterwards.
    gc.disable()
    for library in declarations():
        importlib.import_module(library.module)

    gc.freeze()
    gc.enable()


def _remove_dead_context_files() -> None:
    """Delete context files and marker folders left in the temp folder by gbreg processes that were killed
    (SIGKILL)."""
    import tempfile

    from gbreg.tracking.processes import gbreg_process_alive

    folder = Path(tempfile.gettempdir())
    for prefix, pattern in ((CONTEXT_FILE_PREFIX, "*.pickle"), (MARKERS_PREFIX, "*")):
        for path in folder.glob(f"{prefix}{pattern}"):
            pid = path.name.removeprefix(prefix).split("-", 1)[0]
            if pid.isdigit() and not gbreg_process_alive(int(pid), left_at=_modified_at(path)):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        path.unlink()


def _modified_at(path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
