"""Writes that the study's loop hands off: one thread commits them, everything waiting in one transaction.

A SQLite commit waits for the disk (two fsyncs in MLflow's default journal mode), about as long as a short
trial trains. Made by the loop itself, once to open each trial's run and once to close it, those waits
kept the loop from handing out trials: on 2 cores the workers idled while it waited. Here the loop only
queues a trial's rows; a writer thread commits all the queued ones together, so the loop never waits on
the disk and a study of short trials makes far fewer commits.

What stays true: writes reach the store in the order they were queued, and a write is never lost
silently. A queued write is in the store once :meth:`GroupCommitWriter.settle` has returned; an error
of the writer is raised in the caller's thread by the next ``submit`` or ``settle``. A process killed
with writes still queued loses them as if it had been killed before making them: the trials they
belong to are not counted as done, and the next ``gbreg run`` runs them again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")

_STOP = object()


# How long the writer waits, after a write is queued, for more to share its commit. Each commit costs CPU
# beyond its rows (SQLite's journal, SQLAlchemy's transaction), taken from the workers on a machine whose
# cores they fill, and short trials finish many times a second. A settle or stop ends the wait at once,
# so nothing that reads the store waits for it; a process killed meanwhile loses at most this much.
LINGER_SECONDS = 0.2


class GroupCommitWriter(Generic[Item]):
    """Calls ``write_batch(items)`` on its own thread with every item queued since its last call, up to
    ``linger`` seconds after the first of them was queued."""

    def __init__(self, write_batch: Callable[[list[Item]], None], name: str = "gbreg-store-writer",
                 linger: float = LINGER_SECONDS):
        self._write_batch = write_batch
        self._name = name
        self._linger = linger
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, item: Item) -> None:
        """Queue ``item``; raises the error a previous batch ended with, if any (once)."""
        self._raise_error()
        if self._thread is None:  # started on first use, so a tracker that writes nothing has no thread
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()
        self._queue.put(item)

    def settle(self) -> None:
        """Return once everything queued before is in the store; raise the writer's error, if any (once)."""
        if self._thread is not None:
            written = threading.Event()
            self._queue.put(written)
            written.wait()
        self._raise_error()

    def stop(self) -> None:
        """Settle, then end the thread (a later ``submit`` starts a new one)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batch, settled = [], []
            item = self._queue.get()
            deadline = time.monotonic() + self._linger
            while True:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, threading.Event):
                    settled.append(item)
                else:
                    batch.append(item)
                # someone waits for the store (settle, stop): write what is queued now
                wait = 0.0 if stopping or settled else deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self._write_batch(batch)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                    self._error = self._error or exc
            for event in settled:  # only after the items queued before them are written
                event.set()
