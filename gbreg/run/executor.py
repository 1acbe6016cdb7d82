"""The one interface the study's loop drives, whatever runs the trials (this process, local worker
processes, a Dask cluster), and the machine facts executors share.

The loop hands out trials with :meth:`TrialExecutor.run` and logs each result as it comes back; side work
(the library check, the study's figures) goes through :meth:`TrialExecutor.call`. An executor with idle
workers before the store is open may start trials early (:meth:`TrialExecutor.submit_ahead`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future

from gbreg.models.trial import TrialResult, TrialTask


class TrialExecutor:
    """Runs trials and side work. ``jobs``: trials at once; ``threads``: threads per training."""

    name = "executor"
    jobs: int = 1
    threads: int = 1

    def run(self, tasks: list[TrialTask], on_submit: Callable | None = None,
            on_worker_died: Callable | None = None) -> Iterator[TrialResult]:
        """Yield each task's result as it finishes; ``on_submit(task)`` once per task as it is handed out,
        ``on_worker_died(tasks)`` when a dead worker took trials down (executors that retry them)."""
        raise NotImplementedError

    def call(self, function: Callable, argument) -> Future:
        """Run ``function(argument)`` as side work. Here: at once, in this process; executors with
        workers of their own run it there."""
        future: Future = Future()
        try:
            future.set_result(function(argument))
        except Exception as exc:  # noqa: BLE001 - delivered through the future, as a worker's would be
            future.set_exception(exc)
        return future

    def provide(self, context) -> None:
        """Run the trials handed out from now on with ``context`` (a :class:`gbreg.models.trial.TrialContext`:
        the data set, its splits, the threads per training)."""
        raise NotImplementedError

    def submit_ahead(self, tasks: list[TrialTask]) -> None:
        """Start the first tasks before the study's store is open; :meth:`run` adopts those it is given.
        Only an executor with workers already started does anything here."""

    def close(self, cancel: bool = False) -> None:
        """Stop the workers (``cancel``: at once, abandoning what runs)."""
