"""The ``gbreg`` command line: a thin layer over the library. User mistakes print one message and exit 2;
a study with failed trials exits 1."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gbreg.cli_options import (
    ExecutorKind,
    JobsOption,
    QuietOption,
    SetOption,
    VerboseOption,
    executor_choice,
    fail,
    jobs_on_this_machine,
    run_again_command,
    verbosity,
)
from gbreg.cli_process import ProcessRunControl
from gbreg.cli_results import results
from gbreg.cli_suite import suite_app
from gbreg.errors import GbregError, TrackingError

# Each command imports what it runs inside its own body: `gbreg --help` and a mistyped command must not
# wait for pandas, pydantic, MLflow and the boosting libraries that only `run`, `report` and the rest need.

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Gradient-boosting regularization studies: sweep reg_alpha x reg_lambda, log to MLflow.")

app.add_typer(suite_app, name="suite")


PortOption = Annotated[Optional[int], typer.Option(min=1, max=65535, help="Port (default from mlflow.yaml)")]


@app.callback()
def _own_the_process() -> None:
    """Every command: MLflow's INFO lines and progress bars are noise next to gbreg's own output, the
    library check may silence the boosting libraries' native error lines (gbreg prints them once, cleanly),
    and gbreg, not MLflow's HTTP retries, decides how long to wait for a tracking server."""
    from gbreg.cli_process import one_try_per_request
    from gbreg.console import quiet_libraries
    from gbreg.run.control import own_process_output

    quiet_libraries()
    one_try_per_request()
    own_process_output()



PLAN_ROWS_SHOWN = 50  # `validate` and `--dry-run` show the plan's head and count the rest, never build it


def _print_plan(study, trials, n_trials: int) -> None:
    """The first trials (``trials``: the plan's head) and the total; a note when ``run`` would want --yes."""
    from rich.table import Table

    from gbreg.console import make_console
    from gbreg.spec.messages import counted

    table = Table(title=counted(n_trials, "trial"))
    for column in ("trial_key", "model", "grid point"):
        table.add_column(column)
    for trial in trials[:PLAN_ROWS_SHOWN]:
        table.add_row(trial.trial_key, trial.model, " ".join(f"{k}={v}" for k, v in trial.point.items()))
    make_console().print(table)
    if n_trials > len(trials[:PLAN_ROWS_SHOWN]):
        typer.echo(f"… and {n_trials - len(trials[:PLAN_ROWS_SHOWN]):,} more")
    if n_trials > study.max_trials:
        typer.echo(f"{counted(n_trials, 'trial')} is above limits.max_trials = {study.max_trials:,}: `gbreg run` "
                   "will refuse it, with its estimate of how long it would take, unless given --yes")


@app.command()
def validate(spec: Path, set_: SetOption = None,
             data: Annotated[bool, typer.Option(help="Also load the data and check parameters with the libraries")] = True):
    """Check a spec (and its data), print the trial plan; runs nothing."""
    from gbreg.plan import count_trials, plan_head
    from gbreg.spec.validation import load_spec

    try:
        study = load_spec(spec, set_)
        n_trials = count_trials(study)
        trials = plan_head(study, PLAN_ROWS_SHOWN)
        if data:
            from gbreg.run.study import prepare_study

            prepared = prepare_study(study, plan=trials)  # the head is all validate shows
            typer.echo(f"{spec}: ok — task {prepared.task}, metric {prepared.metric}, "
                       f"{len(prepared.dataset.y)} rows × {prepared.dataset.X.shape[1]} features")
        else:
            typer.echo(f"{spec}: ok")
    except GbregError as exc:
        fail(exc)
    _print_plan(study, trials, n_trials)


def _print_done_in_store(study, n_trials: int, fresh: bool) -> None:
    """What ``--dry-run`` adds to the plan: how many of its trials the store has finished, which a run skips."""
    from gbreg.spec.messages import counted
    from gbreg.spec.tracking_config import load_tracking_config
    from gbreg.tracking.readback import trials_done_in_store

    plan = f"{counted(n_trials, 'trial')} in the plan"
    if fresh:
        typer.echo(f"{plan}; with --fresh a run would train all of them")
        return
    config = load_tracking_config()
    try:
        done = trials_done_in_store(config, study)
    except TrackingError as exc:  # the plan stands without it
        typer.echo(f"note: how many are done is unknown: {exc}", err=True)
        return
    if done is not None:
        typer.echo(f"{plan}; {done:,} already done in the store ({config.tracking_uri}), a run would train "
                   f"{n_trials - done:,}")


