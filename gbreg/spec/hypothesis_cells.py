"""Which values of its tested axes a hypothesis can see: its ``where:`` filter applied to the trials the plan
would build, without building them (a grid of any size answers at once).

A trend is measured per configuration (the model and every other sweep axis held fixed) along its axis, and
needs two values of it in some configuration; a best point needs three values along each interior axis in
one configuration (:mod:`gbreg.analysis.judgement`). The trials' rows are what :mod:`gbreg.plan` gives and
the runner logs: a booster's row holds its resolved parameters (a library without a parameter has no value
for it), a linear counterpart's row holds the penalty point it runs at, among the points of its kind
(``lasso``: reg_lambda = 0 < reg_alpha) that some booster trains (:func:`gbreg.spec.params.penalty_values`), and
nothing for the boosters' other axes.

The rule is one-sided: a filter is refused only when no kept configuration can have the values the test
needs, whatever the data; a column whose value in the rows is not known here (a linear model's own
settings) is taken to pass the filter. A parameter a library's rows do not hold (one it does not have, or
a native one the spec leaves at the library's default, which gbreg does not log) has no value there.

:func:`where_columns` names the parameter columns the results table will have, which a ``where:`` may name.

:func:`kept_values_problems` words the spec error for a hypothesis that keeps too little: what each kept
model has of the tested axes, and what to change (another model, another axis, more values).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gbreg.catalogue import PENALTY_AXES, find
from gbreg.spec.params import SHARED_TO_NATIVE, accepts, penalty_values, resolve_params, shared_name

FILTER_COLUMNS = ("library", "model", "kind")  # the columns a where: names besides parameters
UNKNOWN = object()  # a column whose value in the rows is not known at validation time: it passes any filter


@dataclass
class Group:
    """Rows of one model that share a configuration: the tested axes' values they hold."""

    model: str
    values: dict[str, set] = field(default_factory=dict)  # tested axis -> its values kept (missing: no column)
    unknown: bool = False  # a tested axis whose column is not known here: assumed usable
    grouped_by: str | None = None  # a linear model's configurations differ in this penalty

    def usable(self, needed: int) -> bool:
        return self.unknown or all(len(values) >= needed for values in self.values.values())


def kept_groups(spec, conditions: dict, tested: list[str], metric: str | None) -> list[Group] | None:
    """Per model and configuration the values of the ``tested`` axes the filter keeps, for the models that
    keep any row (and that measure ``metric``); None when this cannot be worked out (an invalid sweep, which is
    reported at its own key)."""
    axes = spec.sweep_values(skip_invalid=True)
    if len(axes) < len(spec.sweep):  # a log space that is itself a mistake, reported at its key
        return None
    on = measured_on(metric)
    groups: list[Group] = []
    libraries = spec.libraries()
    if on != "linear":
        for library, model_params in libraries.items():
            group = _booster_group(library, model_params, axes, conditions, tested)
            if group is not None:
                groups.append(group)
    if on != "booster":
        rectangles = _penalty_rectangles(spec)
        for model in spec.counterparts:
            groups += _linear_groups(model, rectangles, axes, conditions, tested)
    return groups


def measured_on(metric: str | None) -> str:
    measure = find(metric) if metric else None
    return measure.on if measure is not None else "any"


def where_columns(spec) -> set[str]:
    """The columns of the results table a ``where:`` can filter on, as the plan's trials log them
    (:func:`gbreg.run.parent_run.trial_params`): library, model and kind; a booster's resolved parameters
    (:func:`gbreg.plan.iter_booster_trials`: the library's recorded defaults, the parameters its models
    entry sets and its sweep axes, each under its shared name: ``eta`` is logged as ``learning_rate``);
    reg_alpha and reg_lambda of a linear counterpart. A parameter no model sets, sweeps or records a
    default of (LightGBM's ``drop_rate`` left out) is a column of no row."""
    columns = set(FILTER_COLUMNS)
    libraries = spec.libraries()
    for library, model_params in libraries.items():
        columns |= set(resolve_params(library, model_params if isinstance(model_params, dict) else {}))
        columns |= {shared_name(library, axis) for axis in spec.sweep if accepts(library, axis)}
    # an axis no library of the study has is refused at its sweep key: not again here
    columns |= {axis for axis in spec.sweep if not any(accepts(library, axis) for library in libraries)}
    if spec.counterparts:
        columns |= set(PENALTY_AXES)
    return columns


# ----------------------------------------------------------------------------------------------------
# boosters: each library's rows are the product of its own axes' values


def _booster_group(library: str, model_params: dict, axes: dict[str, list], conditions: dict,
                   tested: list[str]) -> Group | None:
    own = {axis: values for axis, values in axes.items() if accepts(library, axis)}
    columns = {shared_name(library, axis): axis for axis in own}  # the row's column -> the axis that sets it
    resolved = resolve_params(library, model_params)
    kept = {axis: list(values) for axis, values in own.items()}
    for key, condition in conditions.items():
        if key in columns:
            axis = columns[key]
            kept[axis] = [v for v in kept[axis] if _passes(v, condition)]
        elif not _passes(_booster_constant(library, key, resolved), condition):
            return None
    if any(not values for values in kept.values()):
        return None
    group = Group(library)
    for axis in tested:
        if axis in own and shared_name(library, axis) == axis:
            group.values[axis] = set(kept[axis])
        elif axis in own:  # swept by a native name: its column is the shared one, not known here
            group.unknown = True
        else:
            group.values[axis] = set()  # the library has no such column
    return group


