"""Across data sets: the per-data-set verdicts of a suite combined per hypothesis and library by a
random-effects meta-analysis (:mod:`gbreg.analysis.meta`), the table ``suite_results.csv`` (one row per
hypothesis x data set x library, plus ``dataset = combined`` rows), and the suite run's artifacts.

A best-point hypothesis's effect (best interior minus best edge cell) is in the metric's own units (an RMSE
of one target is not an RMSE of another), and it is not centred on 0: on a flat surface the best of 12 edge
cells beats the best of 4 interior ones, by luck. So it is combined centred and scaled by what a flat
surface with the data set's own noise gives (the sign flips of its splits' residuals, as the study's exact
test draws them): ``(effect - null_mean) / null_sd``, ``scale = centred``. The raw effects over their
standard errors, as combined before, made 52 % of flat 20-data-set suites "contradicted" (docs/suites.md).
Trends (mean Spearman ρ) and signs (share positive minus share negative) are unitless and combined as is.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from gbreg.analysis.meta import DEFAULT_TOLERANCE, contrast_data_sets, meta_analyze, with_verdicts
from gbreg.spec.hypotheses import VERDICT_CODES, Hypothesis

COMBINED = "combined"
RESULT_COLUMNS = ("hypothesis", "claim", "kind", "dataset", "library", "verdict", "effect", "ci_low", "ci_high",
                  "p_value", "n_units", "k", "n_supported", "n_contradicted", "n_inconclusive", "tau2", "i2",
                  "q_p", "pi_low", "pi_high", "scale", "null_mean", "null_sd", "reason")


def combine(verdicts: pd.DataFrame, hypotheses: list[dict]) -> pd.DataFrame:
    """One row per (hypothesis, library) with ``dataset = combined``: the random-effects estimate, its
    interval and verdict, heterogeneity (τ², I², Q's p), the prediction interval for a new data set, and
    how many data sets supported, contradicted or left the claim inconclusive."""
    if verdicts is None or not len(verdicts):
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    parsed = {number: Hypothesis.model_validate(raw) for number, raw in enumerate(hypotheses, 1)}
    rows = []
    for (number, library), group in verdicts.groupby(["hypothesis", "library"], sort=True):
        h = parsed[int(number)]
        scaled, scale = standardized(group, h)
        combined = with_verdicts(meta_analyze(scaled, by=["hypothesis", "library"], alpha=h.significance),
                                 {int(number): h}).iloc[0]
        counts = group["verdict"].value_counts()
        rows.append({"hypothesis": int(number), "claim": h.describe(), "kind": h.kind, "dataset": COMBINED,
                     "library": library, "verdict": combined["verdict"], "effect": combined["estimate"],
                     "ci_low": combined["ci_low"], "ci_high": combined["ci_high"], "p_value": combined["verdict_p"],
                     "k": combined["k"], **{f"n_{name}": int(counts.get(name, 0)) for name in VERDICT_CODES},
                     "tau2": combined["tau2"], "i2": combined["i2"], "q_p": combined["q_p"],
                     "pi_low": combined["pi_low"], "pi_high": combined["pi_high"], "scale": scale,
                     "reason": combined["reason"]})
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def standardized(rows: pd.DataFrame, h: Hypothesis) -> tuple[pd.DataFrame, str]:
    """The rows to combine, and the scale they are on: as measured, or (a best point) centred, each data
    set's effect minus the mean of its statistic on flat surfaces, over their SD (columns ``null_mean``,
    ``null_sd``), with a standard error of 1. A row without them (or with a null SD of 0) has no finite
    effect and is left out of the combination."""
    if h.kind != "best":
        return rows.assign(alpha=h.significance), "effect"
    effect, mean, sd = (pd.to_numeric(rows[name], errors="coerce").to_numpy(float) if name in rows.columns
                        else np.full(len(rows), np.nan) for name in ("effect", "null_mean", "null_sd"))
    spread = np.isfinite(sd) & (sd > 0)
    z = np.where(spread, (effect - mean) / np.where(spread, sd, 1.0), np.nan)
    half = norm.ppf(1 - h.significance / 2)
    return rows.assign(effect=z, ci_low=z - half, ci_high=z + half, df=np.nan, alpha=h.significance), "centred"


def suite_results(verdicts: pd.DataFrame, combined: pd.DataFrame) -> pd.DataFrame:
    """``suite_results.csv``: the per-data-set rows, then the combined ones, in hypothesis order."""
    per_data_set = verdicts.assign(scale="effect") if verdicts is not None else pd.DataFrame()
    table = pd.concat([per_data_set.reindex(columns=list(RESULT_COLUMNS)),
                       combined.reindex(columns=list(RESULT_COLUMNS))], ignore_index=True)
    for column in ("hypothesis", "n_units", "k", "n_supported", "n_contradicted", "n_inconclusive"):
        table[column] = pd.to_numeric(table[column], errors="coerce").round().astype("Int64")
    table["_combined"] = table["dataset"] == COMBINED
    table = table.sort_values(["hypothesis", "_combined", "library", "dataset"], kind="stable")
    return table.drop(columns="_combined").reset_index(drop=True)


def where_it_fails(verdicts: pd.DataFrame, descriptors: pd.DataFrame) -> pd.DataFrame:
    """Per hypothesis, library and outcome (holds / fails / inconclusive): the data sets and the medians of
    their descriptors (rows, features, categoricals, missing share, noise) and their tasks."""
    if verdicts is None or not len(verdicts) or descriptors is None or not len(descriptors):
        return pd.DataFrame()
    described = descriptors.drop(columns=[c for c in ("study", "metric", "source") if c in descriptors.columns])
    return contrast_data_sets(verdicts, described, by=["hypothesis", "library"], on="dataset")


def suite_metrics(combined: pd.DataFrame) -> dict[str, float]:
    """The suite run's metrics: per hypothesis and library the combined verdict code (+1 / 0 / -1), its
    estimate and interval, and the counts of data sets per verdict."""
    metrics: dict[str, float] = {}
    for row in combined.itertuples():
        prefix = f"hypothesis_{row.hypothesis}_{row.library}"
        metrics[f"{prefix}_verdict"] = float(VERDICT_CODES[row.verdict])
        for name in ("effect", "ci_low", "ci_high", "i2", "n_supported", "n_contradicted", "n_inconclusive"):
            value = getattr(row, name)
            if value is not None and math.isfinite(float(value)):
                metrics[f"{prefix}_{name}"] = float(value)
    return metrics


def log_suite_results(tracker, suite, outcome) -> None:
    """The suite run's artifacts, from the studies' in-memory tables: suite_results.csv, suite_datasets.csv,
    a forest plot per hypothesis, suite_findings.md, and the combined verdicts as metrics."""
    from gbreg.report.forest import draw_forest, forest_file_name
    from gbreg.report.plots.drawing import save
    from gbreg.report.suite_findings import suite_findings_markdown
    from gbreg.tracking.suite_runs import (
        SUITE_DATASETS_ARTIFACT,
        SUITE_FINDINGS_ARTIFACT,
        SUITE_RESULTS_ARTIFACT,
    )

    combined = combine(outcome.verdicts, suite.hypotheses)
    outcome.results = suite_results(outcome.verdicts, combined)
    contrast = where_it_fails(outcome.verdicts, outcome.descriptors)
    tracker.log_text(outcome.results.to_csv(index=False), SUITE_RESULTS_ARTIFACT)
    datasets = outcome.descriptors.assign(study_run_id=outcome.descriptors["dataset"].map(outcome.studies))
    tracker.log_text(datasets.to_csv(index=False), SUITE_DATASETS_ARTIFACT)
    plots = []
    with tempfile.TemporaryDirectory(prefix="gbreg-suite-") as folder:
        for number, raw in enumerate(suite.hypotheses, 1):
            h = Hypothesis.model_validate(raw)
            rows = outcome.results[(outcome.results["hypothesis"] == number)]
            per_data_set, combined_rows = rows[rows["dataset"] != COMBINED], rows[rows["dataset"] == COMBINED]
            if not len(per_data_set):
                continue
            figure = draw_forest(_forest_scale(per_data_set, h), combined_rows, f"H{number}: {h.describe()}",
                                 h.kind, (h.tolerance or DEFAULT_TOLERANCE) if h.trend == "none" else None)
            path = Path(folder) / forest_file_name(number)
            save(figure, path)
            tracker.log_file(path, "plots")
            plots.append(path.name)
    tracker.log_text(suite_findings_markdown(suite, outcome, contrast, plots), SUITE_FINDINGS_ARTIFACT)
    tracker.log_metrics(suite_metrics(combined))


def _forest_scale(rows: pd.DataFrame, h: Hypothesis) -> pd.DataFrame:
    """A best point's per-data-set rows on the standardized scale its combined row is on."""
    return standardized(rows, h)[0] if h.kind == "best" else rows
