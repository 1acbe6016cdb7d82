"""The table printed at the end of ``gbreg run``: best grid point per model, tree size and sparsity
there, and where the results are in MLflow."""

from __future__ import annotations

from gbreg.metrics import HIGHER_IS_BETTER


def best_rows(results, metric: str):
    """The best row (by test metric) for each model."""
    column = f"test_{metric}"
    if results is None or not len(results) or column not in results.columns:
        return results.iloc[0:0] if results is not None else None
    ranked = results.dropna(subset=[column]).sort_values(column, ascending=not HIGHER_IS_BETTER[metric])
    return ranked.groupby("model", sort=False).head(1)


def print_summary(spec, outcome, console=None) -> None:
    from rich.table import Table

    from gbreg.console import make_console

    console = console or make_console()
    metric = outcome.results["metric"].iloc[0] if outcome.results is not None and "metric" in outcome.results \
        and len(outcome.results) else "rmse"
    best = best_rows(outcome.results, metric)
    if best is not None and len(best):
        table = Table(title=f"{spec.name}: best grid point per model (by test_{metric})")
        columns = ["model", "reg_alpha", "reg_lambda", f"test_{metric}", f"gap_{metric}", "leaves_per_tree",
                   "zero_leaf_fraction", "zero_coef_fraction", "n_features_used"]
        columns = [c for c in columns if c in best.columns]
        for column in columns:
            table.add_column(column)
        for _, row in best.iterrows():
            table.add_row(*[f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns])
        console.print(table)
    if outcome.failures:
        console.print(f"[red]{len(outcome.failures)} trial(s) failed:[/red]")
        for name, error in outcome.failures:
            console.print(f"  {name}: {error}", markup=False)
    from gbreg.config import load_tracking_config

    config = load_tracking_config()
    console.print(f"MLflow: experiment {spec.experiment_name!r} (id {outcome.experiment_id}), parent run "
                  f"{outcome.parent_run_id}, store {config.tracking_uri}", markup=False)
    console.print(f"Browse: gbreg ui, then http://{config.ui_host}:{config.ui_port}/#/experiments/"
                  f"{outcome.experiment_id}/runs?workflowType=machine_learning", markup=False)
