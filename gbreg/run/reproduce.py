"""``gbreg reproduce RUN_ID``: rerun a study from what its parent run recorded and compare (issue 5).

The rerun uses the recorded spec (``spec_input.yaml``: the spec as validated, so every trial keeps its
key), the recorded folder that relative data paths resolve against, and the original's thread count
per trial. Before any training the data are loaded and fingerprinted: a fingerprint that differs from
the recorded one stops the rerun unless ``--allow-data-change``. The rerun is a new parent run tagged
``gbreg.reproduces = RUN_ID``; every trial's metrics are then compared with the original's by trial key.
Timings (``*_seconds``) are not compared: they are never reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from gbreg.console import make_console
from gbreg.errors import DataError, UserInputError
from gbreg.run.study import prepare_study, run_study
from gbreg.spec.tracking_config import load_tracking_config
from gbreg.tracking.readback import TrialRecord, recorded_spec, study_parent_run, trial_records
from gbreg.tracking.store import open_existing_store
from gbreg.tracking.tracker import (
    TAG_DATA_SHA,
    TAG_SPEC_SOURCE,
    VERSION_TAG_PREFIX,
    package_versions,
)

NOT_COMPARED_SUFFIXES = ("seconds", "seconds_std")


@dataclass
class Difference:
    trial_key: str
    run_name: str
    metric: str
    original: float | None
    reproduced: float | None

    @property
    def abs_diff(self) -> float:
        if self.original is None or self.reproduced is None:
            return math.inf
        return abs(self.reproduced - self.original)

    @property
    def rel_diff(self) -> float:
        if self.original is None or self.reproduced is None:
            return math.inf
        scale = abs(self.original)
        return self.abs_diff / scale if scale else (0.0 if self.abs_diff == 0 else math.inf)


@dataclass
class Comparison:
    """What differs between the original study and its rerun, within ``rtol``."""

    n_compared: int = 0
    n_metrics: int = 0
    differences: list[Difference] = field(default_factory=list)
    status_changes: list[tuple[str, str, str, str]] = field(default_factory=list)  # key, name, before, after
    only_original: list[tuple[str, str]] = field(default_factory=list)  # key, name
    only_reproduced: list[tuple[str, str]] = field(default_factory=list)
    # metrics no trial of the original has: added to gbreg after it ran (e.g. CatBoost's leaf_shrinkage),
    # so there is nothing to compare them with; listed, not counted as differences
    new_metrics: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return not (self.differences or self.status_changes or self.only_original or self.only_reproduced)


def reproduce(run_id: str, rtol: float = 0.0, allow_data_change: bool = False, jobs: int | None = None,
              control=None, verbosity: int = 0) -> int:
    """Rerun, print the differences, return the exit status (0: all match within rtol). ``verbosity`` as
    :func:`run_study`'s: at -1 only warnings and the comparison are printed."""

    if not (rtol >= 0 and math.isfinite(rtol)):
        raise UserInputError(f"--rtol must be a finite number ≥ 0, got {rtol!r}")
    console = make_console(stderr=True)
    config = load_tracking_config()
    client = open_existing_store(config)  # the original must be in it: never create an empty one
    original = study_parent_run(client, run_id)
    _check_finished(original)
    spec = recorded_spec(client, original)
    prepared = prepare_study(spec)  # loads the data: nothing is trained before the fingerprint is checked
    _check_fingerprint(original, prepared.data_sha, spec, allow_data_change, console)
    version_changes = changed_versions(original.data.tags)
    if verbosity >= 0:
        _print_versions(version_changes, console)

    params = original.data.params
    original_jobs = int(params.get("jobs", 1))
    threads = int(params["n_threads"]) if "n_threads" in params else None
    if verbosity >= 0:
        console.print(f"reproducing run {run_id} ({original.info.run_name}) with {jobs or original_jobs} job(s) x "
                      f"{threads or 'default'} thread(s) per trial", markup=False, highlight=False)
    outcome = run_study(spec, jobs=jobs or original_jobs, threads=threads, fresh=True, reproduces=run_id,
                        prepared=prepared, config=config, allow_large=True,  # the original ran at this size
                        control=control, verbosity=verbosity)
    if outcome.interrupted:
        return 130
    before = trial_records(client, original)
    after = trial_records(client, client.get_run(outcome.parent_run_id))
    comparison = compare_trials(before, after, rtol)
    print_comparison(comparison, rtol, version_changes, run_id, outcome.parent_run_id, make_console())
    other_threads = threads_explanation(comparison, before, after)
    if other_threads:
        make_console().print(other_threads, markup=False, highlight=False)
    return 0 if comparison.matches else 1


