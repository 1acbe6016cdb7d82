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
    """Distinct (reg_alpha, reg_lambda) points of the sweep, for the linear counterparts."""
    axes = spec.sweep_values()
    alphas = axes.get("reg_alpha", [0.0])
    lambdas = axes.get("reg_lambda", [0.0])
    return [{"reg_alpha": a, "reg_lambda": b} for a, b in itertools.product(alphas, lambdas)]


def linear_trials(spec: Spec) -> list[Trial]:
    identity = trial_identity(spec)
    trials = []
    for model in spec.counterparts:
        for point in penalty_points(spec):
            params = {axis: float(point[axis]) for axis in PENALTY_AXES}
            key = make_trial_key(identity, "sklearn", model, params)
            trials.append(Trial(key, "linear", "sklearn", model, point, params))
    return trials


def make_plan(spec: Spec) -> list[Trial]:
    trials = booster_trials(spec) + linear_trials(spec)
    seen: dict[str, Trial] = {}
    for trial in trials:
        seen.setdefault(trial.trial_key, trial)
    return list(seen.values())
