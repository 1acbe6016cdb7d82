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
    """MLflow's INFO lines and artifact progress bars are noise in a CLI that prints its own progress."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow configures its loggers
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