def _booster_constant(library: str, key: str, resolved: dict) -> Any:
    if key in ("library", "model"):
        return library
    if key == "kind":
        return "booster"
    # a parameter the library's resolved params lack is not logged for its trials: no value (NaN) in its rows
    return resolved.get(key)


# ----------------------------------------------------------------------------------------------------
# linear counterparts: the penalty points of their kind among those the boosters train


@dataclass(frozen=True)
class Rectangle:
    """The penalty points of one library whose signs give one kind of point: reg_alpha x reg_lambda values."""

    kind: str
    alphas: frozenset
    lambdas: frozenset


def _penalty_rectangles(spec) -> list[Rectangle]:
    """Per library and kind of point, the (reg_alpha, reg_lambda) values its trials train at, as the plan
    counts them (:func:`gbreg.spec.params.penalty_values`: swept, set or the library's default; 0 without it)."""
    from gbreg.models.linear import point_kind

    rectangles = []
    for all_alphas, all_lambdas in penalty_values(spec):
        for alpha_positive, lambda_positive in itertools.product((False, True), repeat=2):
            alphas = frozenset(a for a in all_alphas if (a > 0) == alpha_positive)
            lambdas = frozenset(b for b in all_lambdas if (b > 0) == lambda_positive)
            if alphas and lambdas:
                kind = point_kind(float(alpha_positive), float(lambda_positive))
                rectangles.append(Rectangle(kind, alphas, lambdas))
    return rectangles


def _linear_groups(model: str, rectangles: list[Rectangle], axes: dict[str, list], conditions: dict,
                   tested: list[str]) -> list[Group]:
    from gbreg.models.linear import COVERS

    if model not in COVERS:  # an unknown counterpart: reported at counterparts[i]
        return []
    constants = {"library": "sklearn", "model": model, "kind": "linear"}
    filters = {axis: [] for axis in PENALTY_AXES}
    for key, condition in conditions.items():
        if key in filters:
            filters[key].append(condition)
        elif not _passes(_linear_constant(key, constants), condition):
            return []
    mine = []
    for rectangle in rectangles:
        if rectangle.kind not in COVERS[model]:
            continue
        alphas = {a for a in rectangle.alphas if all(_passes(a, c) for c in filters["reg_alpha"])}
        lambdas = {b for b in rectangle.lambdas if all(_passes(b, c) for c in filters["reg_lambda"])}
        if alphas and lambdas:
            mine.append({"reg_alpha": alphas, "reg_lambda": lambdas})
    if not mine:
        return []
    # a configuration holds the other penalty fixed when it is a sweep axis (a column the verdict groups by)
    others = [penalty for penalty in PENALTY_AXES if penalty not in tested and penalty in axes]
    fixed = others[0] if others else None
    settings = sorted(set().union(*(r[fixed] for r in mine))) if fixed else [None]
    groups = []
    for setting in settings:
        around = [r for r in mine if fixed is None or setting in r[fixed]]
        group = Group(model, grouped_by=fixed if len(settings) > 1 else None)
        for axis in tested:
            if axis in PENALTY_AXES:
                group.values[axis] = set().union(*(r[axis] for r in around))
            elif axis in SHARED_TO_NATIVE:
                group.values[axis] = set()  # a booster parameter: no value in a linear model's row
            else:  # a native name, which a linear model's own settings may share (alpha, max_iter)
                group.unknown = True
        groups.append(group)
    return groups


def _linear_constant(key: str, constants: dict) -> Any:
    """A linear model's row: its names, no value of a booster parameter's shared name (max_depth, gamma), and
    its own settings, whose names a native booster parameter may share (not known here)."""
    if key in constants:
        return constants[key]
    return None if key in SHARED_TO_NATIVE else UNKNOWN


# ----------------------------------------------------------------------------------------------------
# one row's value against one condition, as gbreg.analysis.verdicts.filter_rows compares them


def _passes(value: Any, condition) -> bool:
    """Whether a row holding ``value`` (None: no value) passes ``condition``; an unknown value passes."""
    if value is UNKNOWN or isinstance(value, bool):
        return True
    number = isinstance(value, (int, float))
    if number and not math.isfinite(value):
        return True
    for op in ("eq", "ne", "gt", "ge", "lt", "le"):
        bound = getattr(condition, op)
        if bound is None:
            continue
        if value is None:
            if op != "ne":
                return False
        elif isinstance(bound, str):
            if number:
                continue  # compared as the column's text ("1.0"): not known here
            if (value == bound) != (op == "eq") and op in ("eq", "ne"):
                return False
        elif not number:
            if op != "ne":
                return False  # text compared with a number: no value
        elif not _compare(op, value, bound):
            return False
    if condition.in_ is not None:
        if value is None:
            return False
        allowed = condition.in_ if not number else [v for v in condition.in_ if not isinstance(v, str)]
        if number and len(allowed) < len(condition.in_):
            return True  # a text item compared with the column's text: not known here
        if value not in allowed:
            return False
    return True


