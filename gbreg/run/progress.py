"""What the user sees while a study runs.

- On a terminal: a rich progress bar with trials done / total, failures, the best test metric so far,
  elapsed time and the estimated time left.
- Not on a terminal (CI, a log file, a pipe): plain, non-animated lines, about ten per study, each with
  the same facts, plus a line for every failed trial.
- ``-v``: one line per finished trial (its grid point, test metric and fit time) in either mode.
- ``-q``: nothing at all.

The runner calls :meth:`StudyProgress.message`, :meth:`~StudyProgress.start`,
:meth:`~StudyProgress.trial_done` and :meth:`~StudyProgress.stop`; nothing else touches the output.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from gbreg.models.metrics import HIGHER_IS_BETTER

PLAIN_LINES_PER_STUDY = 10
REFRESHES_PER_SECOND = 4  # the bar redraws in a thread; a few times a second is plenty


def format_seconds(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``1h02m``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class StudyProgress:
    """Progress of one study's trials; ``verbosity``: -1 quiet, 0 normal, 1 one line per trial."""

    def __init__(self, verbosity: int = 0, metric: str = "rmse", stream: TextIO | None = None):
        self.verbosity = verbosity
        self.metric = metric
        self.stream = stream or sys.stderr
        self.total = self.done = self.failed = 0
        self.best: float | None = None
        self._start = time.monotonic()
        self._bar = None
        self._task = None
        self._console = None
        self._next_plain_line = 1

    # ---------------------------------------------------------------- numbers
    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    @property
    def seconds_left(self) -> float | None:
        """Time left at the mean pace so far (None before the first trial finishes)."""
        if not self.done:
            return None
        return self.elapsed / self.done * max(0, self.total - self.done)

    def _record(self, result) -> None:
        self.done += 1
        if not result.ok:
            self.failed += 1
            return
        value = result.metrics.get(f"test_{self.metric}")
        if value is None or not math.isfinite(value):
            return
        if self.best is None or (value > self.best if HIGHER_IS_BETTER[self.metric] else value < self.best):
            self.best = value

    def status(self) -> str:
        """``failed 0 · best test_rmse 61.29``: the part of the bar and of plain lines that is ours."""
        best = f"best test_{self.metric} {self.best:.5g}" if self.best is not None else f"best test_{self.metric} -"
        return f"failed {self.failed} · {best}"

    # ---------------------------------------------------------------- output
    def message(self, text: str) -> None:
        if self.verbosity >= 0:
            self._print(text)

    def warning(self, text: str) -> None:
        """Something the user must know even with ``-q`` (which silences the progress, not the problems)."""
        self._print(f"warning: {text}")

    def _print(self, text: str) -> None:
        if self._console is not None:
            self._console.print(text, highlight=False, markup=False, soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)

    def start(self, total: int) -> None:
        self.total = total
        self._start = time.monotonic()
        self._next_plain_line = 1
        if self.verbosity < 0:
            return
        from rich.console import Console

        self._console = Console(file=self.stream)
        if self._console.is_terminal:
            self._bar = self._make_bar()
            self._bar.start()
            self._task = self._bar.add_task("trials", total=total, status=self.status())
        else:
            self._print(f"running {total} trial(s)")

    def _make_bar(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        return Progress(TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[status]}"), TextColumn("elapsed"), TimeElapsedColumn(),
                        TextColumn("left"), TimeRemainingColumn(), console=self._console, transient=False,
                        refresh_per_second=REFRESHES_PER_SECOND)

    def trial_done(self, trial, result) -> None:
        self._record(result)
        if self.verbosity < 0:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=1, status=self.status())
        if self.verbosity >= 1 or not result.ok:
            self._print(self._trial_line(trial, result))
        if self._bar is None and self._plain_line_due():
            self._print(f"{self.done}/{self.total} trials · {self.status()} · elapsed "
                        f"{format_seconds(self.elapsed)} · left ~{format_seconds(self.seconds_left)}")

    def _trial_line(self, trial, result) -> str:
        if not result.ok:
            return f"[{self.done}/{self.total}] {trial.run_name}: FAILED: {result.error}"
        value = result.metrics.get(f"test_{self.metric}", float("nan"))
        return f"[{self.done}/{self.total}] {trial.run_name}: test_{self.metric}={value:.5g} ({result.seconds:.1f}s)"

    def _plain_line_due(self) -> bool:
        """About :data:`PLAIN_LINES_PER_STUDY` evenly spaced lines, always one for the last trial."""
        if self.done >= self.total or self.done >= self._next_plain_line * self.total / PLAIN_LINES_PER_STUDY:
            self._next_plain_line = math.floor(self.done * PLAIN_LINES_PER_STUDY / max(1, self.total)) + 1
            return True
        return False

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