@app.command()
def run(spec: Path, set_: SetOption = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the trial plan, and how many of its trials the store "
                                                         "has done already; runs nothing")] = False,
        jobs: JobsOption = None,
        fresh: Annotated[bool, typer.Option("--fresh", help="Start over instead of resuming")] = False,
        executor: Annotated[Optional[ExecutorKind], typer.Option(
            help="local | dask (default: executor.kind in mlflow.yaml, else local)")] = None,
        scheduler: Annotated[Optional[str], typer.Option(
            help="Dask scheduler address, e.g. tcp://host:8786 (default: executor.scheduler in mlflow.yaml; "
                 "none: a LocalCluster)")] = None,
        verbose: VerboseOption = False,
        quiet: QuietOption = False,
        yes: Annotated[bool, typer.Option("--yes", help="Run even above limits.max_trials (default 10,000) or limits.max_hours "
                                     "(default 12, gbreg's estimate for this machine)")] = False):
    """Run a study (resuming one that was interrupted) and log it to MLflow."""
    from gbreg.plan import count_trials, plan_head
    from gbreg.spec.limits import check_trial_limit
    from gbreg.spec.validation import load_spec

    again = run_again_command(["gbreg", "run"], spec, set_, jobs, executor, scheduler, yes)
    try:
        level = verbosity(verbose, quiet)
        study = load_spec(spec, set_)
        n_trials = count_trials(study)
        if dry_run:
            _print_plan(study, plan_head(study, PLAN_ROWS_SHOWN), n_trials)
            _print_done_in_store(study, n_trials, fresh)
            return
        check_trial_limit(study, n_trials, yes)
        from gbreg.report.summary import print_summary
        from gbreg.run.study import run_study
        from gbreg.spec.tracking_config import load_tracking_config

        config = load_tracking_config()
        kind, address = executor_choice(str(executor) if executor else None, scheduler, config)
        jobs = jobs_on_this_machine(jobs, local=address is None)
        with ProcessRunControl() as control:  # this process's signals and collector: the CLI's alone
            outcome = run_study(study, jobs=jobs, executor=kind, scheduler=address, fresh=fresh, config=config,
                                verbosity=level, allow_large=yes, control=control,
                                resume_command=again)
    except GbregError as exc:
        fail(exc)
    except KeyboardInterrupt:  # before the sweep: once it runs, it stops cleanly and says so itself
        typer.echo(f"interrupted while the study was starting, before any trial was logged; run again with: {again}",
                   err=True)
        raise typer.Exit(130) from None
    if outcome.interrupted:
        raise typer.Exit(130)
    if not quiet:
        print_summary(study, outcome)
    if outcome.failures or outcome.report_failures:  # the trials are logged; what failed was said above
        raise typer.Exit(1)


app.command()(results)  # gbreg/cli_results.py; registered here to keep the commands' order in --help


@app.command()
def ui(host: Annotated[Optional[str], typer.Option(help="Bind address (default from mlflow.yaml)")] = None,
       port: PortOption = None,
       study: Annotated[Optional[str], typer.Option(help="Print only this study's runs-table address")] = None):
    """Open the MLflow UI on the configured store (bound to 127.0.0.1 by default); prints each study's
    runs-table address (MLflow 3.17 otherwise opens experiments in its GenAI view)."""
    from gbreg.cli_process import stop_signals_interrupt
    from gbreg.spec.tracking_config import load_tracking_config
    from gbreg.tracking.serve import serve_forever

    config = load_tracking_config()
    try:
        experiments = {} if config.is_server else _study_experiments(config, study)
        with stop_signals_interrupt():
            serve_forever(config, host=host, port=port, experiments=experiments)
    except GbregError as exc:
        fail(exc)


