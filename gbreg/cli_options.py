"""Options and choices shared by the ``gbreg`` commands (:mod:`gbreg.cli`, :mod:`gbreg.cli_suite`)."""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from gbreg.errors import GbregError, UserInputError

SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a spec key: KEY.PATH=YAML_VALUE (a list item by index: sweep.reg_alpha[0]=0.5)")]


class ExecutorKind(StrEnum):
    local = "local"
    dask = "dask"


JOBS_HELP = ("Trials trained at once, each in its own worker process (default: one per core). Each trial "
             "trains with cores/JOBS threads, so -j 1 trains one trial at a time on every core. More jobs "
             "than this machine's cores (local executor, or a Dask LocalCluster) are capped at the core "
             "count, with a note; with a Dask scheduler address its workers decide (-j is ignored, with a note).")
JobsOption = Annotated[int | None, typer.Option("-j", "--jobs", min=1, help=JOBS_HELP)]
VerboseOption = Annotated[bool, typer.Option("-v", "--verbose", help="One line per finished trial")]
QuietOption = Annotated[bool, typer.Option("-q", "--quiet", help="No progress output")]


def verbosity(verbose: bool, quiet: bool) -> int:
    """-1 (quiet), 0 or 1 (a line per trial), as :func:`gbreg.run.study.run_study` takes it."""
    if verbose and quiet:
        raise UserInputError("-v/--verbose and -q/--quiet contradict each other; give one")
    return -1 if quiet else (1 if verbose else 0)


def jobs_on_this_machine(jobs: int | None, local: bool) -> int | None:
    """More jobs than cores only slow a study down on one machine: cap them, and say so."""
    if jobs is not None and not local:
        typer.echo(f"note: -j {jobs} is ignored with a Dask scheduler: its workers' threads decide how many "
                   "trials run at once", err=True)
    if jobs is None or not local:
        return jobs
    from gbreg.machine import available_cores

    cores = available_cores()
    if jobs > cores:
        typer.echo(f"note: -j {jobs} is more than the {cores} cores here; running {cores} jobs", err=True)
        return cores
    return jobs


def executor_choice(executor: str | None, scheduler: str | None, config) -> tuple[str, str | None]:
    """Flags first, then mlflow.yaml's ``executor:`` section; ``--scheduler`` alone means dask."""
    kind = executor or ("dask" if scheduler else config.executor)
    if kind not in ("local", "dask"):
        raise UserInputError(f"--executor: expected 'local' or 'dask', got {kind!r}")
    if kind == "local":
        if scheduler:
            raise UserInputError("--scheduler needs --executor dask")
        return kind, None
    return kind, scheduler or config.scheduler


def fail(exc: GbregError) -> None:
    """A user's mistake (or a failed study) as one line on stderr and its exit status."""
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def run_again_command(command: list[str], path: Path, set_: list[str] | None, jobs: int | None, executor,
                      scheduler: str | None, yes: bool) -> str:
    """The command that resumes an interrupted run (``command``: ``["gbreg", "run"]`` or the suite's): the same
    file and ``--set`` overrides (they make the study), and where it ran; not ``--fresh``, which would start it
    over again."""
    words = [*command, str(path)]
    for override in set_ or []:
        words += ["--set", override]
    if jobs is not None:
        words += ["-j", str(jobs)]
    if executor:
        words += ["--executor", str(executor)]
    if scheduler:
        words += ["--scheduler", scheduler]
    if yes:
        words.append("--yes")
    return shlex.join(words)
