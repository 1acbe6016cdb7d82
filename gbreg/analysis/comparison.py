"""Boosters next to their linear counterparts: ``comparison.csv`` and ``support_recovery.csv``.

Both are computed from the study's results table (one row per trial, as logged) after the sweep and
logged on the parent run. ``comparison.csv`` has one row per grid point and one block of columns per
booster library (``xgboost.test_rmse``, …) and per linear family (``linear.model``, ``linear.test_rmse``,
``logistic.…``, ``linear_svm.…``; see :data:`gbreg.models.linear.FAMILY`): the linear block of a row is the
counterpart whose penalty matches the row's (reg_alpha, reg_lambda). For synthetic data with known
informative features, ``support_recovery.csv`` scores the features each trial used (features in some
split for a booster, features with a nonzero coefficient for a linear model; under k-fold or repeats, in
any of its fits: its ``features_used`` param) against the true ones.
"""

from __future__ import annotations

import json

import pandas as pd

from gbreg.catalogue import METRICS_BY_TASK, PENALTY_AXES, shown_in
from gbreg.errors import UserInputError
from gbreg.models.linear import FAMILY
from gbreg.tracking.run_table import numeric_columns
from gbreg.tracking.store import retrying

COMPARISON_ARTIFACT = "comparison.csv"
SUPPORT_RECOVERY_ARTIFACT = "support_recovery.csv"

BOOSTER_STATS = shown_in("comparison", on="booster")
LINEAR_STATS = shown_in("comparison", on="linear")
SUPPORT_COLUMNS = ("support_precision", "support_recall")


def log_comparison(tracker, prepared, outcome) -> None:
    """Log comparison.csv (and support recovery for synthetic data) on the parent run."""
    results = outcome.results
    if results is None or results.empty or "kind" not in results.columns:
        return
    metrics = METRICS_BY_TASK[prepared.task]
    informative = prepared.dataset.informative
    other_axes = [axis for axis in prepared.spec.sweep_values() if axis not in PENALTY_AXES]
    support = support_recovery(results, informative) if informative else None
    table = comparison_table(results, metrics, other_axes, support)
    tracker.log_text(tracker.parent_run_id, table.to_csv(index=False), COMPARISON_ARTIFACT)
    if support is not None:
        tracker.log_text(tracker.parent_run_id, support.to_csv(index=False), SUPPORT_RECOVERY_ARTIFACT)


def comparison_frame(client, parent) -> pd.DataFrame:
    """The comparison table of a study's parent run (its comparison.csv)."""

    run_id = parent.info.run_id
    try:
        path = retrying(lambda: client.download_artifacts(run_id, COMPARISON_ARTIFACT))
    except Exception as exc:
        raise UserInputError(f"run {run_id} ({parent.info.run_name}) has no {COMPARISON_ARTIFACT}: the study "
                             "has not finished, or ran before comparisons were logged") from exc
    return pd.read_csv(path)


# ----------------------------------------------------------------------------------------------------
# the numbers


def block_of(row_kind: str, model: str) -> str:
    """The column block of a trial: its library for a booster, its family for a linear model."""
    if row_kind != "linear":
        return model

    return FAMILY[model]


