"""Per data set: each hypothesis judged on each booster library separately (pure functions over a study's
in-memory tables), and what describes the data set (size, features, task, noise).

A hypothesis is judged per library because the claims are about "gradient boosting", and a suite shows
which effects belong to the penalty and which to one library's way of growing trees. A hypothesis that
cannot apply to a library (its ``where`` selects another library, or the library has no such axis, as
CatBoost and HistGradientBoosting have no ``reg_alpha``) gives no row rather than an "inconclusive" one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gbreg.analysis.judgement import judge
from gbreg.analysis.verdicts import filter_rows
from gbreg.spec.hypotheses import Hypothesis

ROW_COLUMNS = ("hypothesis", "claim", "kind", "dataset", "library", "verdict", "effect", "ci_low", "ci_high",
               "p_value", "n_units", "df", "significance", "null_mean", "null_sd", "reason")


def dataset_verdicts(dataset: str, hypotheses: list[dict], numbers: list[int], results: pd.DataFrame | None,
                     splits: pd.DataFrame | None, axes: list[str]) -> pd.DataFrame:
    """One row per (hypothesis, library) that applies: ``hypotheses`` as in the study's ``expect``,
    ``numbers`` their numbers in the suite template; ``results`` one row per trial, ``splits`` one row per
    trial x split (the study's in-memory tables)."""
    rows: list[dict] = []
    if results is None or splits is None or not len(results):
        return pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    parsed = [Hypothesis.model_validate(raw) for raw in hypotheses]
    for library in booster_libraries(splits):
        cells, trials = _library_rows(splits, library), _library_rows(results, library)
        applying = [(number, h) for number, h in zip(numbers, parsed) if applies(h, cells, trials, axes)]
        if not applying:
            continue
        verdicts = judge(cells, [h for _, h in applying], axes, trials=trials)
        for (number, h), verdict in zip(applying, verdicts):
            rows.append({"hypothesis": number, "claim": h.describe(), "kind": h.kind, "dataset": dataset,
                         "library": library, "verdict": verdict.verdict, "effect": verdict.effect,
                         "ci_low": verdict.ci_low, "ci_high": verdict.ci_high, "p_value": verdict.p_value,
                         "n_units": verdict.n_units, "df": _degrees_of_freedom(h, verdict),
                         "significance": h.significance, **_null_numbers(verdict), "reason": verdict.reason})
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


def booster_libraries(table: pd.DataFrame) -> list[str]:
    if "library" not in table.columns:
        return []
    boosters = table[table["kind"] == "booster"] if "kind" in table.columns else table
    return sorted(str(name) for name in boosters["library"].dropna().unique())


def _library_rows(table: pd.DataFrame, library: str) -> pd.DataFrame:
    keep = table["library"] == library
    if "kind" in table.columns:
        keep &= table["kind"] == "booster"
    return table[keep]


def applies(h: Hypothesis, cells: pd.DataFrame, trials: pd.DataFrame, axes: list[str]) -> bool:
    """Whether the hypothesis can say anything about this library: rows left after its ``where``, values of
    its metric, and (a trend) more than one value of its axis, (a best point) every interior axis varied."""
    table = cells if h.measured in cells.columns else trials
    if h.measured not in table.columns:
        return False
    rows = filter_rows(table, h.conditions())
    if not len(rows) or pd.to_numeric(rows[h.measured], errors="coerce").notna().sum() == 0:
        return False
    varied = [h.along] if h.kind == "trend" else list(h.interior or axes) if h.kind == "best" else []
    return all(axis in rows.columns and rows[axis].dropna().nunique() > 1 for axis in varied)


def _degrees_of_freedom(h: Hypothesis, verdict) -> float:
    """The t interval's degrees of freedom, from which the standard error is recovered: n - 1 over the
    units for a trend, Satterthwaite's for a sign; the best point's interval is a bootstrap one (NaN: the
    meta-analysis uses a normal quantile)."""
    if h.kind == "trend":
        return float(verdict.n_units - 1) if verdict.n_units > 1 else float("nan")
    if h.kind == "sign":
        return float(verdict.numbers.get("df", verdict.n_units - 1 if verdict.n_units > 1 else np.nan))
    return float("nan")


def _null_numbers(verdict) -> dict[str, float]:
    """A best point's statistic on flat surfaces (the sign flips of its splits' residuals): its mean and SD,
    by which the suite centres and scales the effect before combining it (:func:`gbreg.suite.aggregate.
    standardized`); NaN for the other claims."""
    return {name: float(verdict.numbers.get(name, np.nan)) for name in ("null_mean", "null_sd")}


def dataset_descriptors(dataset: str, prepared) -> dict:
    """What a failing data set may have in common with others: rows, features, categoricals, missing
    values, task, and the generator's noise for synthetic data."""
    X = prepared.dataset.X
    spec = prepared.spec
    noise = spec.data.params.get("noise") if spec.data.source == "synthetic" else None
    return {"dataset": dataset, "study": spec.name, "task": prepared.task, "metric": prepared.metric,
            "n_rows": int(len(prepared.dataset.y)), "n_features": int(X.shape[1]),
            "n_categorical": len(prepared.dataset.categorical),
            "missing_share": float(X.isna().to_numpy().mean()) if X.size else 0.0,
            "noise": float(noise) if isinstance(noise, (int, float)) else np.nan,
            "source": prepared.dataset.source}
