"""The table printed at the end of ``gbreg run``: the best grid point per model, tree size and sparsity
there, and where the results are in MLflow (experiment, parent run, the UI's runs-table address).

:func:`best_per_model` is a pure function of the results table; ``gbreg report`` shows the same table.
"""

from __future__ import annotations

import math

import pandas as pd

from gbreg.catalogue import HIGHER_IS_BETTER, PENALTY_AXES, shown_in
from gbreg.console import make_console
from gbreg.spec.tracking_config import load_tracking_config
from gbreg.tracking.run_table import numeric_columns
from gbreg.tracking.server import runs_page_url

# after the grid point and the scores: tree size, then sparsity (trees: leaves; linear: coefficients)
SIZE_AND_SPARSITY = shown_in("best")


def best_per_model(results: pd.DataFrame | None, metric: str, axes: tuple[str, ...] = PENALTY_AXES) -> pd.DataFrame:
    """One row per model: its best finished trial by test metric, with the columns worth printing.

    Models keep the order the study ran them in; a model whose trials all failed is left out.
    """

    column = f"test_{metric}"
    if results is None or not len(results) or column not in results.columns:
        return pd.DataFrame()
    results = numeric_columns(results)
    if "status" in results:
        results = results[results["status"].fillna("FINISHED") == "FINISHED"]
    scored = results.dropna(subset=[column])
    best_index = (scored.groupby("model", sort=False)[column].idxmax() if HIGHER_IS_BETTER[metric]
                  else scored.groupby("model", sort=False)[column].idxmin())
    best = scored.loc[best_index.to_numpy()]
    shown = ["model", *[a for a in axes if a in best and best[a].notna().any()],
             column, f"{column}_std", f"train_{metric}", f"gap_{metric}", *SIZE_AND_SPARSITY, "run_id"]
    shown = [c for c in dict.fromkeys(shown) if c in best.columns and best[c].notna().any()]
    return best[shown].reset_index(drop=True)


def runs_table_address(experiment_id: str, config=None) -> str:
    """Where the study's runs are in the MLflow UI: on a tracking server, the server's own UI; on a local
    store, where ``gbreg ui`` serves it (the configured host/port).

    MLflow 3's UI opens an experiment on its GenAI overview; ``workflowType=machine_learning`` asks for
    the runs table instead.
    """

    config = config or load_tracking_config()
    if config.is_server:
        return runs_page_url(config.tracking_uri, experiment_id)
    host = config.ui_host if config.ui_host not in ("0.0.0.0", "::") else "127.0.0.1"
    base = f"http://[{host}]:{config.ui_port}" if ":" in host else f"http://{host}:{config.ui_port}"
    return runs_page_url(base, experiment_id)


def format_cell(value) -> str:
    """Numbers at 4 significant digits, integers without a trailing ``.0``, missing values blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


SHORT_ID = 8  # characters of a run id in a terminal table (the full id: --format csv, the MLflow UI)


def fit_table(frame: pd.DataFrame, title: str, width: int | None, keep: int = 1):
    """A rich table of ``frame`` no wider than ``width``, every cell whole: numbers at 4 significant digits
    and never cut (rich would print ``21…``), run ids shortened to their first 8 characters, and columns
    left out from the right, past the first ``keep``, until the rest fit. ``width`` None keeps every column.

    Returns ``(table, left_out)``: the caller says which columns were left out and how to see them.
    """
    from rich.cells import cell_len
    from rich.table import Table

    cells = {column: [_short_id(column, format_cell(v)) for v in frame[column]] for column in frame.columns}
    widths = {column: max([cell_len(str(column)), *map(cell_len, values)]) for column, values in cells.items()}
    shown, used = [], 1  # the table's left edge
    for position, column in enumerate(frame.columns):
        needed = widths[column] + 3  # one space either side and the column's right border
        if width is None or position < keep or used + needed <= width:
            shown.append(column)
            used += needed
    table = Table(title=title, min_width=used)  # every column whole, even past the terminal's width (--all)
    for column in shown:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left", no_wrap=True,
                         min_width=widths[column])
    for row in range(len(frame)):
        table.add_row(*[cells[column][row] for column in shown])
    return table, [str(c) for c in frame.columns if c not in shown]


def _short_id(column, text: str) -> str:
    return text[:SHORT_ID] if str(column).endswith("run_id") else text


def print_summary(spec, outcome, console=None) -> None:
    """The end-of-run table and the MLflow location (skipped by the CLI with ``-q``)."""

    console = console or make_console()
    results = outcome.results
    metric = spec.evaluation.metric or _logged_metric(results)
    best = best_per_model(results, metric, tuple(spec.sweep_values()) or PENALTY_AXES)
    if len(best):
        title = (f"{spec.name}: best grid point per model (by test_{metric}, "
                 f"{'higher' if HIGHER_IS_BETTER[metric] else 'lower'} is better)")
        keep = list(best.columns).index(f"test_{metric}") + 1  # the model, its grid point, its score
        table, left_out = fit_table(best, title, console.width, keep)
        console.print(table)
        if left_out:
            console.print(f"  not shown at this width: {', '.join(left_out)} (gbreg results {spec.name} --all)",
                          markup=False, highlight=False)
    if outcome.failures:
        console.print(f"[red]{len(outcome.failures)} trial(s) failed:[/red]")
        for name, error in outcome.failures:
            console.print(f"  {name}: {error}", markup=False, highlight=False)
    config = load_tracking_config()
    console.print(f"MLflow: experiment {spec.experiment_name!r} (id {outcome.experiment_id}), "
                  f"parent run {outcome.parent_run_id}", markup=False, highlight=False)
    console.print(f"  store: {config.tracking_uri}", markup=False, highlight=False)
    where = "" if config.is_server else "  (start the UI with `gbreg ui`)"
    console.print(f"  runs table: {runs_table_address(outcome.experiment_id, config)}{where}", markup=False,
                  highlight=False)


def _logged_metric(results: pd.DataFrame | None) -> str:
    if results is not None and len(results) and "metric" in results:
        return str(results["metric"].dropna().iloc[0])
    return "rmse"
