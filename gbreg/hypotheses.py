"""Hypotheses a study states under ``expect:``, tested on the sweep's results, with a verdict and evidence.

Three kinds of statement, written as YAML mappings (docs/hypotheses.md has the full vocabulary):

    {metric: M, trend: increasing | decreasing | none, along: AXIS, where: {...}}
    {metric: M, sign: positive | negative, where: {...}}
    {best: M, interior: [AXIS, ...], goal: min | max, where: {...}}

How each is tested (the statistics are stated in docs/hypotheses.md):

* trend: Spearman's ρ between the axis and the metric inside every stratum (all other sweep axes, the
  library and model, the repeat and the fold held fixed); the statistic is the mean ρ over strata. Its
  null distribution comes from permuting the metric values within each stratum; its 95% interval from
  resampling strata.
* sign: an exact two-sided sign test over the cells (trial x split), with a bootstrap interval for the
  median.
* best: the best cell of each stratum, re-found on bootstrap resamples of the splits; the share of
  resamples whose best cell is inside the grid along every listed axis decides.

Verdicts are ``supported``, ``contradicted`` or ``inconclusive`` (with the reason). Validation
(:func:`expectation_problems`) is pure Python; the tests import numpy/scipy/pandas when they run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np  # already loaded by gbreg.trees; pandas and scipy are imported where used
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gbreg.leaf_analysis import DISTRIBUTION_STAT_NAMES, SHRINKAGE_METRIC_NAMES
from gbreg.trees import TREE_STAT_NAMES

SCORE_PREFIXES = ("train_", "test_", "gap_")
TASK_METRICS = {"regression": ("rmse", "mae", "r2"), "binary": ("logloss", "auc", "accuracy"),
                "multiclass": ("logloss", "auc", "accuracy")}
LINEAR_METRICS = ("n_nonzero_coef", "zero_coef_fraction", "coef_l1", "coef_l2")
BOOSTER_METRICS = (*TREE_STAT_NAMES, *(n for n in SHRINKAGE_METRIC_NAMES if n.startswith("leaf_")))
SPLIT_METRICS = (*TREE_STAT_NAMES, *DISTRIBUTION_STAT_NAMES, *LINEAR_METRICS, "fit_seconds")
POST_SWEEP_METRICS = SHRINKAGE_METRIC_NAMES  # one value per trial, computed after the sweep
FILTER_COLUMNS = ("library", "model", "kind")
FINDINGS_ARTIFACT = "findings.md"
VERDICT_CODES = {"supported": 1, "inconclusive": 0, "contradicted": -1}

PERMUTATIONS = 4000
BOOTSTRAPS = 2000
MIN_SPLITS_FOR_BEST = 3


class Condition(BaseModel):
    """A comparison on one column of the results: ``{gt: 1}``, ``{in: [0, 10]}``, ..."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    eq: float | str | None = None
    ne: float | str | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    in_: list[float | str] | None = Field(None, alias="in")


