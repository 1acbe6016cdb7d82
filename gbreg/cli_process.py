"""What ``gbreg run`` and ``gbreg reproduce`` do to their own process, and only there: the library
(:mod:`gbreg.run.control`) leaves the process alone.

- Ctrl-C and SIGTERM stop a study, and the request is remembered. A KeyboardInterrupt raised while a
  library runs a Python callback (XGBoost's data iterator is called through ctypes) is swallowed there,
  and the library then fails with an unrelated error; the remembered request turns that into a clean
  stop at the next check instead of a bogus FAILED trial and a study that carries on.
- MLflow's HTTP client tries each request once, with a 30 s timeout (:func:`one_try_per_request`): how
  long a driver waits for a tracking server that is away is gbreg's to decide (``server_wait_seconds``).
- The garbage collector is kept off the objects that live as long as the study. A full collection scans
  every object the process holds; while MLflow, SQLAlchemy, pandas and scikit-learn are imported the heap
  grows fast and full collections recur, and during the sweep they scan it all again, taking CPU from the
  workers' cores. So collection is off while the study starts, and when the sweep starts everything alive
  is frozen (left out of collections) and collection resumes for the objects made after.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys

from gbreg.run.control import RunControl

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def one_try_per_request() -> None:
    """By default MLflow retries a failed HTTP request 7 times over about 4 minutes and waits 120 s for an
    answer, under gbreg's own wait for the server (:class:`gbreg.tracking.server_client.ServerClient`), which would
    multiply the two. Values the user set are kept."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


class ProcessRunControl(RunControl):
    """Use as a context around ``run_study(..., control=...)``; everything is restored on exit."""

    def __init__(self):
        self.requested = False
        self._previous_handlers: dict = {}
        self._previous_hook = None

    def __enter__(self) -> ProcessRunControl:
        self._collector_was_enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc_info) -> None:
        self.sweep_ends()
        gc.unfreeze()
        if self._collector_was_enabled:
            gc.enable()

    def sweep_starts(self) -> None:
        gc.freeze()
        if self._collector_was_enabled:
            gc.enable()
        self._previous_handlers = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        self._previous_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable

    def sweep_ends(self) -> None:
        if self.requested:  # half-built objects caught in reference cycles are freed now, under the hook
            gc.collect()
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers = {}
        if self._previous_hook is not None:
            sys.unraisablehook = self._previous_hook
            self._previous_hook = None

    def shielded(self):
        """A second Ctrl-C (or SIGTERM) is ignored while the stopped study's runs are marked KILLED."""
        return _signals_ignored()

    def _handle(self, signum, frame):
        self.requested = True
        raise KeyboardInterrupt

    def _unraisable(self, unraisable) -> None:
        """The swallowed KeyboardInterrupt would print "Exception ignored ..." and a traceback: it is
        handled. So would an object the interrupt left half-built when it is freed (XGBoost's data
        iterator fails in ``__del__`` then): noise once a stop was requested."""
        if not (isinstance(unraisable.exc_value, KeyboardInterrupt) or self.requested):
            self._previous_hook(unraisable)


@contextlib.contextmanager
def stop_signals_interrupt():
    """While ``gbreg ui`` / ``gbreg server`` serve: Ctrl-C and SIGTERM raise KeyboardInterrupt, so the MLflow
    server they started is stopped, not orphaned. Installed explicitly because a process started with
    SIGINT ignored (a background job of a script, a test runner launched that way) would otherwise never
    see the interrupt that ``kill -INT`` sends."""
    previous = {sig: signal.signal(sig, _raise_keyboard_interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_ignored():
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
