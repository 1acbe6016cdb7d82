"""One rich console for tables: the terminal's width on a terminal, wide plain text when piped."""

from __future__ import annotations

import logging
import os
import sys


def make_console(stderr: bool = False, min_width: int | None = None):
    """A console for gbreg's tables: a terminal's width, else 220 columns without colour; ``min_width``
    widens it for a table that must not be squeezed (``gbreg results --all``: rich would shrink some
    columns to nothing rather than print past the width)."""
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=220, no_color=True)
    if min_width and min_width > console.width:
        console = Console(stderr=stderr, width=min_width, no_color=console.no_color)
    return console


def quiet_libraries() -> None:
    """MLflow's INFO lines, artifact progress bars and, over HTTP, its "View run / View experiment" lines at
    the end of every run are noise in a CLI that prints its own progress (and ``-q`` means no output)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # also spares a get_run per run
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow configures its loggers
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # a Dask client that loses its scheduler logs each failed reconnection with tracebacks; gbreg then
    # reports the lost scheduler in one line. A filter, since importing distributed resets logger levels.
    # MLflow's SQL store logs a failing SQLite write (a read-only or full store) with a 60-line traceback
    # before it raises the error, which gbreg then reports in one line saying how to resume
    for name in ("distributed.client", "mlflow.store.db.utils"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _OnlyCritical) for f in log.filters):
            log.addFilter(_OnlyCritical())


def quiet_resource_tracker() -> None:
    """multiprocessing's resource tracker, a process of its own, warns about the semaphores of a worker pool
    that a Ctrl-C stopped while its workers started ("There appear to be 2 leaked semaphore objects", or a
    failed unlink), after gbreg has said how to run again; it cleans them up all the same. Its warnings are
    filtered by the -W options it is started with, which it takes from ``sys.warnoptions``: set before any
    pool exists."""
    option = "ignore::UserWarning:multiprocessing.resource_tracker"
    if option not in sys.warnoptions:
        sys.warnoptions.append(option)


def show_gbreg_warnings() -> None:
    """gbreg's own warnings (data columns left out, a leaf size that allows no split) on stderr as
    ``warning: ...``, the way the command line prints its other messages."""
    log = logging.getLogger("gbreg")
    if not any(isinstance(h.formatter, _CliFormatter) for h in log.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(_CliFormatter())
        log.addHandler(handler)
        log.propagate = False


class _CliFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


class _OnlyCritical(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL
