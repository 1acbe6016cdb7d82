"""One rich console for tables: the terminal's width on a terminal, wide plain text when piped."""

from __future__ import annotations

import logging
import os


def make_console(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=220, no_color=True)
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
    client_log = logging.getLogger("distributed.client")
    if not any(isinstance(f, _OnlyCritical) for f in client_log.filters):
        client_log.addFilter(_OnlyCritical())


class _OnlyCritical(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL
