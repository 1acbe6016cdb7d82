"""``gbreg suite validate | run | report``: a claim tested across many data sets (suites/*.yaml).

Thin, like :mod:`gbreg.cli`: the work is in :mod:`gbreg.suite`; imports are per command so that
``gbreg --help`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gbreg.cli_options import (
    JobsOption,
    QuietOption,
    VerboseOption,
    executor_choice,
    fail,
    jobs_on_this_machine,
    run_again_command,
    verbosity,
)
from gbreg.errors import GbregError

suite_app = typer.Typer(no_args_is_help=True, help="Suites: one study per data set, verdicts combined across them.")

SetOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a suite key: KEY.PATH=YAML_VALUE (a list item by index: datasets[0].name=cps)")]


@suite_app.command("validate")
def validate(suite: Path, set_: SetOption = None):
    """Check a suite: every entry's study and its data, all problems at once; runs nothing."""
    from gbreg.suite.run import check_suite
    from gbreg.suite.spec import load_suite

    try:
        loaded = load_suite(suite, set_)
        typer.echo(f"{suite}: {len(loaded.studies)} data sets, {len(loaded.hypotheses)} hypotheses")
        check_suite(loaded, say=typer.echo)
    except GbregError as exc:
        fail(exc)
    typer.echo(f"{suite}: ok")


@suite_app.command("run")
def run(suite: Path, set_: SetOption = None,
        jobs: JobsOption = None,
        fresh: Annotated[bool, typer.Option("--fresh", help="Start every study over instead of resuming")] = False,
        executor: Annotated[str | None, typer.Option(help="local | dask (default: executor.kind in mlflow.yaml)")] = None,
        scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address (as for gbreg run)")] = None,
        verbose: VerboseOption = False,
        quiet: QuietOption = False,
        yes: Annotated[bool, typer.Option("--yes", help="Run studies above their limits (as for gbreg run)")] = False):
    """Run a suite (resuming one that was interrupted): one study per data set, then the combined verdicts."""
    from gbreg.cli_process import ProcessRunControl
    from gbreg.spec.tracking_config import load_tracking_config
    from gbreg.suite.run import run_suite
    from gbreg.suite.spec import load_suite

    try:
        level = verbosity(verbose, quiet)
        again = run_again_command(["gbreg", "suite", "run"], suite, set_, jobs, executor, scheduler, yes)
        loaded = load_suite(suite, set_)
        config = load_tracking_config()
        kind, address = executor_choice(str(executor) if executor else None, scheduler, config)
        jobs = jobs_on_this_machine(jobs, local=address is None)
        with ProcessRunControl() as control:
            outcome = run_suite(loaded, jobs=jobs, executor=kind, scheduler=address, fresh=fresh, config=config,
                                verbosity=level, control=control,
                                allow_large=yes, say=typer.echo, resume_command=again)
    except GbregError as exc:
        fail(exc)
    if outcome.interrupted:
        typer.echo(f"interrupted: suite run {outcome.run_id} marked KILLED; resume with: {again}", err=True)
        raise typer.Exit(130)
    if not quiet:
        from gbreg.suite.summary import print_suite_summary

        print_suite_summary(outcome)
    if outcome.failures:
        raise typer.Exit(1)


@suite_app.command("report")
def report(run_id: str, output: Annotated[Path, typer.Option("-o", "--output", dir_okay=False,
                                                             help="The HTML file to write")] = Path("suite.html")):
    """Write one self-contained HTML page of a suite run (its combined verdicts, forest plots, data sets)."""
    from gbreg.report.suite_html import write_suite_report

    try:
        path = write_suite_report(run_id, output)
    except GbregError as exc:
        fail(exc)
    typer.echo(f"wrote {path}")
