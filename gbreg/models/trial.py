"""One trial as a pure function of plain inputs: train a model at one grid point on every split of the
data set and aggregate. Runs in a worker process (or a Dask worker, or inline); returns plain data.

A worker keeps its :class:`TrialContext` (the data set and its splits, shipped once) and a cache of
prepared training matrices per (library, split, data-shaping parameters), reused across grid points.
"""

from __future__ import annotations

import io
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gbreg.data_splits import Split
from gbreg.models.boosters import ADAPTERS
from gbreg.models.boosters.adapter import FoldData, SplitResult
from gbreg.models.leaf_distribution import leaf_histogram_png, value_distribution_stats
from gbreg.models.linear import fit_counterpart
from gbreg.models.trees import reached_values

# The files a trial's run holds (part of the MLflow contract, docs/mlflow_contract.md). The worker
# serializes them, so the main process, which logs every trial, only stores bytes.
LEAVES_ARTIFACT = "leaves.parquet"
FOLDS_ARTIFACT = "folds.csv"
COEFFICIENTS_ARTIFACT = "coefficients.csv"
HISTOGRAM_ARTIFACT = "leaf_histogram.png"  # leaf values (or coefficients) with fitted Laplace and Gaussian


@dataclass
class TrialContext:
    """Everything a trial needs besides its own parameters; sent to each worker once."""

    X: pd.DataFrame
    y: np.ndarray
    task: str
    n_classes: int
    splits: list[Split]
    metric: str
    seed: int
    threads: int
    trial_figures: bool = False  # a leaf_histogram.png on every trial's run (spec: mlflow.trial_figures)


@dataclass
class TrialTask:
    """The plain description of one trial a worker receives."""

    trial_key: str
    kind: str
    library: str
    model: str
    params: dict


@dataclass
class TrialResult:
    trial_key: str
    metrics: dict[str, float] = field(default_factory=dict)  # means over splits, <name>_std companions
    curves: dict[str, np.ndarray] = field(default_factory=dict)  # mean over splits per round
    folds: pd.DataFrame | None = None  # one row per split: scores and statistics
    leaves: pd.DataFrame | None = None  # boosters: leaf table with repeat/fold columns
    coefficients: pd.DataFrame | None = None  # linear models
    extra_params: dict = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # artifact name -> its bytes, made in the worker
    error: str | None = None
    error_detail: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class _WorkerState:
    context: TrialContext | None = None
    context_path: str | None = None  # where a spawned worker reads its context at its first trial
    folds: dict[int, FoldData] = {}
    prepared: dict[tuple, object] = {}


def install_context(context: TrialContext) -> None:
    """Keep the data set; drop matrices prepared for an earlier one."""
    _WorkerState.context = context
    _WorkerState.folds = {}
    _WorkerState.prepared = {}


def install_context_file(path: str) -> None:
    """Worker initializer: the context is in ``path`` (pickled), read at the first trial. The worker can
    so start, and import the libraries, while the main process is still loading the data."""
    _WorkerState.context = None
    _WorkerState.context_path = path


def _current_context() -> TrialContext:
    if _WorkerState.context is None and _WorkerState.context_path is not None:
        import pickle

        with open(_WorkerState.context_path, "rb") as handle:
            install_context(pickle.load(handle))
    return _WorkerState.context


def _fold(index: int) -> FoldData:
    context = _WorkerState.context
    if index not in _WorkerState.folds:
        split = context.splits[index]
        _WorkerState.folds[index] = FoldData(
            context.X.iloc[split.train], context.y[split.train], context.X.iloc[split.test], context.y[split.test],
            context.task, context.n_classes)
    return _WorkerState.folds[index]


def run_trial(task: TrialTask, context: TrialContext | None = None) -> TrialResult:
    """Train and measure one trial on every split; a failure comes back as a result with ``error``."""
    if context is not None and context is not _WorkerState.context:
        install_context(context)
    context = _current_context()
    start = time.perf_counter()
    try:
        results = [_train_split(task, index) for index in range(len(context.splits))]
        result = aggregate(task.trial_key, context.splits, results, columns=list(context.X.columns))
        result.files = trial_files(result)
        if context.trial_figures:
            histogram = _histogram(task, result)
            if histogram is not None:
                result.files[HISTOGRAM_ARTIFACT] = histogram
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - a failed trial is recorded, the study goes on
        first_line = (str(exc).strip().splitlines() or [""])[0][:500]
        result = TrialResult(task.trial_key, error=f"{type(exc).__name__}: {first_line}",
                             error_detail=traceback.format_exc())
    result.seconds = time.perf_counter() - start
    return result


def trial_files(result: TrialResult) -> dict[str, bytes]:
    """The run's data files: the leaf table, the coefficients, the per-split table (k-fold)."""
    files = {}
    if result.leaves is not None:
        files[LEAVES_ARTIFACT] = parquet_bytes(result.leaves)
    if result.coefficients is not None:
        files[COEFFICIENTS_ARTIFACT] = result.coefficients.to_csv(index=False).encode()
    if result.folds is not None and len(result.folds) > 1:
        files[FOLDS_ARTIFACT] = result.folds.to_csv(index=False).encode()
    return files


