"""How big a study is before it runs: ``gbreg run`` refuses a study of more than ``limits.max_trials``
trials (default 10,000), or one it expects to run longer than ``limits.max_hours`` (default 12) on this
machine, unless given ``--yes``, and says roughly how long it would take here.

The estimate is deliberately rough and on the slow side. A booster trial costs, per split, about
``rounds x (SECONDS_PER_ROUND + SECONDS_PER_CELL_ROUND x training rows x features)`` on one core.
Measured with gbreg's own adapters (one thread, default depth/leaves, 100 rounds, regression) on this
2-core machine: XGBoost 0.34 s for 1,500 x 10, 0.90 s for 7,500 x 20, 1.26 s for 30,000 x 20 and
2.35 s for 7,500 x 80 (training rows x features); LightGBM took 0.4-0.7 of that. The constants below
bound all four XGBoost timings (3.6, 9, 27, 27 ms a round predicted; 3.4, 9.0, 12.6, 23.5 measured).
"""

from __future__ import annotations

import math

import numpy as np

from gbreg.data import load_dataset
from gbreg.errors import UserInputError
from gbreg.machine import available_cores
from gbreg.spec.messages import counted
from gbreg.spec.params import accepts, resolve_params, shared_name
from gbreg.spec.schema import Spec

SECONDS_PER_ROUND = 3e-3  # a tree's fixed cost: growing, evaluating both sets, reading its leaves
SECONDS_PER_CELL_ROUND = 40e-9  # histogram building, per training row x feature
SECONDS_PER_TRIAL = 0.05  # a trial's MLflow run (params, metrics, curves, artifacts)


def check_trial_limit(spec: Spec, n_trials: int, yes: bool) -> None:
    """Raise a one-line UserInputError when the study is above its trial limit and ``--yes`` is not given."""
    if yes or n_trials <= spec.max_trials:
        return

    dataset = load_dataset(spec.data, spec.task, spec.seed, spec.base_dir)
    rows, features = dataset.X.shape
    seconds = estimate_seconds(spec, n_trials, rows, features, available_cores())
    raise UserInputError(
        f"{spec.source}: {counted(n_trials, 'trial')}, above limits.max_trials = {spec.max_trials:,}; on {rows:,} rows x "
        f"{features} features that is roughly {_duration(seconds)} on this machine's {available_cores()} core(s). "
        "Shrink the sweep, raise limits.max_trials in the spec, or run it anyway with --yes")


def check_work_limit(spec: Spec, n_trials: int, rows: int, features: int, yes: bool) -> None:
    """Raise a one-line UserInputError when the study's estimated wall time on this machine is above
    ``limits.max_hours`` (default 12) and ``--yes`` is not given. Run once the data set is loaded."""
    if yes:
        return
    seconds = estimate_seconds(spec, n_trials, rows, features, available_cores())
    if seconds <= spec.max_hours * 3600:
        return
    raise UserInputError(
        f"{spec.source}: {counted(n_trials, 'trial')} on {rows:,} rows x {features} features would take roughly "
        f"{_duration(seconds)} on this machine's {available_cores()} core(s), above limits.max_hours = {spec.max_hours:g}. "
        "Shrink the sweep or the rounds, raise limits.max_hours in the spec, or run it anyway with --yes")


def estimate_seconds(spec: Spec, n_trials: int, rows: int, features: int, cores: int) -> float:
    """Wall time of the whole study, all cores busy (see the module docstring for the constants)."""
    evaluation = spec.evaluation
    if evaluation.split == "kfold":
        splits, train_rows = evaluation.folds * spec.repeats, rows * (evaluation.folds - 1) / evaluation.folds
    else:
        splits, train_rows = spec.repeats, rows * (1 - evaluation.test_size)
    axes = spec.sweep_values()
    work, boosters = 0.0, 0
    for library, params in spec.libraries().items():
        own = {axis: values for axis, values in axes.items() if accepts(library, axis)}
        trials = 1
        for values in own.values():
            trials *= len(values)
        swept = [values for axis, values in own.items() if shared_name(library, axis) == "n_estimators"]
        rounds = (sum(swept[0]) / len(swept[0]) if swept
                  else resolve_params(library, params)["n_estimators"])
        work += trials * splits * rounds * (SECONDS_PER_ROUND + SECONDS_PER_CELL_ROUND * train_rows * features)
        boosters += trials
    linear = max(n_trials - boosters, 0)  # counterparts: a fraction of a booster trial each
    work += (boosters + linear) * SECONDS_PER_TRIAL
    return work / max(cores, 1)


