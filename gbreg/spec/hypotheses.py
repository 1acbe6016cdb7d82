"""The hypotheses a study states under ``expect:``: their vocabulary and the spec checks on them.

Three kinds of statement, written as YAML mappings (docs/hypotheses.md has the full vocabulary):
    {metric: M, trend: increasing | decreasing | none, along: AXIS, where: {...}}
    {metric: M, sign: positive | negative, where: {...}}
    {best: M, interior: [AXIS, ...], goal: min | max, where: {...}}

How each is tested on the sweep's results (:func:`gbreg.analysis.judgement.judge`, :mod:`gbreg.analysis.inference`,
:mod:`gbreg.analysis.best_point_inference`; the statistics, their unit of replication and their calibration
are stated in docs/hypotheses.md). The unit is the repeat when a repeat has several folds, else the split
(fewer than 3 units: inconclusive, no test). By default (``test="t"``) each test is a t-test over the units:

* trend: Spearman's ρ along the axis per configuration and split, the mean over the configurations that
  vary, averaged per unit; a one-sample t-test of mean ρ = 0 (``none``: two one-sided t-tests against
  ±tolerance, supported when the t interval lies inside).
* sign: the metric's mean per configuration × unit coded ±1 by its sign (0 counts against both); the share positive minus the share negative,
  t-tested with configurations and units as crossed random effects (Satterthwaite degrees of freedom).
* best: best interior minus best edge cell, against the same statistic on flat surfaces carrying the data's
  noise (unit residuals times Gaussian multipliers plus independent cells, each scaled by a t multiplier
  √(df/χ²_df)); the interval is the chosen cells' paired t interval.

``test="sign_flip"`` keeps the exact sign-flip (randomization) tests over the units instead.
The p-values are Holm-adjusted across a study's hypotheses; the verdict uses the adjusted one.

Verdicts are ``supported``, ``contradicted`` or ``inconclusive`` (with the reason); :mod:`gbreg.analysis.findings`
writes them after the sweep (findings.md, parent-run metrics and tags). Validation
(:func:`expectation_problems`) is pure Python; the tests import numpy/scipy/pandas when they run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gbreg.catalogue import METRICS_BY_TASK, names
from gbreg.models.boosters import LIBRARIES
from gbreg.models.metrics import HIGHER_IS_BETTER
from gbreg.spec.hypothesis_cells import FILTER_COLUMNS, kept_values_problems, where_columns
from gbreg.spec.messages import format_path, unknown_key_message
from gbreg.spec.params import accepted_names, accepts, shared_name

SCORE_PREFIXES = ("train_", "test_", "gap_")
TASK_METRICS = METRICS_BY_TASK
LINEAR_METRICS = names("linear")
BOOSTER_METRICS = names("tree", "support", "mechanism", "post-sweep", on="booster")
SPLIT_METRICS = names("tree", "mechanism", "linear", "support", "timing", "distribution")
POST_SWEEP_METRICS = names("post-sweep")  # one value per trial, computed after the sweep
FINDINGS_ARTIFACT = "findings.md"
VERDICT_CODES = {"supported": 1, "inconclusive": 0, "contradicted": -1}


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


COMPARISONS = tuple(field.alias or name for name, field in Condition.model_fields.items())  # as a spec writes them


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
    # its number in the findings and in its metrics' names (default: its place in expect, from 1); a suite
    # sets it, so that a claim keeps its number on every data set, skipped ones included
    number: int | None = Field(None, ge=1)

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
            # a suite template's {metric}: each data set's metric decides whether lower or higher is best
            goal = "best" if "{metric}" in (self.best or "") and not self.goal else self.goal_for()
            text = f"the {goal} of {self.best} is inside the grid along {', '.join(self.interior or [])}"
        return text + (f" where {describe_where(self.where)}" if self.where else "")

    def goal_for(self) -> str:
        if self.goal:
            return "max" if self.goal == "max" else "min"
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
    task = spec.known_task()
    suffixes = TASK_METRICS[task] if task else tuple({m for ms in TASK_METRICS.values() for m in ms})
    scored = {f"{prefix}{m}" for prefix in SCORE_PREFIXES for m in suffixes}
    per_split = scored | set(SPLIT_METRICS)
    return per_split | {f"{name}_std" for name in per_split} | set(POST_SWEEP_METRICS)


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
            problems += [(f"{path}.{where}" if where else path, message)
                         for where, message in _model_problems(exc, Hypothesis)]
            continue
        problems += _hypothesis_problems(hypothesis, spec, path)
    return _native_axis_problems(spec) + problems + _number_problems(spec.expect)


def _native_axis_problems(spec) -> list[tuple[str, str]]:
    """A sweep axis written by a library's own name (``eta``) is logged under the shared name
    (``learning_rate``), so the results have no column by the axis's name for the hypotheses' tests to
    group by: every verdict would be lost after the sweep."""
    problems = []
    for axis in spec.sweep:
        for library in spec.libraries():
            if accepts(library, axis) and shared_name(library, axis) != axis:
                shared = shared_name(library, axis)
                problems.append((f"sweep.{axis}", f"{axis!r} is {library}'s name for {shared!r}, which is the "
                                                  f"results' column the hypotheses (expect:) are tested on: sweep "
                                                  f"{shared!r} instead"))
                break
    return problems


def hypothesis_numbers(expect: list) -> list[int]:
    """The number of each hypothesis: its ``number:``, else its place in ``expect`` (from 1)."""
    return [(raw.get("number") if isinstance(raw, dict) else None) or place for place, raw in enumerate(expect, 1)]


def _number_problems(expect: list) -> list[tuple[str, str]]:
    seen: dict[int, int] = {}
    problems = []
    for index, number in enumerate(hypothesis_numbers(expect)):
        if isinstance(number, int) and number in seen:
            problems.append((f"expect[{index}]", f"is numbered {number}, as expect[{seen[number]}] is; give each "
                                                 "hypothesis its own number"))
        seen.setdefault(number, index)
    return problems


def _model_problems(exc: ValidationError, model: type[Hypothesis | Condition]) -> list[tuple[str, str]]:
    """Of a hypothesis, or of a where: condition (an unknown key there is a comparison: all seven are listed)."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden" and model is Condition:
            message = unknown_key_message(str(loc[-1]), COMPARISONS, "comparison", list_all=True)
        elif error["type"] == "extra_forbidden":
            message = unknown_key_message(str(loc[-1]), list(Hypothesis.model_fields), "hypothesis key")
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
    problems += _where_problems(h, spec, path)
    if not problems and stated[0] in ("trend", "best"):
        problems += kept_values_problems(h, spec, path)
    return problems


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
    valid = valid_metrics(spec)
    if name in valid:
        if name.removesuffix("_std") in LINEAR_METRICS or name.startswith("coef_"):
            if not spec.counterparts:
                return [(path, f"{name!r} is measured on linear counterparts and the spec has none")]
        return []
    prefix, _, suffix = name.partition("_")
    task = spec.known_task()
    if f"{prefix}_" in SCORE_PREFIXES and task and any(suffix in ms for ms in TASK_METRICS.values()):
        return [(path, f"{name!r} does not fit task {task!r}; the task's metrics are "
                       f"{', '.join(TASK_METRICS[task])}")]
    return [(path, unknown_key_message(name, sorted(valid), "metric"))]