def _study_experiments(config, study: str | None) -> dict[str, str]:
    from gbreg.tracking.store import open_existing_store

    client = open_existing_store(config)  # the UI shows studies: never create an empty store for it
    experiments = {e.name: e.experiment_id for e in client.search_experiments(max_results=1000)
                   if e.name != "Default"}
    if study is not None:
        if study not in experiments:
            from gbreg.errors import UserInputError
            from gbreg.spec.messages import unknown_key_message

            raise UserInputError(unknown_key_message(study, list(experiments) or ["(none yet)"], "study"))
        experiments = {study: experiments[study]}
    return experiments


@app.command()
def server(host: Annotated[str, typer.Option(help="Bind address; 0.0.0.0 exposes it to the network")] = "127.0.0.1",
           port: PortOption = None,
           auth: Annotated[bool, typer.Option("--auth", help=(
               "Require a login (MLflow's basic-auth app): users in basic_auth.db next to mlflow.yaml, or as "
               "MLFLOW_AUTH_CONFIG_PATH says; the first start creates the admin from MLFLOW_AUTH_ADMIN_PASSWORD"))] = False):
    """Start a shared MLflow tracking server on the store and artifact root from mlflow.yaml."""
    from gbreg.cli_process import stop_signals_interrupt
    from gbreg.spec.tracking_config import load_tracking_config
    from gbreg.tracking.serve import serve_forever

    # proxy_artifacts: drivers on other machines upload and download artifacts through the server
    # (mlflow-artifacts:/) instead of writing file: paths that exist only on the server's disk.
    try:
        with stop_signals_interrupt():
            serve_forever(load_tracking_config(), host=host, port=port, proxy_artifacts=True, auth=auth)
    except GbregError as exc:
        fail(exc)


@app.command()
def reproduce(run_id: str,
              rtol: Annotated[float, typer.Option(min=0.0, help="Relative tolerance for a metric to count as "
                                                                "equal (0: bit for bit)")] = 0.0,
              allow_data_change: Annotated[bool, typer.Option("--allow-data-change",
                                                              help="Run even if the data changed")] = False,
              jobs: JobsOption = None, verbose: VerboseOption = False, quiet: QuietOption = False):
    """Rerun a study from what its parent run recorded and compare every trial's metrics."""
    from gbreg.run.reproduce import reproduce as reproduce_run

    try:
        level = verbosity(verbose, quiet)
        with ProcessRunControl() as control:
            status = reproduce_run(run_id, rtol=rtol, allow_data_change=allow_data_change,
                                   jobs=jobs_on_this_machine(jobs, local=True), control=control, verbosity=level)
    except GbregError as exc:
        fail(exc)
    raise typer.Exit(status)


@app.command()
def report(run_id: str, output: Annotated[Path, typer.Option("-o", "--output", dir_okay=False,
                                                             help="The HTML file to write")] = Path("report.html")):
    """Write one self-contained HTML report of a study (also logged as report.html on its parent run)."""
    from gbreg.report.html import write_report

    try:
        path = write_report(run_id, output, announce=typer.echo)
    except GbregError as exc:
        fail(exc)
    typer.echo(f"wrote {path}")


def main() -> None:
    from gbreg.console import quiet_libraries, quiet_resource_tracker, show_gbreg_warnings

    quiet_libraries()  # before any command imports mlflow
    quiet_resource_tracker()  # before any worker pool starts it
    show_gbreg_warnings()
    try:
        try:
            app()
        except GbregError as exc:  # pragma: no cover - commands translate their own
            typer.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:  # before the first trial (a study in progress stops cleanly by itself)
            typer.echo("interrupted", err=True)
            sys.exit(130)
    except SystemExit as exc:  # how every command ends
        _exit_now(exc.code)


def _exit_now(code) -> None:
    """End the ``gbreg`` process as :func:`sys.exit` would, without tearing the interpreter down.

    Freeing every object that MLflow, SQLAlchemy, pandas and matplotlib hold, one by one, takes about
    0.7 s after a study and serves nothing at exit. The exit hooks still run (MLflow's, logging's, the
    worker pools'), and the standard streams are flushed; every file gbreg writes is closed by then.
    Only the console entry point does this: ``app`` called from Python exits normally.
    """
    import atexit

    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