def _compare(op: str, value: float, bound: float) -> bool:
    return {"eq": value == bound, "ne": value != bound, "gt": value > bound, "ge": value >= bound,
            "lt": value < bound, "le": value <= bound}[op]


def shown_values(values: Iterable) -> str:
    ordered = sorted(values)
    text = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in ordered[:6])
    return text + (", ..." if len(ordered) > 6 else "")


# ---------------------------------------------------------------------------------------------- messages


def kept_values_problems(h, spec, path: str) -> list[tuple[str, str]]:
    """A trend needs 2 values of its axis, a best point 3 along each interior axis, in one configuration of
    the rows it keeps (filtered by where:, and measuring its metric); without them its verdict could only be
    inconclusive, whatever the data. The rows are the plan's: a linear counterpart runs at its kind of
    penalty point alone (lasso: reg_lambda = 0), a library without an axis has no value of it."""
    trend = h.kind == "trend"
    tested = [h.along] if trend else list(h.interior or [])
    needed = 2 if trend else 3
    conditions = h.conditions()
    groups = kept_groups(spec, conditions, tested, h.measured)
    if groups is None or any(group.usable(needed) for group in groups):
        return []
    here = f"{path}.where" if h.where else f"{path}.along" if trend else f"{path}.interior"
    on = {"linear": "the linear counterparts", "booster": "the boosters"}.get(measured_on(h.measured))
    measured = f" ({h.measured} is measured on {on} only)" if on else ""
    if trend:
        wanted = f"2 or more values of {h.along}, the axis the trend is along"
    else:
        wanted = f"3 or more values along {' and along '.join(tested)} (a best point needs an interior)"
    if not groups:
        return [(here, f"keeps no trial{measured}, so the verdict could only be inconclusive; check the filter's "
                       "values against the study's models and sweep")]
    kept = f"keeps no configuration with {wanted}" if h.where else f"no configuration has {wanted}"
    return [(here, f"{kept}{measured}, so the verdict could only be inconclusive: "
                   f"{_what_is_left(groups, tested, needed)}; {_what_to_change(h, spec, conditions, tested, needed)}")]


def _what_is_left(groups: list, tested: list[str], needed: int) -> str:
    """Per model kept, the values of the tested axes it has (one configuration's, when they differ)."""
    from gbreg.models.linear import COVERS, describe_covers

    parts = []
    models = list(dict.fromkeys(group.model for group in groups))
    for model in models[:4]:
        mine = [group for group in groups if group.model == model]
        said = []
        for axis in tested:
            sets = [group.values.get(axis, set()) for group in mine]
            if not any(sets):
                said.append(f"no {axis}")
            elif all(values == sets[0] for values in sets):
                count = len(sets[0])
                said.append(f"{axis} {shown_values(sets[0])} only" if count == 1
                            else f"{count} values of {axis} ({shown_values(sets[0])})")
            elif max(map(len, sets)) < needed:
                said.append(f"at most {max(map(len, sets))} value(s) of {axis} at each {mine[0].grouped_by}")
        text = f"{model} has {' and '.join(said) or 'no configuration with all of them'}"
        if model in COVERS and any(axis in PENALTY_AXES for axis in tested):
            text += f" ({model} is the counterpart of {describe_covers(model)} points)"
        parts.append(text)
    return "; ".join(parts) + (f"; and {len(models) - 4} more" if len(models) > 4 else "")


def _what_to_change(h, spec, conditions: dict, tested: list[str], needed: int) -> str:
    """Models the filter would keep with that variation, other axes a trend could be along, else what to widen."""
    advice = []
    naming = {key: condition for key, condition in conditions.items() if key not in FILTER_COLUMNS}
    if len(naming) < len(conditions):
        other = kept_groups(spec, naming, tested, h.measured) or []
        models = list(dict.fromkeys(group.model for group in other if group.usable(needed)))
        if models:
            advice.append(f"filter on a model that varies {' and '.join(tested)} ({', '.join(models)})")
    if h.kind == "trend":
        numeric = [axis for axis, values in spec.sweep_values(skip_invalid=True).items()
                   if axis != h.along and len(values) >= 2
                   and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)]
        along = [axis for axis in numeric
                 if any(group.usable(2) for group in kept_groups(spec, conditions, [axis], h.measured) or [])]
        if along:
            advice.append(f"test along {' or '.join(along)}")
    if not advice:
        more = f"add values to {' and '.join(f'sweep.{axis}' for axis in tested)}"
        advice.append(f"keep more of the grid in the filter or {more}" if h.where else
                      f"add a counterpart whose grid points vary {' and '.join(tested)} or {more}")
    return " or ".join(advice)