def _axis_problems(axis: str, spec, path: str, minimum: int) -> list[tuple[str, str]]:
    axes = spec.sweep_values(skip_invalid=True)
    if axis in spec.sweep and axis not in axes:
        return []  # a log space that is itself a mistake, reported at its key
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
    libraries = list(spec.libraries())
    axes = spec.sweep_values(skip_invalid=True)
    columns = where_columns(spec)  # what the results table will have: the findings step filters it
    problems = []
    for key, raw in h.where.items():
        here = f"{path}.where.{key}"
        if key not in columns:
            problems.append((here, _missing_column_message(key, spec, columns)))
            continue
        try:
            condition = _condition(raw)
        except ValidationError as exc:
            problems += [(f"{here}.{where}" if where else here, message)
                         for where, message in _model_problems(exc, Condition)]
            continue
        wrong = _condition_problems(key, condition, spec, here)
        problems += wrong
        if key == "library" and condition.eq is not None:
            for axis in [h.along, *(h.interior or [])]:
                if axis and condition.eq in libraries and not accepts(str(condition.eq), axis):
                    problems.append((here, f"{condition.eq} has no parameter {axis!r}; the hypothesis would "
                                           "have no cells"))
        if key in axes and not wrong and not any(_matches_condition(v, condition) for v in axes[key]):
            problems.append((here, f"keeps none of the values of sweep.{key} ({', '.join(map(str, axes[key]))}); "
                                   "the hypothesis would have no cells"))
        elif key in axes and key in (h.along, *(h.interior or [])):
            kept = [v for v in axes[key] if _matches_condition(v, condition)]
            needed = 3 if key in (h.interior or []) else 2
            if len(kept) < needed:
                problems.append((here, f"keeps {len(kept)} value(s) of {key!r}, the axis the hypothesis varies; "
                                       f"it needs at least {needed}"))
    return problems


def _missing_column_message(key: str, spec, columns: set[str]) -> str:
    """A where: key the results will have no column for: a library's own name for a shared parameter (logged
    under the shared name), a parameter no model of the study sets or sweeps, or an unknown name."""
    for library in spec.libraries():
        shared = shared_name(library, key) if accepts(library, key) else key
        if shared != key and shared in columns:
            return (f"{key!r} is {library}'s name for {shared!r}, the results' column: filter on {shared!r} "
                    f"(where: {{{shared}: ...}})")
    if any(key in accepted_names(library) for library in LIBRARIES):
        parameters = sorted(columns - set(FILTER_COLUMNS))
        return (f"no trial has a value of {key!r}: no model in the spec sets it and the sweep does not vary it, "
                f"so the results have no such column; set it under models or sweep it, or filter on "
                f"{', '.join(FILTER_COLUMNS)} or a parameter the trials have ({', '.join(parameters)})")
    return unknown_key_message(key, sorted(columns), "column to filter on")


def _condition_problems(key: str, condition: Condition, spec, here: str) -> list[tuple[str, str]]:
    problems = []
    known = {"library": [*spec.libraries(), "sklearn"], "model": [*spec.libraries(), *spec.counterparts],
             "kind": ["booster", "linear"]}.get(key)
    for op in ("eq", "ne"):
        value = getattr(condition, op)
        if known is not None and value is not None and value not in known:
            where = f"{here}.{op}" if op != "eq" else here
            if key == "library" and value in LIBRARIES:
                problems.append((where, f"{value!r} is not among the study's libraries ({', '.join(known[:-1])}); "
                                        "add it under models or drop the filter"))
            else:
                problems.append((where, unknown_key_message(str(value), known, key)))
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
        try:
            if bound is not None and not check(value, bound):
                return False
        except TypeError:  # text against a number ({gt: 1} on grow_policy): the results' filter keeps no row
            return False
    return condition.in_ is None or value in condition.in_