def parquet_bytes(table: pd.DataFrame) -> bytes:
    """A table of number columns as Parquet, written by pyarrow from the columns' arrays: the same table
    as ``DataFrame.to_parquet(index=False)`` reads back, without the pandas schema note whose making
    costs twice the writing."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({str(name): table[name].to_numpy() for name in table.columns}), buffer)
    return buffer.getvalue()


def _histogram(task: TrialTask, result: TrialResult) -> bytes | None:
    """Drawn here, in the worker, so the main process only stores it."""

    if result.leaves is not None:
        values, what = reached_values(result.leaves), "leaf values"
    elif result.coefficients is not None:
        values, what = result.coefficients["coef"].to_numpy(), "coefficients"
    else:
        return None
    point = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in task.params.items()
                     if k in ("reg_alpha", "reg_lambda"))
    return leaf_histogram_png(values, f"{task.model} {point}: {what}")


def _train_split(task: TrialTask, index: int) -> SplitResult:
    result = _fit_split(task, index)

    if result.leaves is not None:
        result.stats.update(value_distribution_stats(reached_values(result.leaves)))
    elif result.coefficients is not None:
        result.stats.update(value_distribution_stats(result.coefficients["coef"].to_numpy()))
    return result


def _fit_split(task: TrialTask, index: int) -> SplitResult:
    context = _WorkerState.context
    fold = _fold(index)
    if task.kind == "linear":
        return fit_counterpart(task.model, task.params, fold, context.metric, context.seed)

    adapter = ADAPTERS[task.library]
    cache_key = (task.library, index, adapter.dataset_key(task.params))
    if cache_key not in _WorkerState.prepared:
        _WorkerState.prepared[cache_key] = adapter.prepare(fold, task.params)
    seed = context.seed + context.splits[index].repeat
    return adapter.train(_WorkerState.prepared[cache_key], fold, task.params, context.metric, seed, context.threads)


def column_means_and_stds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``values`` (splits × columns): the mean and the standard deviation (ddof 0) of the
    values that are not NaN, with pandas' arithmetic (``Series.mean``/``std``, same bits), in one pass
    over the table instead of two pandas calls per column: a trial has dozens of columns."""
    by_column = np.ascontiguousarray(values.T)  # each column's splits contiguous: pandas' summation order
    missing = np.isnan(by_column)
    filled = np.where(missing, 0.0, by_column)
    counts = (~missing).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # a column NaN on every split stays NaN
        means = filled.sum(axis=1) / counts
        squares = (means[:, None] - filled) ** 2
        squares[missing] = 0.0
        stds = np.sqrt(squares.sum(axis=1) / counts)
    return means, stds


def aggregate(trial_key: str, splits: list[Split], results: list[SplitResult],
              columns: list | None = None) -> TrialResult:
    """The trial's result from its fits on every split; ``columns``: the data set's feature columns,
    which order ``features_used`` (see :func:`trial_extra_params`)."""
    rows = []
    for split, result in zip(splits, results):
        rows.append({"repeat": split.repeat, "fold": split.fold, **result.scores, **result.stats,
                     "fit_seconds": result.fit_seconds})
    folds = pd.DataFrame(rows)
    value_columns = [c for c in folds.columns if c not in ("repeat", "fold")]
    values = np.array([[row.get(name, np.nan) for name in value_columns] for row in rows], dtype="float64")
    means, stds = column_means_and_stds(values)
    metrics = dict(zip(value_columns, means.tolist()))
    if len(results) > 1:
        metrics.update(zip([f"{name}_std" for name in value_columns], stds.tolist()))
    # a metric with no value on any split (a share of no shrinkage, a fit of fewer than 2 values) is left
    # out, as MLflow leaves out a NaN: the trial's record in memory is the one in the store
    metrics = {name: value for name, value in metrics.items() if value == value}
    curves = {}
    for name in results[0].curves:
        curves[name] = np.mean(np.vstack([r.curves[name] for r in results]), axis=0)
    leaves = None
    if results[0].leaves is not None:
        tables = [pd.DataFrame({**r.leaves, "repeat": np.full(len(r.leaves["value"]), s.repeat),
                                "fold": np.full(len(r.leaves["value"]), s.fold)}) for s, r in zip(splits, results)]
        leaves = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
    coefficients = None
    if results[0].coefficients is not None:
        coefficients = pd.concat([r.coefficients.assign(repeat=s.repeat, fold=s.fold)
                                  for s, r in zip(splits, results)], ignore_index=True)
    return TrialResult(trial_key, metrics=metrics, curves=curves, folds=folds, leaves=leaves,
                       coefficients=coefficients, extra_params=trial_extra_params(results, columns))


def trial_extra_params(results: list[SplitResult], columns: list | None = None) -> dict:
    """The params read back from a trial's fits, one value for the trial's run.

    ``features_used`` is the union over every fit (support recovery reads it as what the trial used),
    in the order of ``columns`` (the data's), else of first use. ``converged`` is true only when every fit
    converged. The other values (XGBoost's fitted base score, LightGBM's and CatBoost's init score, the
    linear settings that depend on the training rows) differ between splits and are the first fit's:
    docs/mlflow_contract.md says so.
    """
    extra = dict(results[0].extra_params)
    if "features_used" in extra:
        used = dict.fromkeys(str(name) for r in results for name in r.extra_params.get("features_used", []))
        order = [str(column) for column in columns or []]
        extra["features_used"] = [name for name in order if name in used] + [name for name in used if name not in order]
    if "converged" in extra:
        extra["converged"] = all(bool(r.extra_params.get("converged", True)) for r in results)
    return extra