MIN_TRAIN_ROWS = 10  # fewer, and no tree has rows to split (LightGBM wants 20 per leaf by default)
MIN_TEST_ROWS = 2  # one row gives no r2, no AUC and a test score that is one residual


def _split_sizes(spec: Spec, n_rows: int) -> tuple[int, int]:
    """(training rows, test rows) of the smallest split the evaluation makes of ``n_rows``."""
    evaluation = spec.evaluation
    if evaluation.split == "kfold":
        return n_rows - math.ceil(n_rows / evaluation.folds), n_rows // evaluation.folds
    test = math.ceil(n_rows * evaluation.test_size)
    return n_rows - test, test


def leaf_size_warnings(spec: Spec, n_rows: int) -> list[str]:
    """Libraries whose smallest ``min_data_in_leaf`` (LightGBM, HistGradientBoosting: 20 by default) leaves
    no split possible on a split's training rows: every tree would be one leaf, and every trial the same."""
    from gbreg.spec.params import accepts, resolve_params, shared_name

    train, _ = _split_sizes(spec, n_rows)
    axes = spec.sweep_values(skip_invalid=True)
    warnings = []
    for library, params in spec.libraries().items():
        resolved = resolve_params(library, params)
        swept = [v for axis, values in axes.items() for v in values
                 if accepts(library, axis) and shared_name(library, axis) == "min_data_in_leaf"]
        smallest = min(swept, default=resolved.get("min_data_in_leaf"))
        if isinstance(smallest, (int, float)) and 2 * smallest > train:
            warnings.append(f"{library}: min_data_in_leaf = {smallest:g} needs {2 * smallest:g} training rows for a "
                            f"split, and a split here trains on {train}: every tree will be a single leaf; set "
                            f"models.{library}.min_data_in_leaf to at most {max(train // 2, 1)}")
    return warnings


def data_size_problems(spec: Spec, dataset) -> list[tuple[str, str]]:
    """Where the data (a :class:`gbreg.data.Dataset`) are too small for the evaluation to mean anything."""
    n_rows, evaluation = len(dataset.y), spec.evaluation
    class_counts = {}
    if dataset.task != "regression":
        counts = np.bincount(dataset.y.astype("int64"), minlength=dataset.n_classes)
        class_counts = {str(label): int(count) for label, count in zip(dataset.classes, counts)}
    train, test = _split_sizes(spec, n_rows)
    if evaluation.split == "kfold":
        how, fix, per_class = f"evaluation.folds = {evaluation.folds}", "fewer evaluation.folds", evaluation.folds
    else:
        how, fix, per_class = f"evaluation.test_size = {evaluation.test_size:g}", "another test_size", 2
    problems = []
    if train < MIN_TRAIN_ROWS or test < MIN_TEST_ROWS:
        problems.append(("data", f"{n_rows} rows with {how} leave {max(train, 0)} for training and {test} for "
                         f"testing; a result needs at least {MIN_TRAIN_ROWS} and {MIN_TEST_ROWS}: use more rows "
                         f"(or {fix})"))
    smallest = min(class_counts, key=class_counts.get, default=None)
    if smallest is not None and class_counts[smallest] < per_class:
        problems.append(("data", f"class {smallest!r} has {class_counts[smallest]} row(s); with {how} every class "
                         f"needs at least {per_class}, so that each {'fold' if per_class > 2 else 'part'} holds it"))
    return problems


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds:.0f} seconds"