# ----------------------------------------------------------------------------------------------------
# what the original recorded


def _check_finished(parent) -> None:
    """Only a finished study is reproduced: an interrupted or failed one has no after-sweep metrics and
    lacks trials, so its rerun would differ everywhere without anything having changed."""
    status = parent.info.status
    if status == "FINISHED":
        return
    source = parent.data.tags.get(TAG_SPEC_SOURCE)
    again = f"`gbreg run {source}`" if source else "`gbreg run` on its spec"
    what = "is still running, or its process died" if status == "RUNNING" else f"ended {status}"
    raise UserInputError(f"run {parent.info.run_id} ({parent.info.run_name}) {what}: it did not finish, so a "
                         f"rerun has nothing whole to compare with; finish it with {again} (it resumes the "
                         "trials not done), then reproduce the run that finishes")


def _check_fingerprint(parent, data_sha: str, spec, allow_data_change: bool, console) -> None:
    recorded = parent.data.tags.get(TAG_DATA_SHA)
    if recorded is None or recorded == data_sha:
        return
    where = _data_place(spec)
    message = (f"{where}: the data changed since run {parent.info.run_id}: its sha256 fingerprint is now "
               f"{data_sha[:16]}…, the run recorded {recorded[:16]}…")
    if not allow_data_change:
        raise DataError(f"{message}; restore the data, or pass --allow-data-change to rerun and compare anyway")
    console.print(f"warning: {message}; comparing anyway (--allow-data-change)", markup=False, highlight=False)


def _data_place(spec) -> str:
    data = spec.data
    if data.source == "file":
        path = Path(data.path)
        return str(path if path.is_absolute() else spec.base_dir / path)
    return f"data ({data.source} {data.name or data.generator})"


