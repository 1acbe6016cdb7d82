"""What gbreg knows about a booster library without importing it: one :class:`Library` per adapter.

Each adapter module declares its library as plain data (this module imports nothing heavy), and
:mod:`gbreg.models.boosters` registers the adapters: the spec's ``models:`` validation, :mod:`gbreg.spec.params`,
the curve names, the worker imports and the version tags all read these declarations, so that
``gbreg validate`` needs no ML import and a new library is its adapter file plus one registration.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from gbreg.catalogue import PENALTY_AXES

# Why gbreg sets some parameters itself (a spec may not: the run would log a value that was not used).
DETERMINISM = "(threads, seeds, determinism)"
OBJECTIVE = ("to the task's own loss (squared error, logistic or softmax), which the closed-form leaf checks, the "
             "curves, the metrics and the linear counterparts all follow")
NUM_CLASS = "from the classes in the target"
CURVE_METRIC = "from evaluation.metric (the metric the curves record); set that instead"
# Why some native parameters take only some of their library's values here.
DART = ("DART rescales earlier trees each time it drops them, so the leaves are no longer the penalized leaf "
        "weights gbreg measures")


@dataclass(frozen=True)
class Range:
    """The values a numeric parameter takes: whole numbers or finite numbers, within bounds."""

    integer: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is excluded
    why_low: str = ""  # said when a value is below the bounds
    why_high: str = ""  # said when a value is above them

    def problem(self, value) -> str | None:
        """What is wrong with ``value``, as the end of "must be ...", or None."""
        bounds = " and ".join(([f"{'>' if self.low_open else '≥'} {self.low:g}"] if self.low is not None else [])
                              + ([f"≤ {self.high:g}"] if self.high is not None else []))
        expected = f"must be {'a whole number' if self.integer else 'a finite number'}{' ' + bounds if bounds else ''}"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (self.integer and not isinstance(value, int)) or not math.isfinite(value):
            return f"{expected}, got {value!r}"
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return f"{expected}, got {value!r}{'; ' + self.why_low if self.why_low else ''}"
        if self.high is not None and value > self.high:
            return f"{expected}, got {value!r}{'; ' + self.why_high if self.why_high else ''}"
        return None


# What Needs.setting may also name besides a native parameter: facts about the study.
TASK = "task"  # the task (binary, multiclass, regression), when the spec or the data set makes it known
CATEGORICAL = "categorical"  # whether the data has a categorical column (true/false): known once it is loaded
CATEGORICAL_ONLY = ("on data with a categorical column (this one has none): remove it, or mark a column as "
                    "categorical")
BINARY_ONLY = "on a binary task: remove it"


@dataclass(frozen=True)
class Needs:
    """A parameter that takes effect only under some values of another setting of the same library (a
    native parameter, :data:`TASK` or :data:`CATEGORICAL`): ``values`` of it (``but``: any value except those). ``absent``: the
    setting's value when the spec sets none, as gbreg trains it. A value of the parameter in ``idle`` asks
    for nothing (subsample 1: no bagging) and is never refused. ``why``: how to make it take effect."""

    setting: str
    values: tuple
    but: bool = False
    absent: object = None
    idle: tuple = ()
    why: str = ""

    def allows(self, value) -> bool:
        return (value in self.values) != self.but


@dataclass(frozen=True)
class Library:
    """One booster library as gbreg uses it; every name is the library's own unless it says shared."""

    name: str  # the key under the spec's models:
    package: str  # distribution name, for the version tags and the Dask workers' check
    module: str  # what a worker imports before it trains
    native_names: Mapping[str, str]  # shared name -> native name; a shared name left out has no equivalent
    defaults: Mapping[str, float | int]  # shared name -> the value used when the spec sets none
    native_params: frozenset[str]  # native parameters a spec may set directly
    reserved: Mapping[str, str]  # name gbreg sets itself -> the end of "'<name>' is set by gbreg ..."
    curve_metrics: Mapping[str, Mapping[str, str]]  # gbreg metric -> task -> native evaluation name
    dataset_params: frozenset[str] = frozenset()  # native names that shape the training matrix
    choices: Mapping[str, tuple[tuple, str]] = field(default_factory=dict)  # native name -> (allowed, why)
    ranges: Mapping[str, Range] = field(default_factory=dict)  # shared name -> range, where it differs
    aliases: Mapping[str, str] = field(default_factory=dict)  # other native name -> shared name
    # parameter (shared name, else native) -> what must hold for it to have any effect: a spec setting it
    # where it cannot is an error, as the run would log a value that was not used (gbreg.spec.effect)
    needs: Mapping[str, tuple[Needs, ...]] = field(default_factory=dict)
    message_cleaning: tuple[tuple[str, str], ...] = ()  # (regex, replacement): its errors as one line

    @property
    def penalty_axes(self) -> tuple[str, ...]:
        """The shared penalties this library has: a sweep over another applies to the other libraries."""
        return tuple(axis for axis in PENALTY_AXES if axis in self.native_names)

    def accepted_names(self) -> frozenset[str]:
        return frozenset(self.native_names) | self.native_params

    def to_native(self, params: dict) -> dict:
        """Shared names translated to the library's own; other names pass through unchanged."""
        return {self.native_names.get(name, name): value for name, value in params.items()}

    def shared_name(self, native: str) -> str:
        for shared, name in self.native_names.items():
            if name == native:
                return shared
        return self.aliases.get(native, native)

    def curve_metric(self, metric: str, task: str) -> str | None:
        """The library's name for ``metric`` in its per-round evaluation, or None (no curve)."""
        return self.curve_metrics.get(metric, {}).get(task)

    def dataset_key(self, params: dict) -> tuple:
        """The parameters that shape the training matrix: a prepared matrix is reused while they match."""
        return tuple(sorted((k, v) for k, v in self.to_native(params).items() if k in self.dataset_params))

    def clean_message(self, text: str) -> str:
        """One line of the library's error, without its source locations, stack trace or help text."""
        text = " ".join(text.split())
        for pattern, replacement in self.message_cleaning:
            text = re.sub(pattern, replacement, text)
        return text[:300]
