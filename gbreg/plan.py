"""The trial plan: the grid expanded per library, one :class:`Trial` per (model, grid point), each with
a stable ``trial_key``. Pure and deterministic; no data is loaded and no ML library imported.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from gbreg.errors import SpecError
from gbreg.models.linear import COVERS, covers, describe_covers, point_kind
from gbreg.spec.params import accepts, penalty_values, resolve_params, trained_penalty
from gbreg.spec.schema import PENALTY_AXES, Spec

GREEK = {"reg_alpha": "α", "reg_lambda": "λ"}


@dataclass(frozen=True)
class Trial:
    trial_key: str
    kind: str  # booster | linear
    library: str  # xgboost | lightgbm | sklearn
    model: str  # xgboost | lightgbm | lasso | ridge | ...
    point: dict = field(hash=False)  # the grid point: axis -> value (only axes that apply)
    params: dict = field(hash=False)  # resolved model parameters, shared vocabulary, grid point applied

    @property
    def run_name(self) -> str:
        parts = [self.model]
        for axis, value in self.point.items():
            parts.append(f"{GREEK.get(axis, axis)}={_short(value)}" if axis in GREEK else f"{axis}={_short(value)}")
        return " ".join(parts)


def _short(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def trial_identity(spec: Spec) -> dict:
    """What, besides the model and its parameters, determines a trial's results."""
    return {
        "data": spec.data.model_dump(mode="json", exclude_none=True),
        "task": spec.task,
        "evaluation": spec.evaluation.model_dump(mode="json", exclude_none=True),
        "seed": spec.seed,
        "repeats": spec.repeats,
    }


def make_trial_key(identity: dict, library: str, model: str, params: dict) -> str:
    payload = json.dumps({**identity, "library": library, "model": model, "params": params},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def booster_trials(spec: Spec) -> list[Trial]:
    return list(iter_booster_trials(spec))


def iter_booster_trials(spec: Spec) -> Iterator[Trial]:
    """The booster trials in plan order, one at a time (a preview of a huge grid builds only its head)."""
    identity = trial_identity(spec)
    axes = spec.sweep_values()
    for library, model_params in spec.libraries().items():
        own_axes = {axis: values for axis, values in axes.items() if accepts(library, axis)}
        for combo in itertools.product(*own_axes.values()):
            point = dict(zip(own_axes, combo))
            params = resolve_params(library, {**model_params, **point})
            key = make_trial_key(identity, library, library, params)
            yield Trial(key, "booster", library, library, point, params)


def penalty_points(spec: Spec) -> list[dict]:
    """Distinct (reg_alpha, reg_lambda) points the boosters actually run, in plan order.

    Taken from the boosters' resolved parameters, not the sweep alone: a penalty that is not swept is
    each library's default (XGBoost's reg_lambda is 1, LightGBM's 0), and its counterpart must match it.
    """
    return list(_iter_penalty_points(spec))


def _iter_penalty_points(spec: Spec) -> Iterator[dict]:
    seen: set[tuple[float, float]] = set()
    for trial in iter_booster_trials(spec):
        alpha, lam = (trained_penalty(trial.params, axis) for axis in PENALTY_AXES)
        if (alpha, lam) not in seen:
            seen.add((alpha, lam))
            yield {"reg_alpha": alpha, "reg_lambda": lam}


def linear_trials(spec: Spec) -> list[Trial]:
    """One trial per (counterpart, grid point it matches): see :data:`gbreg.models.linear.COVERS`.

    A counterpart that matches no grid point is a spec error (e.g. ``lasso`` needs reg_lambda = 0 and
    some reg_alpha > 0 in the sweep), rather than a silently missing comparison.
    """

    identity = trial_identity(spec)
    points = penalty_points(spec)
    trials, problems = [], []
    for i, model in enumerate(spec.counterparts):
        matched = [p for p in points if covers(model, p["reg_alpha"], p["reg_lambda"])]
        if not matched:
            problems.append(_unmatched_counterpart(spec, i, model))
        for point in matched:
            key = make_trial_key(identity, "sklearn", model, point)
            trials.append(Trial(key, "linear", "sklearn", model, dict(point), dict(point)))
    if problems:
        raise SpecError(spec.source, problems)
    return trials


def _unmatched_counterpart(spec: Spec, index: int, model: str) -> tuple[str, str]:
    head = list(itertools.islice(_iter_penalty_points(spec), 7))
    shown = ", ".join(f"(α={p['reg_alpha']:g}, λ={p['reg_lambda']:g})" for p in head[:6])
    return (f"counterparts[{index}]", f"{model!r} matches no grid point: it is the counterpart of "
            f"{describe_covers(model)} points; the grid has {shown}{' …' if len(head) > 6 else ''}")


def make_plan(spec: Spec) -> list[Trial]:
    trials = booster_trials(spec) + linear_trials(spec)
    seen: dict[str, Trial] = {}
    for trial in trials:
        seen.setdefault(trial.trial_key, trial)
    return list(seen.values())


# ----------------------------------------------------------------------------------------------------
# sizes, without building the plan: `validate` and `run --dry-run` answer at once for any grid


def plan_head(spec: Spec, limit: int) -> list[Trial]:
    """The first ``limit`` trials of :func:`make_plan`, building no more than those."""
    def trials() -> Iterator[Trial]:
        yield from iter_booster_trials(spec)
        yield from linear_trials(spec)  # reached only when the boosters are fewer than ``limit``

    seen: dict[str, Trial] = {}
    for trial in trials():
        seen.setdefault(trial.trial_key, trial)
        if len(seen) >= limit:
            break
    return list(seen.values())


def count_trials(spec: Spec) -> int:
    """``len(make_plan(spec))`` from the axis lengths alone: per library the product of its axes' lengths,
    plus, per counterpart, the distinct penalty points it covers. Raises the same SpecError as
    :func:`make_plan` for a counterpart that matches no grid point."""
    axes = spec.sweep_values()
    boosters = sum(math.prod(len(values) for axis, values in axes.items() if accepts(library, axis))
                   for library in spec.libraries())
    if not spec.counterparts:
        return boosters

    by_kind = _penalty_points_by_kind(spec)
    linear, problems = 0, []
    for i, model in enumerate(spec.counterparts):
        matched = sum(by_kind.get(kind, 0) for kind in COVERS[model])
        if not matched:
            problems.append(_unmatched_counterpart(spec, i, model))
        linear += matched
    if problems:
        raise SpecError(spec.source, problems)
    return boosters + linear


def _penalty_points_by_kind(spec: Spec) -> dict[str, int]:
    """How many distinct (reg_alpha, reg_lambda) points of each kind (:func:`gbreg.models.linear.point_kind`)
    the boosters run. Each library runs a product of penalty values, split by sign into rectangles of
    one kind each; the libraries' rectangles are counted together by inclusion-exclusion."""

    grids = penalty_values(spec)
    counts: dict[str, int] = {}
    for alpha_positive, lambda_positive in itertools.product((False, True), repeat=2):
        rectangles = [({a for a in alphas if (a > 0) == alpha_positive},
                       {lam for lam in lambdas if (lam > 0) == lambda_positive}) for alphas, lambdas in grids]
        union = 0
        for size in range(1, len(rectangles) + 1):
            for subset in itertools.combinations(rectangles, size):
                alphas = set.intersection(*(a for a, _ in subset))
                shared = len(alphas) * len(set.intersection(*(b for _, b in subset)))
                union += shared if size % 2 else -shared
        kind = point_kind(float(alpha_positive), float(lambda_positive))
        counts[kind] = counts.get(kind, 0) + union
    return counts