def comparison_table(results: pd.DataFrame, metrics: tuple[str, ...], other_axes: list[str],
                     support: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per grid point; per block the metrics and the tree or coefficient statistics.

    A booster library's block joins on the penalties and the other axes it has values for (an axis only
    one library accepts applies to it alone: the other library's rows leave it empty); a linear block
    joins on the penalties only.
    """
    results = at_zero_without_penalty(numeric_columns(results))
    results["block"] = [block_of(kind, model) for kind, model in zip(results["kind"], results["model"])]
    if support is not None:
        results = results.merge(support[["run_id", *SUPPORT_COLUMNS]], on="run_id", how="left")
    boosters = results[results["kind"] != "linear"]
    linear = results[results["kind"] == "linear"]
    index = _grid_index(boosters if len(boosters) else linear, other_axes)
    table = index
    score_columns = [f"{part}_{m}" for m in metrics for part in ("test", "train", "gap")]
    for block, rows in boosters.groupby("block", sort=False):
        keys = _keys_with_values(rows, other_axes)
        table = _join_block(table, rows, block, keys, [*score_columns, *BOOSTER_STATS, *SUPPORT_COLUMNS])
    for block, rows in linear.groupby("block", sort=False):
        table = _join_block(table, rows, block, list(PENALTY_AXES),
                            ["model", *score_columns, *LINEAR_STATS, *SUPPORT_COLUMNS])
    return table.sort_values(list(index.columns), kind="stable").reset_index(drop=True)


def at_zero_without_penalty(results: pd.DataFrame) -> pd.DataFrame:
    """A library without a penalty (no L1 in CatBoost or HistGradientBoosting) trains at 0 on that axis:
    its rows sit there, in the row of the counterpart that matches them (as gbreg.plan matches it and the
    plots draw it), not in rows of their own with the penalty empty."""
    return results.assign(**{axis: results[axis].fillna(0.0) if axis in results else 0.0 for axis in PENALTY_AXES})


def _keys_with_values(rows: pd.DataFrame, other_axes: list[str]) -> list[str]:
    return [*PENALTY_AXES, *(a for a in other_axes if a in rows.columns and rows[a].notna().all())]


def _grid_index(rows: pd.DataFrame, other_axes: list[str]) -> pd.DataFrame:
    """Every grid point of the boosters: each library's own points, empty on the axes it does not have
    (XGBoost's rows have no ``min_split_gain``), so each trial's values appear in one row only."""
    axes = [a for a in other_axes if a in rows.columns]
    parts = []
    for _, group in rows.groupby("block", sort=False):
        keys = _keys_with_values(group, axes)
        points = group[keys].drop_duplicates()
        parts.append(points.reindex(columns=[*PENALTY_AXES, *axes]))
    return pd.concat(parts, ignore_index=True).drop_duplicates().reset_index(drop=True)


def _join_block(table: pd.DataFrame, rows: pd.DataFrame, block: str, keys: list[str],
                columns: list[str]) -> pd.DataFrame:
    present = [c for c in columns if c in rows.columns]
    part = rows[[*keys, *present]].drop_duplicates(keys, keep="last")
    part = part.rename(columns={c: f"{block}.{c}" for c in present})
    return table.merge(part, on=keys, how="left")


def support_recovery(results: pd.DataFrame, informative: list[str]) -> pd.DataFrame:
    """Per trial: the features it used against the true informative ones (precision, recall, exact).

    Precision is |used ∩ true| / |used| (NaN when nothing is used), recall |used ∩ true| / |true|.
    """
    true = set(informative)
    results = at_zero_without_penalty(numeric_columns(results))
    rows = []
    for _, trial in results.iterrows():
        used = _features_used(trial.get("features_used"))
        if used is None:
            continue
        hits = len(used & true)
        rows.append({
            "run_id": trial["run_id"], "run_name": trial.get("run_name"), "kind": trial["kind"],
            "model": trial["model"], "block": block_of(trial["kind"], trial["model"]),
            **{axis: trial[axis] for axis in PENALTY_AXES},
            "n_used": len(used), "n_true": len(true), "true_used": hits, "false_used": len(used) - hits,
            "support_precision": hits / len(used) if used else float("nan"),
            "support_recall": hits / len(true) if true else float("nan"),
            "support_exact": used == true,
            "missed": " ".join(sorted(true - used, key=_natural)),
            "extra": " ".join(sorted(used - true, key=_natural)),
        })
    return pd.DataFrame(rows)


def _features_used(value) -> set[str] | None:
    if not isinstance(value, str):
        return None
    try:
        names = json.loads(value)
    except json.JSONDecodeError:
        return None
    return {str(name) for name in names} if isinstance(names, list) else None


def _natural(name: str) -> tuple:
    """x2 before x10."""
    digits = name.lstrip("abcdefghijklmnopqrstuvwxyz_")
    return (name[: len(name) - len(digits)], int(digits)) if digits.isdigit() else (name, -1)
