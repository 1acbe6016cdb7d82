"""A cheap check of model parameters against the libraries themselves, before any real training.

Each library trains one round on a small, evenly spaced sample of the real data (with a row of every
class of a classification target), first with the
spec's model parameters, then with each sweep value on its own: a value the library rejects is found
in seconds, with the key path that set it, not after an hour of training. When the model parameters
are rejected together, each is tried alone over the library's defaults to name the one at fault.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gbreg.errors import SpecError
from gbreg.models.boosters import ADAPTERS, FoldData
from gbreg.models.boosters.library import CATEGORICAL, TASK
from gbreg.run.control import owns_process_output
from gbreg.spec.effect import ignored_parameters
from gbreg.spec.params import accepts, resolve_params

SAMPLE_ROWS = 200


@dataclass
class ParamCheck:
    """What the check needs, as plain data: it runs in a worker that has the libraries imported already."""

    X: pd.DataFrame  # the sample rows
    y: np.ndarray
    task: str
    n_classes: int
    metric: str
    libraries: dict[str, dict]  # models.<library> as written
    sweep: dict[str, list]  # sweep axis -> values


def param_check_input(prepared) -> ParamCheck:
    dataset = prepared.dataset
    rows = sample_rows(len(dataset.y), dataset.y if prepared.task != "regression" else None)
    return ParamCheck(dataset.X.iloc[rows], dataset.y[rows], prepared.task, dataset.n_classes, prepared.metric,
                      prepared.spec.libraries(), prepared.spec.sweep_values())


def check_library_params(prepared, problems: list[tuple[str, str]] | None = None) -> None:
    """Raise a SpecError naming every rejected parameter; ``problems`` if a worker already found them."""
    if problems is None:
        problems = library_param_problems(param_check_input(prepared))
    if problems:
        raise SpecError(prepared.spec.source, problems)


def library_param_problems(check: ParamCheck) -> list[tuple[str, str]]:
    """(key path, message) for each model parameter or sweep value a library rejects, or, first, that it
    would ignore on this data (:mod:`gbreg.spec.effect`, with the task and the categorical columns known)."""
    categorical = any(isinstance(dtype, pd.CategoricalDtype) for dtype in check.X.dtypes)
    problems = ignored_parameters(check.libraries, check.sweep, {TASK: check.task, CATEGORICAL: categorical})
    if problems:
        return problems
    fold = FoldData(check.X, check.y, check.X, check.y, check.task, check.n_classes)
    for library, model_params in check.libraries.items():
        adapter = ADAPTERS[library]
        base = {**model_params, "n_estimators": 1}
        error = _try(adapter, fold, resolve_params(library, base), check.metric)
        if error:
            problems += _model_param_problems(adapter, fold, library, model_params, check.metric, error)
            continue
        for axis, values in check.sweep.items():
            if not accepts(library, axis) or axis == "n_estimators":
                continue
            for i, value in values_to_try(values):
                error = _try(adapter, fold, resolve_params(library, {**base, axis: value}), check.metric)
                if error:
                    problems.append((f"sweep.{axis}[{i}]", f"{library} rejects {axis}={value!r}: {error}"))
    return problems


MAX_VALUES_TRIED = 20


def values_to_try(values: list) -> list[tuple[int, object]]:
    """(index, value) pairs to train with: every value of a short axis; of a long numeric axis (a log space
    of up to 1000 points) the smallest, the largest and zero, since the libraries accept numbers by
    interval: the check's cost must not grow with the grid."""
    indexed = list(enumerate(values))
    if len(values) <= MAX_VALUES_TRIED or not all(isinstance(v, (int, float)) for v in values):
        return indexed
    ends = {min(indexed, key=lambda pair: pair[1]), max(indexed, key=lambda pair: pair[1])}
    return sorted(ends | {pair for pair in indexed if pair[1] == 0}, key=lambda pair: pair[0])


def sample_rows(n_rows: int, labels: np.ndarray | None = None) -> np.ndarray:
    """The rows the check trains on, at most :data:`SAMPLE_ROWS`: evenly spaced, so every part of a sorted
    file is represented, and with ``labels`` (a classification target) at least one row of every class,
    the middle one of its rows, the rest evenly spaced over the others. An evenly spaced sample alone
    can miss a rare class (30 positives in 3,000 rows: 1 % of the data), and the libraries then refuse
    valid data (CatBoost: "Target contains only one unique value"; HistGradientBoosting: labels outside
    the classes it saw) that every real split would train on."""
    if labels is None:
        return _evenly_spaced(np.arange(n_rows), SAMPLE_ROWS)
    codes = pd.factorize(np.asarray(labels)[:n_rows], use_na_sentinel=False)[0]
    rows_of = [np.flatnonzero(codes == code) for code in range(codes.max() + 1)] if n_rows else []
    if len(rows_of) > SAMPLE_ROWS:  # more classes than the sample holds rows: they cannot all be in it
        return _evenly_spaced(np.arange(n_rows), SAMPLE_ROWS)
    one_each = np.array([rows[len(rows) // 2] for rows in rows_of], dtype=int)
    others = np.setdiff1d(np.arange(n_rows), one_each)
    return np.union1d(one_each, _evenly_spaced(others, SAMPLE_ROWS - len(one_each)))


def _evenly_spaced(rows: np.ndarray, count: int) -> np.ndarray:
    if count <= 0 or not len(rows):
        return rows[:0]
    return rows[np.unique(np.linspace(0, len(rows) - 1, min(len(rows), count)).astype(int))]


def _model_param_problems(adapter, fold: FoldData, library: str, model_params: dict, metric: str,
                          error: str) -> list[tuple[str, str]]:
    """Name the parameter(s) under ``models.<library>`` the library rejects on their own, if any; when
    the library rejects even its defaults, the data are at fault, not a parameter."""
    defaults_error = _try(adapter, fold, resolve_params(library, {"n_estimators": 1}), metric)
    if defaults_error:
        return [("data", f"{library} rejects the data: {defaults_error}")]
    problems = []
    for name, value in model_params.items():
        alone = _try(adapter, fold, resolve_params(library, {name: value, "n_estimators": 1}), metric)
        if alone:
            problems.append((f"models.{library}.{name}", f"{library} rejects {name}={value!r}: {alone}"))
    return problems or [(f"models.{library}", f"{library} rejects these parameters together: {error}")]


def _try(adapter, fold: FoldData, params: dict, metric: str) -> str | None:
    import warnings

    try:
        with warnings.catch_warnings(), native_output_silenced():
            warnings.simplefilter("ignore")
            adapter.train(adapter.prepare(fold, params), fold, params, metric, seed=0, threads=1)
    except Exception as exc:  # noqa: BLE001 - any rejection is reported as the user's mistake
        return adapter.declaration.clean_message(str(exc)) or type(exc).__name__
    return None


def native_output_silenced():
    """The libraries' native output silenced where gbreg owns the process (the CLI, its workers); elsewhere
    (a notebook, a service) left alone, since redirecting file descriptors changes the whole process."""
    return _silenced_native_output() if owns_process_output() else contextlib.nullcontext()


@contextlib.contextmanager
def _silenced_native_output():
    """LightGBM prints ``[LightGBM] [Fatal] ...`` from C++ before raising; the error says it once, cleanly."""
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no real file descriptors (embedded interpreter): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
