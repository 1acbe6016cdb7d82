"""The trial plan: the grid expanded per library, one :class:`Trial` per (model, grid point), each with
a stable ``trial_key``. Pure and deterministic; no data is loaded and no ML library imported.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field

from gbreg.params import accepts, resolve_params
from gbreg.spec import PENALTY_AXES, Spec

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
    identity = trial_identity(spec)
    axes = spec.sweep_values()
    trials = []
    for library, model_params in spec.libraries().items():
        own_axes = {axis: values for axis, values in axes.items() if accepts(library, axis)}
        for combo in itertools.product(*own_axes.values()):
            point = dict(zip(own_axes, combo))
            params = resolve_params(library, {**model_params, **point})
            key = make_trial_key(identity, library, library, params)
            trials.append(Trial(key, "booster", library, library, point, params))
    return trials


def penalty_points(spec: Spec) -> list[dict]:
    """Distinct (reg_alpha, reg_lambda) points the boosters actually run, in plan order.

    Taken from the boosters' resolved parameters, not the sweep alone: a penalty that is not swept is
    each library's default (XGBoost's reg_lambda is 1, LightGBM's 0), and its counterpart must match it.
    """
    points: dict[tuple[float, float], dict] = {}
    for trial in booster_trials(spec):
        alpha, lam = (float(trial.params[axis]) for axis in PENALTY_AXES)
        points.setdefault((alpha, lam), {"reg_alpha": alpha, "reg_lambda": lam})
    return list(points.values())


def linear_trials(spec: Spec) -> list[Trial]:
    """One trial per (counterpart, grid point it matches): see :data:`gbreg.linear.COVERS`.

    A counterpart that matches no grid point is a spec error (e.g. ``lasso`` needs reg_lambda = 0 and
    some reg_alpha > 0 in the sweep), rather than a silently missing comparison.
    """
    from gbreg.errors import SpecError
    from gbreg.linear import covers, describe_covers

    identity = trial_identity(spec)
    points = penalty_points(spec)
    trials, problems = [], []
    for i, model in enumerate(spec.counterparts):
        matched = [p for p in points if covers(model, p["reg_alpha"], p["reg_lambda"])]
        if not matched:
            shown = ", ".join(f"(α={p['reg_alpha']:g}, λ={p['reg_lambda']:g})" for p in points[:6])
            message = (f"{model!r} matches no grid point: it is the counterpart of {describe_covers(model)} "
                       f"points; the grid has {shown}{' …' if len(points) > 6 else ''}")
            problems.append((f"counterparts[{i}]", message))
        for point in matched:
            key = make_trial_key(identity, "sklearn", model, point)
            trials.append(Trial(key, "linear", "sklearn", model, dict(point), dict(point)))
    if problems:
        raise SpecError(spec.source, problems)
    return trials


def make_plan(spec: Spec) -> list[Trial]:
    trials = booster_trials(spec) + linear_trials(spec)
    seen: dict[str, Trial] = {}
    for trial in trials:
        seen.setdefault(trial.trial_key, trial)
    return list(seen.values())
