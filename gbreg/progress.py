"""What the user sees while a study runs: a rich progress bar on a terminal, plain lines otherwise,
one line per trial with ``-v``, nothing with ``-q``."""

from __future__ import annotations

import sys
import time

from gbreg.metrics import HIGHER_IS_BETTER


class StudyProgress:
    def __init__(self, verbosity: int = 0, metric: str = "rmse", stream=None):
        self.verbosity = verbosity  # -1 quiet, 0 normal, 1 per-trial lines
        self.metric = metric
        self.stream = stream or sys.stderr
        self.total = self.done = self.failed = 0
        self.best: float | None = None
        self._start = time.monotonic()
        self._bar = None
        self._task = None
        self._console = None

    def message(self, text: str) -> None:
        if self.verbosity >= 0:
            self._print(text)

    def _print(self, text: str) -> None:
        if self._console is not None:
            self._console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def start(self, total: int) -> None:
        self.total = total
        self._start = time.monotonic()
        if self.verbosity < 0:
            return
        from rich.console import Console

        self._console = Console(file=self.stream)
        if self._console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"),
                                 TimeRemainingColumn(), console=self._console, transient=False)
            self._bar.start()
            self._task = self._bar.add_task("trials", total=total, status="")

    def trial_done(self, trial, result) -> None:
        self.done += 1
        if not result.ok:
            self.failed += 1
        else:
            value = result.metrics.get(f"test_{self.metric}")
            if value is not None and value == value:
                better = (self.best is None or
                          (value > self.best if HIGHER_IS_BETTER[self.metric] else value < self.best))
                self.best = value if better else self.best
        if self.verbosity < 0:
            return
        status = f"failed {self.failed}  best test_{self.metric} {self.best:.5g}" if self.best is not None \
            else f"failed {self.failed}"
        if self._bar is not None:
            self._bar.update(self._task, advance=1, status=status)
        if self.verbosity >= 1 or (self._bar is None and not result.ok):
            outcome = (f"test_{self.metric}={result.metrics.get(f'test_{self.metric}', float('nan')):.5g} "
                       f"({result.seconds:.1f}s)" if result.ok else f"FAILED: {result.error}")
            self._print(f"[{self.done}/{self.total}] {trial.run_name}: {outcome}")
        elif self._bar is None and self._plain_tick():
            elapsed = time.monotonic() - self._start
            left = elapsed / self.done * (self.total - self.done)
            self._print(f"{self.done}/{self.total} trials, {status}, {elapsed:.0f}s elapsed, ~{left:.0f}s left")

    def _plain_tick(self) -> bool:
        step = max(1, self.total // 10)
        return self.done % step == 0 or self.done == self.total

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