def changed_versions(tags: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    """Package -> (recorded version, version here) for every package whose version differs."""

    recorded = {k.removeprefix(VERSION_TAG_PREFIX): v for k, v in tags.items() if k.startswith(VERSION_TAG_PREFIX)}
    here = package_versions()
    return {name: (recorded.get(name), here.get(name)) for name in sorted(set(recorded) | set(here))
            if recorded.get(name) != here.get(name)}


def _print_versions(changes: dict, console) -> None:
    if not changes:
        console.print("same Python and library versions as the original run", markup=False, highlight=False)
        return
    listed = ", ".join(f"{name} {old or '-'} → {new or '-'}" for name, (old, new) in changes.items())
    console.print(f"versions differ from the original run: {listed}; metrics may differ slightly",
                  markup=False, highlight=False)


# ----------------------------------------------------------------------------------------------------
# comparing


def compare_trials(before: dict[str, TrialRecord], after: dict[str, TrialRecord], rtol: float) -> Comparison:
    """Every metric of every trial, matched by trial key; ``rtol`` 0 means bit-for-bit equal."""
    comparison = Comparison()
    comparison.only_original = [(k, r.run_name) for k, r in before.items() if k not in after]
    comparison.only_reproduced = [(k, r.run_name) for k, r in after.items() if k not in before]
    shared = [k for k in before if k in after]
    recorded = set().union(*(before[k].metrics for k in shared)) if shared else set()
    new_metrics: set[str] = set()
    names: set[str] = set()
    for key in shared:
        old, new = before[key], after[key]
        comparison.n_compared += 1
        if old.status != new.status:
            comparison.status_changes.append((key, old.run_name, old.status, new.status))
        for metric in sorted(set(old.metrics) | set(new.metrics)):
            if metric.endswith(NOT_COMPARED_SUFFIXES):
                continue
            if metric not in recorded:
                new_metrics.add(metric)
                continue
            names.add(metric)
            a, b = old.metrics.get(metric), new.metrics.get(metric)
            if not _close(a, b, rtol):
                comparison.differences.append(Difference(key, old.run_name, metric, a, b))
    comparison.n_metrics = len(names)
    comparison.new_metrics = sorted(new_metrics)
    return comparison


def _close(a: float | None, b: float | None, rtol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= rtol * abs(a)


# ----------------------------------------------------------------------------------------------------
# printing


def print_comparison(comparison: Comparison, rtol: float, version_changes: dict, original_id: str,
                     reproduced_id: str, console, max_rows: int = 40) -> None:
    from rich.table import Table

    tolerance = "exactly" if rtol == 0 else f"within rtol={rtol:g}"
    for key, name in comparison.only_original:
        console.print(f"missing in the rerun: {name} ({key})", markup=False, highlight=False)
    for key, name in comparison.only_reproduced:
        console.print(f"not in the original: {name} ({key})", markup=False, highlight=False)
    for key, name, old, new in comparison.status_changes:
        console.print(f"status changed: {name} ({key}) {old} → {new}", markup=False, highlight=False)
    if comparison.new_metrics:
        console.print(f"not compared, the original has no trial with them (added to gbreg since it ran): "
                      f"{', '.join(comparison.new_metrics)}", markup=False, highlight=False)
    if comparison.differences:
        by_metric: dict[str, list[Difference]] = {}
        for difference in comparison.differences:
            by_metric.setdefault(difference.metric, []).append(difference)
        summary = Table(title=f"metrics that differ ({len(comparison.differences)} values; rtol={rtol:g})")
        for column in ("metric", "trials", "max abs diff", "max rel diff"):
            summary.add_column(column, justify="left" if column == "metric" else "right")
        for metric, items in sorted(by_metric.items(), key=lambda kv: -max(d.rel_diff for d in kv[1])):
            summary.add_row(metric, str(len(items)), f"{max(d.abs_diff for d in items):.3g}",
                            f"{max(d.rel_diff for d in items):.3g}")
        console.print(summary)
        detail = Table(title=f"largest differences (of {len(comparison.differences)})")
        for column in ("trial", "metric", "original", "reproduced", "abs diff", "rel diff"):
            detail.add_column(column, justify="left" if column in ("trial", "metric") else "right")
        ranked = sorted(comparison.differences, key=lambda d: -d.rel_diff)[:max_rows]
        for d in ranked:
            detail.add_row(d.run_name, d.metric, _number(d.original), _number(d.reproduced), f"{d.abs_diff:.3g}",
                           f"{d.rel_diff:.3g}")
        console.print(detail)
    verdict = (f"all {comparison.n_compared} trials match {tolerance} ({comparison.n_metrics} metrics each)"
               if comparison.matches else
               f"{len({d.trial_key for d in comparison.differences})} of {comparison.n_compared} trials differ "
               f"beyond rtol={rtol:g}")
    if not comparison.matches and version_changes:
        verdict += f" (versions differ: {', '.join(version_changes)})"
    console.print(f"{verdict}. Original run {original_id}, rerun {reproduced_id}.", markup=False, highlight=False)


def threads_explanation(comparison: Comparison, before: dict[str, TrialRecord],
                        after: dict[str, TrialRecord]) -> str | None:
    """Why trials differ, when the original trained them with another thread count than the rerun: a study
    resumed with other parallelism by a gbreg that did not yet keep its parent's thread count holds trials
    trained with several (each child run's ``n_threads``). The libraries' results depend on it in their
    last bits, so those trials cannot match exactly; None if no differing trial is such a one."""
    differing = {d.trial_key for d in comparison.differences}
    other = {}
    for key in differing:
        old, new = before.get(key), after.get(key)
        if old is not None and new is not None and old.n_threads and new.n_threads and old.n_threads != new.n_threads:
            other.setdefault((old.n_threads, new.n_threads), []).append(key)
    if not other:
        return None
    counts = "; ".join(f"{len(keys)} trained with {old} thread(s), rerun with {new}"
                       for (old, new), keys in sorted(other.items()))
    n = sum(len(keys) for keys in other.values())
    return (f"{n} of the {len(differing)} differing trials were trained by the original with another thread count "
            f"than the rerun ({counts}; each child run's n_threads param): the original was resumed with other "
            "parallelism, and the libraries' results depend on the thread count in their last bits, so these "
            "differences are expected")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.10g}"
