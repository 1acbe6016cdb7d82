"""``gbreg results``: a study's trials, its comparison with the linear counterparts, or its findings, read
back from the store. Thin, like :mod:`gbreg.cli`: the tables come from :mod:`gbreg.tracking.readback` and
:mod:`gbreg.analysis`; imports are per call so that ``gbreg --help`` stays light."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from gbreg.cli_options import fail
from gbreg.errors import GbregError, UserInputError


class TableFormat(StrEnum):
    table = "table"
    csv = "csv"


def results(study: str,
            format: Annotated[TableFormat, typer.Option(
                "--format", help="table (fitted to the terminal) | csv (every column)")] = TableFormat.table,
            run_id: Annotated[str | None, typer.Option(
                "--run", help="This parent run of the study (default: its latest run that is not a "
                              "`gbreg reproduce` rerun)")] = None,
            all_columns: Annotated[bool, typer.Option("--all", help="Every param and metric")] = False,
            comparison: Annotated[bool, typer.Option("--comparison", help="Boosters next to linear counterparts")] = False,
            findings: Annotated[bool, typer.Option("--findings", help="The hypotheses' verdicts (findings.md)")] = False):
    """Show a study's trials (latest run of the study, or a parent run id)."""
    from gbreg.spec.tracking_config import load_tracking_config
    from gbreg.tracking.readback import (
        chosen_parent_run,
        find_parent_run,
        study_results,
        summary_table,
        unfinished_note,
    )
    from gbreg.tracking.store import open_existing_store

    try:
        if findings and (comparison or all_columns or format is TableFormat.csv):
            raise UserInputError("--findings prints findings.md: it does not combine with --comparison, --all "
                                 "or --format csv")
        client = open_existing_store(load_tracking_config())  # reading only: never create an empty store
        parent = chosen_parent_run(client, study, run_id) if run_id else find_parent_run(client, study)
        if findings:
            from gbreg.analysis.findings import findings_text

            typer.echo(findings_text(client, parent))
            return
        if comparison:
            from gbreg.analysis.comparison import comparison_frame

            frame = comparison_frame(client, parent)
        else:
            frame = study_results(client, parent)
    except GbregError as exc:
        fail(exc)
    metric = parent.data.params.get("metric", "rmse")
    note = None if comparison else unfinished_note(parent, frame)
    if all_columns or format is TableFormat.csv:
        shown = frame
    elif comparison:
        shown = _comparison_summary(frame, metric)
    else:
        shown = _terminal_columns(frame, summary_table(frame, metric), parent.data.params, metric)
        if note and "status" in frame:  # abandoned and failed trials are rows too: say which
            shown = shown.assign(status=frame["status"])[["status", *shown.columns]]
    if format is TableFormat.csv:
        shown.to_csv(sys.stdout, index=False)
        if note:
            typer.echo(note, err=True)  # stdout is the CSV
        return
    from gbreg.console import make_console
    from gbreg.report.summary import fit_table
    from gbreg.spec.messages import counted
    from gbreg.tracking.run_table import numeric_columns

    console = make_console()
    title = f"{parent.info.run_name} ({parent.info.run_id}) — {counted(len(frame), 'trial')}"
    keep = 1 + sum(c.startswith(("reg_", "test_")) or f"sweep.{c}" in parent.data.params for c in shown.columns)
    table, left_out = fit_table(numeric_columns(shown), title, None if all_columns else console.width, keep=keep)
    if all_columns:  # every column whole, wider than the terminal if need be
        console = make_console(min_width=table.min_width)
    console.print(table, crop=False)
    if left_out:
        console.print(f"not shown at this width: {', '.join(left_out)} (--all or --format csv shows every column)",
                      markup=False, highlight=False)
    if note:
        console.print(note, markup=False, highlight=False)


def _terminal_columns(frame, summary, params: dict, metric: str):
    """The summary for a terminal: model and grid point (every sweep axis) first, as run_name and library
    repeat them, then the scores, then the rest in summary order; fit_table leaves out from the right
    what does not fit."""
    axes = [k.removeprefix("sweep.") for k in params if k.startswith("sweep.")]
    first = ["model", *dict.fromkeys(["reg_alpha", "reg_lambda", *axes]), f"test_{metric}", f"train_{metric}",
             f"gap_{metric}"]
    order = [c for c in first if c in frame.columns]
    order += [c for c in summary.columns if c not in order and c not in ("run_name", "library")]
    return frame[order]


def _comparison_summary(frame, metric: str):
    """The comparison's key columns for a terminal (``--all`` or ``--format csv`` give every column)."""
    from gbreg.catalogue import shown_in

    keep = ("model", f"test_{metric}", f"gap_{metric}", *shown_in("comparison-terminal"))
    columns = [c for c in frame.columns if c in ("reg_alpha", "reg_lambda") or c.split(".", 1)[-1] in keep
               and "." in c]
    return frame[columns]
