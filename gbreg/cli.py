"""The ``gbreg`` command line: a thin layer over the library. User mistakes print one message and exit 2;
a study with failed trials exits 1."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gbreg.errors import GbregError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Gradient-boosting regularization studies: sweep reg_alpha x reg_lambda, log to MLflow.")

SetOption = Annotated[Optional[list[str]], typer.Option("--set", help="Override a spec key: KEY.PATH=YAML_VALUE")]


@app.callback()
def _quiet() -> None:
    """Every command: MLflow's INFO lines and progress bars are noise next to gbreg's own output."""
    from gbreg.console import quiet_libraries

    quiet_libraries()


def _fail(exc: GbregError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(exc.exit_code)


def _print_plan(prepared_or_spec, trials) -> None:
    from rich.table import Table

    from gbreg.console import make_console

    table = Table(title=f"{len(trials)} trials")
    for column in ("trial_key", "model", "grid point"):
        table.add_column(column)
    for trial in trials:
        table.add_row(trial.trial_key, trial.model, " ".join(f"{k}={v}" for k, v in trial.point.items()))
    make_console().print(table)


@app.command()
def validate(spec: Path, set_: SetOption = None,
             data: Annotated[bool, typer.Option(help="Also load the data and check parameters with the libraries")] = True):
    """Check a spec (and its data), print the trial plan; runs nothing."""
    from gbreg.plan import make_plan
    from gbreg.spec import load_spec

    try:
        study = load_spec(spec, set_)
        if data:
            from gbreg.runner import prepare_study

            prepared = prepare_study(study)
            typer.echo(f"{spec}: ok — task {prepared.task}, metric {prepared.metric}, "
                       f"{len(prepared.dataset.y)} rows × {prepared.dataset.X.shape[1]} features")
            trials = prepared.plan
        else:
            trials = make_plan(study)
            typer.echo(f"{spec}: ok")
    except GbregError as exc:
        _fail(exc)
    _print_plan(study, trials)


@app.command()
def run(spec: Path, set_: SetOption = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the trials it would run")] = False,
        jobs: Annotated[Optional[int], typer.Option("-j", "--jobs", help="Worker processes (default: all cores)")] = None,
        fresh: Annotated[bool, typer.Option("--fresh", help="Start over instead of resuming")] = False,
        executor: Annotated[Optional[str], typer.Option(
            help="local | dask (default: executor.kind in mlflow.yaml, else local)")] = None,
        scheduler: Annotated[Optional[str], typer.Option(
            help="Dask scheduler address, e.g. tcp://host:8786 (default: executor.scheduler in mlflow.yaml; "
                 "none: a LocalCluster)")] = None,
        verbose: Annotated[bool, typer.Option("-v", "--verbose", help="One line per finished trial")] = False,
        quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress output")] = False):
    """Run a study (resuming one that was interrupted) and log it to MLflow."""
    from gbreg.spec import load_spec

    try:
        study = load_spec(spec, set_)
        if dry_run:
            from gbreg.plan import make_plan

            _print_plan(study, make_plan(study))
            return
        from gbreg.config import load_tracking_config
        from gbreg.runner import run_study
        from gbreg.summary import print_summary

        config = load_tracking_config()
        kind, address = _executor_choice(executor, scheduler, config)
        outcome = run_study(study, jobs=jobs, executor=kind, scheduler=address, fresh=fresh, config=config,
                            verbosity=-1 if quiet else (1 if verbose else 0))
    except GbregError as exc:
        _fail(exc)
    if outcome.interrupted:
        raise typer.Exit(130)
    if not quiet:
        print_summary(study, outcome)
    if outcome.failures:
        raise typer.Exit(1)


def _executor_choice(executor: str | None, scheduler: str | None, config) -> tuple[str, str | None]:
    """Flags first, then mlflow.yaml's ``executor:`` section; ``--scheduler`` alone means dask."""
    from gbreg.errors import UserInputError

    kind = executor or ("dask" if scheduler else config.executor)
    if kind not in ("local", "dask"):
        raise UserInputError(f"--executor: expected 'local' or 'dask', got {kind!r}")
    if kind == "local":
        if scheduler:
            raise UserInputError("--scheduler needs --executor dask")
        return kind, None
    return kind, scheduler or config.scheduler