class Hypothesis(BaseModel):
    """One statement under ``expect:``; exactly one of trend / sign / best is stated."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    metric: str | None = None
    trend: Literal["increasing", "decreasing", "none"] | None = None
    along: str | None = None
    sign: Literal["positive", "negative"] | None = None
    best: str | None = None
    interior: list[str] | None = None
    goal: Literal["min", "max"] | None = None
    where: dict[str, Any] = Field(default_factory=dict)
    significance: float = Field(0.05, gt=0, lt=0.5)
    tolerance: float | None = Field(None, gt=0, le=1)

    @property
    def kind(self) -> str:
        return "best" if self.best else "sign" if self.sign else "trend"

    @property
    def measured(self) -> str:
        return self.best or self.metric or ""

    def conditions(self) -> dict[str, Condition]:
        return {key: _condition(value) for key, value in self.where.items()}

    def describe(self) -> str:
        if self.name:
            return self.name
        if self.kind == "trend":
            text = (f"{self.metric} has no trend along {self.along}" if self.trend == "none"
                    else f"{self.metric} is {self.trend} along {self.along}")
        elif self.kind == "sign":
            text = f"{self.metric} is {self.sign}"
        else:
            text = f"the {self.goal_for()} of {self.best} is inside the grid along {', '.join(self.interior or [])}"
        return text + (f" where {describe_where(self.where)}" if self.where else "")

    def goal_for(self) -> str:
        if self.goal:
            return "max" if self.goal == "max" else "min"
        from gbreg.metrics import HIGHER_IS_BETTER

        prefix, _, suffix = (self.best or "").partition("_")
        return "max" if prefix in ("train", "test") and HIGHER_IS_BETTER.get(suffix, False) else "min"


def _condition(value: Any) -> Condition:
    return Condition.model_validate(value) if isinstance(value, dict) else Condition(eq=value)


def describe_where(where: dict) -> str:
    parts = []
    for key, value in where.items():
        if not isinstance(value, dict):
            parts.append(f"{key} = {value}")
            continue
        symbols = {"eq": "=", "ne": "≠", "gt": ">", "ge": "≥", "lt": "<", "le": "≤", "in": "in"}
        parts += [f"{key} {symbols.get(op, op)} {bound}" for op, bound in value.items()]
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------------------
# validation


def valid_metrics(spec) -> set[str]:
    """Every metric a hypothesis may name for this spec (task-suffixed ones match the task if known)."""
    task = known_task(spec)
    suffixes = TASK_METRICS[task] if task else tuple({m for ms in TASK_METRICS.values() for m in ms})
    scored = {f"{prefix}{m}" for prefix in SCORE_PREFIXES for m in suffixes}
    per_split = scored | set(SPLIT_METRICS)
    return per_split | {f"{name}_std" for name in per_split} | set(POST_SWEEP_METRICS)


def known_task(spec) -> str | None:
    """The task when it is known before loading data: stated, a bundled data set's, or a generator's."""
    from gbreg.spec import SKLEARN_DATASETS

    if spec.task:
        return spec.task
    if spec.data.source == "sklearn":
        return SKLEARN_DATASETS.get(spec.data.name or "")
    if spec.data.source == "synthetic":
        return "binary" if spec.data.generator == "classification" else "regression"  # same metric names
    return None


def expectation_problems(spec) -> list[tuple[str, str]]:
    """Spec problems in ``expect:`` as (key path, message); called at validation time."""
    problems: list[tuple[str, str]] = []
    for index, raw in enumerate(spec.expect):
        path = f"expect[{index}]"
        if not isinstance(raw, dict):
            problems.append((path, f"must be a mapping such as {{metric: n_leaves, trend: decreasing, along: "
                                   f"reg_lambda}}, got {raw!r}"))
            continue
        try:
            hypothesis = Hypothesis.model_validate(raw)
        except ValidationError as exc:
            problems += [(f"{path}.{where}" if where else path, message) for where, message in _model_problems(exc)]
            continue
        problems += _hypothesis_problems(hypothesis, spec, path)
    return problems


def _model_problems(exc: ValidationError) -> list[tuple[str, str]]:
    from gbreg.spec import format_path, unknown_key_message

    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            valid = list(Hypothesis.model_fields)
            message = unknown_key_message(str(loc[-1]), valid, "hypothesis key")
        elif error["type"] == "literal_error":
            message = f"must be one of {error['ctx']['expected']}, got {error['input']!r}"
        else:
            message = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {error['input']!r}"
        problems.append((format_path(loc), message))
    return problems


def _hypothesis_problems(h: Hypothesis, spec, path: str) -> list[tuple[str, str]]:
    stated = [kind for kind, present in (("trend", h.trend or h.along), ("sign", h.sign),
                                         ("best", h.best or h.interior)) if present]
    if not stated:
        return [(path, "states nothing to test; give {metric, trend, along}, {metric, sign} or {best, interior}")]
    if len(stated) > 1:
        return [(path, f"mixes {' and '.join(stated)}; one hypothesis states one of trend, sign or best "
                       "(write two hypotheses)")]
    problems = {"trend": _trend_problems, "sign": _sign_problems, "best": _best_problems}[stated[0]](h, spec, path)
    if h.tolerance is not None and h.trend != "none":
        problems.append((f"{path}.tolerance", "applies to trend: none only (the largest |ρ| still called no trend)"))
    return problems + _where_problems(h, spec, path)


def _trend_problems(h: Hypothesis, spec, path: str) -> list[tuple[str, str]]:
    problems = _required(h, path, ("metric", "trend", "along"), "a trend")
    problems += _forbidden(h, path, ("goal",), "a trend")
    if h.metric:
        problems += _metric_problems(h.metric, spec, f"{path}.metric")
    if h.along:
        problems += _axis_problems(h.along, spec, f"{path}.along", minimum=2)
    return problems


def _sign_problems(h: Hypothesis, spec, path: str) -> list[tuple[str, str]]:
    problems = _required(h, path, ("metric",), "a sign") + _forbidden(h, path, ("goal",), "a sign")
    if h.metric:
        problems += _metric_problems(h.metric, spec, f"{path}.metric")
    return problems


def _best_problems(h: Hypothesis, spec, path: str) -> list[tuple[str, str]]:
    problems = _required(h, path, ("best", "interior"), "a best point")
    if h.metric:
        problems.append((f"{path}.metric", f"a best-point hypothesis names its metric under best: (best: {h.metric})"))
    if h.best:
        problems += _metric_problems(h.best, spec, f"{path}.best")
    for i, axis in enumerate(h.interior or []):
        problems += _axis_problems(axis, spec, f"{path}.interior[{i}]", minimum=3)
    if h.interior is not None and not h.interior:
        problems.append((f"{path}.interior", "list at least one sweep axis"))
    return problems


def _required(h: Hypothesis, path: str, keys: tuple[str, ...], what: str) -> list[tuple[str, str]]:
    return [(f"{path}.{key}", f"required for {what}") for key in keys if getattr(h, key) in (None, "")]


def _forbidden(h: Hypothesis, path: str, keys: tuple[str, ...], what: str) -> list[tuple[str, str]]:
    return [(f"{path}.{key}", f"does not apply to {what}") for key in keys if getattr(h, key) is not None]


def _metric_problems(name: str, spec, path: str) -> list[tuple[str, str]]:
    from gbreg.spec import unknown_key_message

    valid = valid_metrics(spec)
    if name in valid:
        if name.removesuffix("_std") in LINEAR_METRICS or name.startswith("coef_"):
            if not spec.counterparts:
                return [(path, f"{name!r} is measured on linear counterparts and the spec has none")]
        return []
    prefix, _, suffix = name.partition("_")
    task = known_task(spec)
    if f"{prefix}_" in SCORE_PREFIXES and task and any(suffix in ms for ms in TASK_METRICS.values()):
        return [(path, f"{name!r} does not fit task {task!r}; the task's metrics are "
                       f"{', '.join(TASK_METRICS[task])}")]
    return [(path, unknown_key_message(name, sorted(valid), "metric"))]


def _axis_problems(axis: str, spec, path: str, minimum: int) -> list[tuple[str, str]]:
    from gbreg.spec import unknown_key_message

    axes = spec.sweep_values()
    if axis not in axes:
        if not axes:
            return [(path, f"{axis!r} is not a sweep axis (the sweep is empty)")]
        return [(path, unknown_key_message(axis, list(axes), "sweep axis"))]
    values = axes[axis]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        return [(path, f"sweep axis {axis!r} is not numeric; a trend or an edge needs ordered numbers")]
    if len(values) < minimum:
        return [(path, f"sweep.{axis} has {len(values)} value(s); this needs at least {minimum}")]
    return []


def _where_problems(h: Hypothesis, spec, path: str) -> list[tuple[str, str]]:
    from gbreg.params import accepted_names, accepts
    from gbreg.spec import unknown_key_message

    libraries = list(spec.libraries())
    axes = spec.sweep_values()
    columns = set(FILTER_COLUMNS) | set(axes) | {"reg_alpha", "reg_lambda"}
    for library in libraries:
        columns |= accepted_names(library)
    problems = []
    for key, raw in h.where.items():
        here = f"{path}.where.{key}"
        if key not in columns:
            problems.append((here, unknown_key_message(key, sorted(columns), "column to filter on")))
            continue
        try:
            condition = _condition(raw)
        except ValidationError as exc:
            problems += [(f"{here}.{where}" if where else here, message) for where, message in _model_problems(exc)]
            continue
        problems += _condition_problems(key, condition, spec, here)
        if key == "library" and condition.eq is not None:
            for axis in [h.along, *(h.interior or [])]:
                if axis and condition.eq in libraries and not accepts(str(condition.eq), axis):
                    problems.append((here, f"{condition.eq} has no parameter {axis!r}; the hypothesis would "
                                           "have no cells"))
        if key in axes and key in (h.along, *(h.interior or [])):
            kept = [v for v in axes[key] if _matches_condition(v, condition)]
            needed = 3 if key in (h.interior or []) else 2
            if len(kept) < needed:
                problems.append((here, f"keeps {len(kept)} value(s) of {key!r}, the axis the hypothesis varies; "
                                       f"it needs at least {needed}"))
    return problems


def _condition_problems(key: str, condition: Condition, spec, here: str) -> list[tuple[str, str]]:
    problems = []
    known = {"library": [*spec.libraries(), "sklearn"], "model": [*spec.libraries(), *spec.counterparts],
             "kind": ["booster", "linear"]}.get(key)
    for op in ("eq", "ne"):
        value = getattr(condition, op)
        if known is not None and value is not None and value not in known:
            from gbreg.spec import unknown_key_message

            problems.append((f"{here}.{op}" if op != "eq" else here, unknown_key_message(str(value), known, key)))
    lows = [v for v in (condition.gt, condition.ge) if v is not None]
    highs = [v for v in (condition.lt, condition.le) if v is not None]
    if lows and highs and max(lows) >= min(highs) and not (condition.ge is not None and condition.le is not None
                                                           and condition.ge == condition.le):
        problems.append((here, f"the range is empty ({describe_where({key: condition.model_dump(exclude_none=True)})})"))
    if known is not None and (lows or highs):
        problems.append((here, f"{key!r} is a name; compare it with eq, ne or in"))
    return problems


def _matches_condition(value: Any, condition: Condition) -> bool:
    checks = (("eq", lambda v, b: v == b), ("ne", lambda v, b: v != b), ("gt", lambda v, b: v > b),
              ("ge", lambda v, b: v >= b), ("lt", lambda v, b: v < b), ("le", lambda v, b: v <= b))
    for op, check in checks:
        bound = getattr(condition, op)
        if bound is not None and not check(value, bound):
            return False
    return condition.in_ is None or value in condition.in_


# ----------------------------------------------------------------------------------------------------
# testing


@dataclass
class Verdict:
    index: int
    hypothesis: Hypothesis
    verdict: str
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    table: str = ""


def evaluate_hypotheses(hypotheses: list[Hypothesis], results, splits, axes: list[str],
                        seed: int = 0) -> list[Verdict]:
    """Test each hypothesis. ``results``: one row per trial; ``splits``: one row per (trial, split) with
    ``repeat`` and ``fold`` columns (the per-split values where a metric has them)."""

    verdicts = []
    for index, h in enumerate(hypotheses, 1):
        table = splits if h.measured in splits.columns else results  # post-sweep metrics: one row per trial
        rows = filter_rows(table, h.conditions())
        test = {"trend": trend_verdict, "sign": sign_verdict, "best": best_verdict}[h.kind]
        rng = np.random.default_rng([seed, index])
        if h.measured not in rows.columns or rows[h.measured].notna().sum() == 0:
            verdicts.append(Verdict(index, h, "inconclusive", f"no trial has a value of {h.measured!r} "
                                                              "in the rows the hypothesis selects"))
            continue
        verdicts.append(test(index, h, rows, axes, rng))
    return verdicts


def filter_rows(table, conditions: dict[str, Condition]):
    import pandas as pd

    keep = pd.Series(True, index=table.index)
    for key, condition in conditions.items():
        if key not in table.columns:
            return table.iloc[0:0]
        column = table[key]
        numeric = pd.to_numeric(column, errors="coerce")
        for op in ("eq", "ne", "gt", "ge", "lt", "le"):
            bound = getattr(condition, op)
            if bound is None:
                continue
            values = column.astype(str) if isinstance(bound, str) else numeric
            keep &= {"eq": values == bound, "ne": values != bound, "gt": values > bound, "ge": values >= bound,
                     "lt": values < bound, "le": values <= bound}[op].fillna(op == "ne")
        if condition.in_ is not None:
            keep &= column.isin(condition.in_) | numeric.isin([v for v in condition.in_ if not isinstance(v, str)])
    return table[keep]


def _strata_columns(rows, axes: list[str], varied: set[str], splits: bool = True) -> list[str]:
    """What is held fixed while the varied axes move: the model (which names its library), the other
    sweep axes, and the repeat and fold when the metric has per-split values."""
    columns = ["model"] if "model" in rows.columns else [c for c in ("library",) if c in rows.columns]
    columns += [a for a in axes if a not in varied and a in rows.columns and a not in columns]
    if splits:
        columns += [c for c in ("repeat", "fold") if c in rows.columns]
    return columns


def _stratum_labels(rows, columns: list[str]):
    """One readable label per row, e.g. ``xgboost · reg_lambda=10 · r0 f2`` (NaN = axis not applicable)."""
    import pandas as pd

    if not columns:
        return pd.Series("all", index=rows.index)
    parts = []
    for column in columns:
        values = rows[column].map(_fmt)
        if column in ("library", "model"):
            parts.append(values)
        elif column == "repeat":
            parts.append("r" + values)
        elif column == "fold":
            parts.append("f" + values)
        else:
            parts.append(f"{column}=" + values)
    label = parts[0]
    for part in parts[1:]:
        label = label + " · " + part
    return label


def _fmt(value) -> str:
    if isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "–"
    return f"{number:.4g}"


def _zscore(values):

    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values, dtype="float64")


def _p_text(p: float, resamples: int) -> str:
    return f"p ≤ {1 / (resamples + 1):.2g}" if p <= 1 / (resamples + 1) + 1e-15 else f"p = {p:.2g}"


# ---------------------------------------------------------------------------------------- trend


def trend_verdict(index: int, h: Hypothesis, rows, axes: list[str], rng) -> Verdict:
    """Mean within-stratum Spearman ρ; permutation p (metric permuted within strata); stratum bootstrap CI."""
    import pandas as pd
    from scipy.stats import rankdata

    axis, metric = h.along, h.metric
    strata = _strata_columns(rows, axes, {axis})
    data = rows.assign(**{axis: pd.to_numeric(rows[axis], errors="coerce"),
                          metric: pd.to_numeric(rows[metric], errors="coerce")}).dropna(subset=[axis, metric])
    labels = _stratum_labels(data, strata)
    usable = []
    for label, group in data.groupby(labels, sort=False):
        if group[axis].nunique() >= 2:
            zx = _zscore(rankdata(group[axis].to_numpy()))
            zy = _zscore(rankdata(group[metric].to_numpy()))
            usable.append((label, zx, zy, float(zx @ zy / len(zx))))
    table = _trend_table(data, strata, axis, metric, {label: rho for label, _, _, rho in usable})
    if not usable:
        return Verdict(index, h, "inconclusive", f"no stratum has two or more values of {axis} with a value of "
                                                 f"{metric}", table=table)
    arrangements = sum(math.lgamma(len(zx) + 1) for _, zx, _, _ in usable)
    rhos = np.array([rho for *_, rho in usable])
    mean_rho = float(rhos.mean())
    null = np.zeros(PERMUTATIONS)
    for _, zx, zy, _ in usable:
        shuffled = rng.permuted(np.broadcast_to(zy, (PERMUTATIONS, len(zy))).copy(), axis=1)
        null += shuffled @ zx / len(zx)
    null /= len(usable)
    p = float((1 + np.sum(np.abs(null) >= abs(mean_rho) - 1e-12)) / (PERMUTATIONS + 1))
    boot = rhos[rng.integers(0, len(rhos), (BOOTSTRAPS, len(rhos)))].mean(axis=1)
    low, high = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
    expected = {"increasing": 1, "decreasing": -1, "none": 0}[h.trend]
    agree = int(np.sum(np.sign(rhos) == expected)) if expected else int(np.sum(np.abs(rhos) <= _tolerance(h)))
    numbers = {"statistic": mean_rho, "ci_low": low, "ci_high": high, "p_value": p, "n_strata": len(usable),
               "n_cells": int(sum(len(zx) for _, zx, _, _ in usable)), "strata_agreeing": agree}
    evidence = (f"mean Spearman ρ = {mean_rho:+.2f} (95% CI {low:+.2f} to {high:+.2f}), permutation "
                f"{_p_text(p, PERMUTATIONS)}, over {len(usable)} strata ({numbers['n_cells']} cells; held fixed: "
                f"{', '.join(strata) or 'nothing'}); {agree} of {len(usable)} strata "
                f"{'have ρ of the stated sign' if expected else f'have |ρ| ≤ {_tolerance(h):g}'}")
    if math.exp(arrangements) < 2 / h.significance:
        return Verdict(index, h, "inconclusive", f"too few cells to reach p < {h.significance:g} by permutation; "
                                                 + evidence, numbers, table)
    return Verdict(index, h, *_trend_decision(h, mean_rho, p, low, high, evidence), numbers, table)


def _tolerance(h: Hypothesis) -> float:
    return h.tolerance if h.tolerance is not None else 0.3


def _trend_decision(h: Hypothesis, mean_rho: float, p: float, low: float, high: float,
                    evidence: str) -> tuple[str, str]:
    significant = p < h.significance
    if h.trend == "none":
        if significant:
            direction = "increases" if mean_rho > 0 else "decreases"
            return "contradicted", f"{h.metric} {direction} along {h.along}: " + evidence
        if -_tolerance(h) <= low and high <= _tolerance(h):
            return "supported", f"no trend, and the CI excludes |ρ| > {_tolerance(h):g}: " + evidence
        return "inconclusive", f"no significant trend, but the CI does not rule out |ρ| > {_tolerance(h):g}: " + evidence
    expected = 1 if h.trend == "increasing" else -1
    if not significant:
        return "inconclusive", f"no significant trend at level {h.significance:g}: " + evidence
    if np.sign(mean_rho) == expected:
        return "supported", evidence
    other = "decreasing" if expected == 1 else "increasing"
    return "contradicted", f"{h.metric} is {other} along {h.along}, not {h.trend}: " + evidence


def _trend_table(data, strata: list[str], axis: str, metric: str, rho_by_label: dict) -> str:
    """Markdown: one row per configuration (splits averaged), one column per axis value, mean ρ."""
    config = [c for c in strata if c not in ("repeat", "fold")]
    data = data.assign(_config=_stratum_labels(data, config), _stratum=_stratum_labels(data, strata))
    pivot = data.pivot_table(index="_config", columns=axis, values=metric, aggfunc="mean", sort=False)
    rho = data.drop_duplicates("_stratum").assign(_rho=lambda f: f["_stratum"].map(rho_by_label))
    rho = rho.groupby("_config", sort=False)["_rho"].mean()
    header = [f"{_fmt(v)}" for v in pivot.columns]
    lines = [f"| {', '.join(config) or 'all'} \\ {axis} | " + " | ".join(header) + " | mean ρ |",
             "|---" * (len(header) + 2) + "|"]
    for label, row in list(pivot.iterrows())[:40]:
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in row) + f" | {_fmt(rho.get(label, float('nan')))} |")
    if len(pivot) > 40:
        lines.append(f"| … {len(pivot) - 40} more | " + " | " * len(header) + " |")
    per_split = "repeat" in strata
    return f"{metric}{' (mean over splits)' if per_split else ''}:\n\n" + "\n".join(lines)


# ----------------------------------------------------------------------------------------- sign


def sign_verdict(index: int, h: Hypothesis, rows, axes: list[str], rng) -> Verdict:
    """Exact two-sided sign test over the cells; bootstrap CI of the median."""
    import pandas as pd
    from scipy.stats import binomtest

    metric = h.metric
    values = pd.to_numeric(rows[metric], errors="coerce")
    data = rows.assign(**{metric: values}).dropna(subset=[metric])
    x = data[metric].to_numpy()
    n_pos, n_neg = int(np.sum(x > 0)), int(np.sum(x < 0))
    n = n_pos + n_neg
    median = float(np.median(x))
    boot = np.median(x[rng.integers(0, len(x), (BOOTSTRAPS, len(x)))], axis=1)
    low, high = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
    p = float(binomtest(n_pos, n, 0.5).pvalue) if n else 1.0
    numbers = {"statistic": median, "ci_low": low, "ci_high": high, "p_value": p, "n_cells": len(x),
               "n_positive": n_pos, "n_negative": n_neg}
    evidence = (f"{n_pos} positive and {n_neg} negative of {len(x)} cells, median {median:+.4g} (95% CI "
                f"{low:+.4g} to {high:+.4g}), sign test p = {p:.2g}")
    table = _sign_table(data, _strata_columns(data, axes, set(), splits=False), metric)
    if n == 0 or 2 * 0.5**n >= h.significance:
        return Verdict(index, h, "inconclusive", f"too few nonzero cells to reach p < {h.significance:g}; "
                       + evidence, numbers, table)
    if p >= h.significance:
        return Verdict(index, h, "inconclusive", "no significant sign: " + evidence, numbers, table)
    positive = n_pos > n_neg
    if positive == (h.sign == "positive"):
        return Verdict(index, h, "supported", evidence, numbers, table)
    return Verdict(index, h, "contradicted", f"{metric} is mostly {'positive' if positive else 'negative'}: "
                   + evidence, numbers, table)


def _sign_table(data, config: list[str], metric: str) -> str:
    grouped = data.assign(_config=_stratum_labels(data, config)).groupby("_config", sort=False)[metric]
    summary = grouped.agg(["mean", "min", "max", "count", lambda v: int((v > 0).sum())])
    summary.columns = ["mean", "min", "max", "cells", "positive"]
    lines = [f"| {', '.join(config) or 'all'} | mean | min | max | cells | positive |", "|---" * 6 + "|"]
    for label, row in list(summary.iterrows())[:40]:
        lines.append(f"| {label} | {_fmt(row['mean'])} | {_fmt(row['min'])} | {_fmt(row['max'])} | "
                     f"{int(row['cells'])} | {int(row['positive'])} |")
    if len(summary) > 40:
        lines.append(f"| … {len(summary) - 40} more | | | | | |")
    return f"{metric} by configuration:\n\n" + "\n".join(lines)


# ----------------------------------------------------------------------------------------- best


def best_verdict(index: int, h: Hypothesis, rows, axes: list[str], rng) -> Verdict:
    """Per configuration: where is the best cell, and how often is it interior when splits are resampled."""
    import pandas as pd

    metric, interior = h.best, list(h.interior or [])
    config = _strata_columns(rows, axes, set(interior), splits=False)
    data = rows.assign(**{metric: pd.to_numeric(rows[metric], errors="coerce")}).dropna(subset=[metric])
    split_id = (data["repeat"].astype(str) + "/" + data["fold"].astype(str)) if "repeat" in data.columns else "0/0"
    data = data.assign(_config=_stratum_labels(data, config), _split=split_id)
    outcomes = [_best_in_config(label, group, interior, metric, h, rng)
                for label, group in data.groupby("_config", sort=False)]
    verdicts = [o["verdict"] for o in outcomes]
    if not outcomes:
        return Verdict(index, h, "inconclusive", "no cells")
    if "contradicted" in verdicts:
        verdict = "contradicted"
    elif all(v == "supported" for v in verdicts):
        verdict = "supported"
    else:
        verdict = "inconclusive"
    shares = [o["share"] for o in outcomes if o["share"] is not None]
    numbers = {"statistic": min(shares) if shares else float("nan"), "n_configurations": len(outcomes),
               "n_supported": verdicts.count("supported"), "n_contradicted": verdicts.count("contradicted")}
    summary = (f"{verdicts.count('supported')} of {len(outcomes)} configurations have their {h.goal_for()} inside "
               f"the grid in ≥ {1 - h.significance:.0%} of split resamples, {verdicts.count('contradicted')} at an "
               f"edge in ≥ {1 - h.significance:.0%}")
    reasons = sorted({o["reason"] for o in outcomes if o["reason"]})
    if reasons:
        summary += "; " + "; ".join(reasons)
    lines = [f"| {', '.join(config) or 'all'} | best cell ({', '.join(interior)}) | {metric} | interior share | verdict |",
             "|---" * 5 + "|"]
    for o in outcomes[:40]:
        share = "–" if o["share"] is None else f"{o['share']:.2f}"
        lines.append(f"| {o['label']} | {o['cell']} | {_fmt(o['score'])} | {share} | {o['verdict']} |")
    return Verdict(index, h, verdict, summary, numbers, "\n".join(lines))


def _best_in_config(label: str, group, interior: list[str], metric: str, h: Hypothesis, rng) -> dict:
    import pandas as pd

    cells = group.pivot_table(index=interior, columns="_split", values=metric, aggfunc="mean").dropna(axis=1)
    frame = cells.index.to_frame(index=False)
    at_edge = np.zeros(len(cells), dtype=bool)
    for axis in interior:
        values = pd.to_numeric(frame[axis], errors="coerce")
        at_edge |= ((values == values.min()) | (values == values.max())).to_numpy()
    matrix = cells.to_numpy()
    pick = np.argmax if h.goal_for() == "max" else np.argmin
    best = int(pick(matrix.mean(axis=1)))
    cell = ", ".join(f"{a}={_fmt(v)}" for a, v in zip(interior, frame.iloc[best]))
    outcome = {"label": label, "cell": cell + (" (edge)" if at_edge[best] else " (interior)"),
               "score": float(matrix[best].mean()), "share": None, "verdict": "inconclusive", "reason": ""}
    if any(frame[a].nunique() < 3 for a in interior):
        outcome["reason"] = "a configuration has fewer than 3 values along an interior axis"
        return outcome
    n_splits = matrix.shape[1]
    if n_splits < MIN_SPLITS_FOR_BEST:
        outcome["reason"] = (f"{n_splits} split(s) per cell: at least {MIN_SPLITS_FOR_BEST} (repeats or folds) are "
                             "needed to measure how stable the best cell is")
        return outcome
    draws = rng.integers(0, n_splits, (BOOTSTRAPS, n_splits))
    means = matrix[:, draws].mean(axis=2)  # cells x bootstraps
    share = float(np.mean(~at_edge[pick(means, axis=0)]))
    outcome["share"] = share
    if share >= 1 - h.significance:
        outcome["verdict"] = "supported"
    elif share <= h.significance:
        outcome["verdict"] = "contradicted"
    return outcome

# ----------------------------------------------------------------------------------------------------
# after the sweep: shrinkage, findings.md, verdicts on the parent run


def add_shrinkage_columns(tracker, prepared, outcome) -> list[str]:
    """Add the shrinkage columns to ``outcome.results`` (once). Returns the models that have no
    reg_alpha = reg_lambda = 0 trial: no reference, so no shrinkage."""
    from gbreg.leaf_analysis import shrinkage_table
    from gbreg.spec import PENALTY_AXES

    results = outcome.results
    other_axes = [axis for axis in prepared.spec.sweep_values() if axis not in PENALTY_AXES]
    table, missing = shrinkage_table(numeric_columns(results), other_axes)
    if "leaf_shrinkage" not in results.columns and "coef_shrinkage" not in results.columns:
        for column in table.columns:
            results[column] = table[column]
    return missing


def log_shrinkage_metrics(tracker, prepared, outcome) -> None:
    """Log the shrinkage columns (see :func:`add_shrinkage_columns`) on each child run."""
    results = outcome.results
    columns = [c for c in SHRINKAGE_METRIC_NAMES if c in results.columns]
    for position, run_id in enumerate(results.get("run_id", [])):
        metrics = {k: float(v) for k, v in results[columns].iloc[position].items() if math.isfinite(float(v))}
        if metrics:
            tracker.log_child_metrics(run_id, metrics)


def log_findings(tracker, prepared, outcome) -> None:
    """Test each hypothesis on the results; log findings.md and verdicts on the parent run."""
    results = outcome.results
    if results is None or not len(results):
        return
    missing = add_shrinkage_columns(tracker, prepared, outcome)
    spec = prepared.spec
    if not spec.expect:
        return
    hypotheses = [Hypothesis.model_validate(raw) for raw in spec.expect]
    results = numeric_columns(outcome.results)
    splits = numeric_columns(split_table(tracker.client, results, getattr(outcome, "folds", None)))
    verdicts = evaluate_hypotheses(hypotheses, results, splits, list(spec.sweep_values()), seed=spec.seed)
    plots = _plot_artifacts(tracker.client, tracker.parent_run_id)
    text = findings_markdown(prepared, results, splits, verdicts, plots, missing)
    tracker.log_text(tracker.parent_run_id, text, FINDINGS_ARTIFACT)
    metrics, tags = verdict_metrics(verdicts)
    tracker.log_child_metrics(tracker.parent_run_id, metrics, tags)


def numeric_columns(frame):
    """A copy with every column whose values all parse as numbers made numeric (params come back from
    MLflow as strings: sorting '10' before '2' would scramble an axis)."""
    import pandas as pd

    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]) or column in ("run_id", "run_name", "trial_key"):
            continue
        converted = pd.to_numeric(frame[column], errors="coerce")
        if converted.notna().sum() == frame[column].notna().sum():
            frame[column] = converted
    return frame


def split_table(client, results, folds=None):
    """One row per (trial, split): the trial's parameters with that split's metrics.

    Uses ``folds`` (a per-split table with a ``run_id`` column) when the runner provides it; otherwise
    reads each child's ``folds.csv`` (present when a study has more than one split). One split: the
    results table itself, with repeat = fold = 0.
    """
    import os
    import tempfile
    from pathlib import Path

    import pandas as pd

    from gbreg.store import retrying
    from gbreg.track import FOLDS_ARTIFACT

    if not any(column.endswith("_std") for column in results.columns):
        return results.assign(repeat=0, fold=0)
    if folds is None:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # as gbreg.console does
        frames = []
        with tempfile.TemporaryDirectory(prefix="gbreg-folds-") as folder:
            for run_id in results["run_id"]:
                target = Path(folder) / run_id
                target.mkdir()
                path = retrying(lambda: client.download_artifacts(run_id, FOLDS_ARTIFACT, str(target)))
                frames.append(pd.read_csv(path).assign(run_id=run_id))
        folds = pd.concat(frames, ignore_index=True)
    trial_level = [c for c in results.columns if c == "run_id" or c not in folds.columns
                   and not c.endswith("_std") and not c.startswith("curve_") and c not in POST_SWEEP_METRICS]
    return folds.merge(results[trial_level], on="run_id", how="inner")


def _plot_artifacts(client, run_id: str) -> list[str]:
    try:
        return [entry.path for entry in client.list_artifacts(run_id, "plots") if entry.path.endswith(".png")]
    except Exception:  # noqa: BLE001 - no plots is not an error for the findings
        return []


def verdict_metrics(verdicts: list[Verdict]) -> tuple[dict[str, float], dict[str, str]]:
    """Parent-run metrics (verdict code +1/0/-1, statistic, p) and tags (verdict and statement)."""
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    for v in verdicts:
        metrics[f"hypothesis_{v.index}_verdict"] = VERDICT_CODES[v.verdict]
        for name in ("statistic", "p_value"):
            if name in v.numbers:
                metrics[f"hypothesis_{v.index}_{name}"] = v.numbers[name]
        tags[f"gbreg.hypothesis.{v.index}"] = f"{v.verdict}: {v.hypothesis.describe()}"[:5000]
    counts = {name: sum(v.verdict == name for v in verdicts) for name in VERDICT_CODES}
    metrics.update({f"hypotheses_{name}": float(count) for name, count in counts.items()})
    tags["gbreg.findings"] = ", ".join(f"{count} {name}" for name, count in counts.items())
    return metrics, tags


def findings_markdown(prepared, results, splits, verdicts: list[Verdict], plots: list[str],
                      no_reference: list[str]) -> str:
    spec = prepared.spec
    n_splits = int(splits.groupby(["repeat", "fold"]).ngroups) if len(splits) else 0
    counts = {name: sum(v.verdict == name for v in verdicts) for name in VERDICT_CODES}
    lines = [f"# Findings: {spec.name}", "",
             f"Data set **{prepared.dataset.name}** ({prepared.task}, {len(prepared.dataset.y)} rows), metric "
             f"{prepared.metric}; {len(results)} trials, {n_splits} split(s) each "
             f"({spec.repeats} repeat(s), {spec.evaluation.split}).", "",
             "Verdicts: " + ", ".join(f"{count} {name}" for name, count in counts.items()) + ".", "",
             "| # | hypothesis | verdict | statistic | p |", "|---|---|---|---|---|"]
    for v in verdicts:
        statistic = _fmt(v.numbers.get("statistic", float("nan")))
        p_value = v.numbers.get("p_value", float("nan"))
        p = _p_text(p_value, PERMUTATIONS).removeprefix("p ").removeprefix("= ") if v.hypothesis.kind == "trend" \
            else _fmt(p_value)
        lines.append(f"| H{v.index} | {v.hypothesis.describe()} | **{v.verdict}** | {statistic} | {p} |")
    for v in verdicts:
        lines += ["", f"## H{v.index} · {v.hypothesis.describe()}", "", f"**{v.verdict.capitalize()}.** {v.reason}.", ""]
        links = _links_for(v.hypothesis, plots)
        if links:
            lines += ["Plots: " + " · ".join(f"[{path.rsplit('/', 1)[-1]}]({path})" for path in links), ""]
        if v.table:
            lines += [v.table, ""]
    lines += ["", "## Shrinkage against the unregularized model", "", _shrinkage_section(results, no_reference),
              "", "## How verdicts are reached", "", METHOD_NOTE]
    return "\n".join(lines) + "\n"


METHOD_NOTE = (
    "Trend: Spearman's ρ between the axis and the metric within each stratum (model, every other "
    "sweep axis, repeat and fold held fixed), averaged over strata; p from "
    f"{PERMUTATIONS} permutations of the metric within strata (two-sided); 95% CI from {BOOTSTRAPS} bootstrap "
    "resamples of the strata. Supported: p < significance with ρ of the stated sign; contradicted: p < "
    "significance the other way (for `trend: none`, any significant trend); `trend: none` is supported only "
    "when the CI lies within ±tolerance. Sign: exact two-sided sign test over the cells (trial × split). "
    "Best: the best cell per configuration, re-found on bootstrap resamples of the splits; supported when "
    "it is interior in ≥ 1 − significance of resamples for every configuration, contradicted when at an edge "
    "that often for some configuration. See docs/hypotheses.md.")


def _links_for(h: Hypothesis, plots: list[str]) -> list[str]:
    wanted = {f"plots/heatmap_{h.measured}.png"}
    wanted |= {f"plots/path_{axis}_{h.measured}.png" for axis in [h.along, *(h.interior or [])] if axis}
    return [path for path in plots if path in wanted]


def _shrinkage_section(results, no_reference: list[str]) -> str:
    parts = []
    if no_reference:
        parts.append(f"No trial at reg_alpha = reg_lambda = 0 for {', '.join(no_reference)}: the grid has no "
                     "unregularized point for it, so its shrinkage is not computed (linear counterparts are compared "
                     "with the `ols` counterpart when the spec lists it).")
    for prefix in ("leaf", "coef"):
        column = f"{prefix}_shrinkage"
        if column not in results.columns or results[column].notna().sum() == 0:
            continue
        parts.append(f"`{column}`: mean |{'leaf value' if prefix == 'leaf' else 'coefficient'}| relative to the "
                     "same model at reg_alpha = reg_lambda = 0 (other axes equal), averaged over the other axes; "
                     f"in brackets the ratio at the 50th / 90th percentile of |value| (equal under proportional "
                     "shrinkage; the 50th falls first when a constant is subtracted).")
        for model, rows in results[results[column].notna()].groupby("model", sort=False):
            parts.append(f"\n{model} (rows reg_alpha, columns reg_lambda):\n")
            parts.append(_shrinkage_pivot(rows, prefix))
    return "\n".join(parts) if parts else "No shrinkage computed."


def _shrinkage_pivot(rows, prefix: str) -> str:
    columns = [f"{prefix}_shrinkage", f"{prefix}_shrinkage_q50", f"{prefix}_shrinkage_q90"]
    means = rows.groupby(["reg_alpha", "reg_lambda"])[columns].mean()
    alphas = sorted(rows["reg_alpha"].unique())
    lambdas = sorted(rows["reg_lambda"].unique())
    lines = ["| α \\ λ | " + " | ".join(_fmt(b) for b in lambdas) + " |", "|---" * (len(lambdas) + 1) + "|"]
    for a in alphas:
        cells = []
        for b in lambdas:
            if (a, b) in means.index:
                mean, q50, q90 = means.loc[(a, b)]
                cells.append(f"{_fmt(mean)} ({_fmt(q50)}/{_fmt(q90)})")
            else:
                cells.append("")
        lines.append(f"| {_fmt(a)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings_text(client, parent) -> str:
    """The findings.md of a study's parent run."""
    from gbreg.errors import UserInputError
    from gbreg.store import retrying

    run_id = parent.info.run_id
    try:
        path = retrying(lambda: client.download_artifacts(run_id, FINDINGS_ARTIFACT))
    except Exception as exc:  # noqa: BLE001 - MLflow raises several types for a missing artifact
        raise UserInputError(f"run {run_id} has no {FINDINGS_ARTIFACT}: its spec states no hypotheses (expect:) "
                             "or the study has not finished") from exc
    with open(path, encoding="utf-8") as handle:
        return handle.read()