@app.command()
def results(study: str,
            format: Annotated[str, typer.Option("--format", help="table | csv")] = "table",
            all_columns: Annotated[bool, typer.Option("--all", help="Every param and metric")] = False,
            comparison: Annotated[bool, typer.Option("--comparison", help="Boosters next to linear counterparts")] = False,
            findings: Annotated[bool, typer.Option("--findings", help="The hypotheses' verdicts (findings.md)")] = False):
    """Show a study's trials (latest run of the study, or a parent run id)."""
    from gbreg.config import load_tracking_config
    from gbreg.results import find_parent_run, study_results, summary_table
    from gbreg.store import open_store

    try:
        client = open_store(load_tracking_config())
        parent = find_parent_run(client, study)
        if findings:
            from gbreg.findings import findings_text

            typer.echo(findings_text(client, parent))
            return
        if comparison:
            from gbreg.comparison import comparison_frame

            frame = comparison_frame(client, parent)
        else:
            frame = study_results(client, parent)
    except GbregError as exc:
        _fail(exc)
    metric = parent.data.params.get("metric", "rmse")
    if all_columns or format == "csv":
        shown = frame
    elif comparison:
        shown = _comparison_summary(frame, metric)
    else:
        shown = summary_table(frame, metric)
    if format == "csv":
        shown.to_csv(sys.stdout, index=False)
        return
    from rich.table import Table

    from gbreg.console import make_console

    table = Table(title=f"{parent.info.run_name} ({parent.info.run_id}) — {len(frame)} trials")
    for column in shown.columns:
        table.add_column(str(column), justify="right" if shown[column].dtype.kind in "fi" else "left")
    for _, row in shown.iterrows():
        table.add_row(*[f"{v:.5g}" if isinstance(v, float) else str(v) for v in row])
    make_console().print(table)


def _comparison_summary(frame, metric: str):
    """The comparison's key columns for a terminal (``--all`` or ``--format csv`` give every column)."""
    keep = ("model", f"test_{metric}", f"gap_{metric}", "zero_leaf_fraction", "zero_coef_fraction",
            "n_features_used")
    columns = [c for c in frame.columns if c in ("reg_alpha", "reg_lambda") or c.split(".", 1)[-1] in keep
               and "." in c]
    return frame[columns]


@app.command()
def ui(host: Annotated[Optional[str], typer.Option(help="Bind address (default from mlflow.yaml)")] = None,
       port: Annotated[Optional[int], typer.Option(help="Port (default from mlflow.yaml)")] = None,
       study: Annotated[Optional[str], typer.Option(help="Print only this study's runs-table address")] = None):
    """Open the MLflow UI on the configured store (bound to 127.0.0.1 by default); prints each study's
    runs-table address (MLflow 3.17 otherwise opens experiments in its GenAI view)."""
    from gbreg.config import load_tracking_config
    from gbreg.mlflow_server import serve_forever

    config = load_tracking_config()
    try:
        experiments = {} if config.is_server else _study_experiments(config, study)
        serve_forever(config, host=host, port=port, experiments=experiments)
    except GbregError as exc:
        _fail(exc)


def _study_experiments(config, study: str | None) -> dict[str, str]:
    from gbreg.store import open_store

    client = open_store(config)
    experiments = {e.name: e.experiment_id for e in client.search_experiments(max_results=1000)
                   if e.name != "Default"}
    if study is not None:
        if study not in experiments:
            from gbreg.errors import UserInputError
            from gbreg.spec import unknown_key_message

            raise UserInputError(unknown_key_message(study, list(experiments) or ["(none yet)"], "study"))
        experiments = {study: experiments[study]}
    return experiments


@app.command()
def server(host: Annotated[str, typer.Option(help="Bind address; 0.0.0.0 exposes it to the network")] = "127.0.0.1",
           port: Annotated[Optional[int], typer.Option(help="Port (default from mlflow.yaml)")] = None):
    """Start a shared MLflow tracking server on the store and artifact root from mlflow.yaml."""
    from gbreg.config import load_tracking_config
    from gbreg.mlflow_server import serve_forever

    # proxy_artifacts: drivers on other machines upload and download artifacts through the server
    # (mlflow-artifacts:/) instead of writing file: paths that exist only on the server's disk.
    serve_forever(load_tracking_config(), host=host, port=port, proxy_artifacts=True)


@app.command()
def reproduce(run_id: str,
              rtol: Annotated[float, typer.Option(help="Relative tolerance for a metric to count as equal")] = 0.0,
              allow_data_change: Annotated[bool, typer.Option("--allow-data-change",
                                                              help="Run even if the data changed")] = False,
              jobs: Annotated[Optional[int], typer.Option("-j", "--jobs")] = None):
    """Rerun a study from what its parent run recorded and compare every trial's metrics."""
    from gbreg.reproduce import reproduce as reproduce_run

    try:
        status = reproduce_run(run_id, rtol=rtol, allow_data_change=allow_data_change, jobs=jobs)
    except GbregError as exc:
        _fail(exc)
    raise typer.Exit(status)


@app.command()
def report(run_id: str, output: Annotated[Path, typer.Option("-o", "--output")] = Path("report.html")):
    """Write one self-contained HTML report of a study (also logged as report.html on its parent run)."""
    from gbreg.report import write_report

    try:
        path = write_report(run_id, output)
    except GbregError as exc:
        _fail(exc)
    typer.echo(f"wrote {path}")


def main() -> None:
    from gbreg.console import quiet_libraries

    quiet_libraries()  # before any command imports mlflow
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
