"""Executors on real spawned workers: same results as inline, and a worker that dies is survived."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from conftest import small_spec

from gbreg.data import load_dataset, make_splits
from gbreg.execute import WORKER_DIED, InlineExecutor, LocalExecutor
from gbreg.plan import make_plan
from gbreg.spec import validate_spec
from gbreg.trial import TrialContext, TrialTask


def _context_and_tasks(n_estimators: int = 20):
    spec = validate_spec(small_spec(models={"xgboost": {"n_estimators": n_estimators, "max_depth": 3},
                                            "lightgbm": {"n_estimators": n_estimators}}))
    dataset = load_dataset(spec.data, None, 0, spec.base_dir)
    splits = make_splits(dataset, "holdout", 0.25, 5, 0, 1)
    context = TrialContext(dataset.X, dataset.y, dataset.task, 0, splits, "rmse", 0, 1)
    tasks = [TrialTask(t.trial_key, t.kind, t.library, t.model, t.params) for t in make_plan(spec)]
    return context, tasks


def test_spawned_workers_give_exactly_the_inline_results():
    context, tasks = _context_and_tasks()
    inline = {r.trial_key: r.metrics for r in InlineExecutor(context).run(tasks)}
    pool = LocalExecutor(context, jobs=2)
    submitted = []
    try:
        local = {r.trial_key: r.metrics for r in pool.run(tasks, on_submit=lambda t: submitted.append(t.trial_key))}
    finally:
        pool.close()
    assert sorted(submitted) == sorted(t.trial_key for t in tasks)
    assert local.keys() == inline.keys()
    for key in inline:
        assert {k: v for k, v in local[key].items() if k != "fit_seconds"} == \
               {k: v for k, v in inline[key].items() if k != "fit_seconds"}


def _kill_workers(pool: LocalExecutor, times: int, after: float) -> threading.Thread:
    """Kill a live worker of ``pool`` ``times`` times, each ``after`` seconds after it appears."""
    def killer():
        killed: set[int] = set()
        deadline = time.monotonic() + 120
        while len(killed) < times and time.monotonic() < deadline:
            processes = getattr(pool._pool, "_processes", None) or {}
            alive = [pid for pid in list(processes) if pid not in killed]
            if alive:
                time.sleep(after)
                os.kill(alive[0], signal.SIGKILL)
                killed.add(alive[0])
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_worker_killed_mid_study_is_retried_and_the_study_completes():
    context, tasks = _context_and_tasks(n_estimators=300)
    pool = LocalExecutor(context, jobs=2)
    try:
        killer = _kill_workers(pool, times=1, after=3.0)
        results = list(pool.run(tasks))
        killer.join(timeout=5)
    finally:
        pool.close()
    assert sorted(r.trial_key for r in results) == sorted(t.trial_key for t in tasks)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]


@pytest.mark.slow
def test_a_trial_whose_worker_dies_twice_is_recorded_as_failed():
    context, tasks = _context_and_tasks(n_estimators=30000)  # several seconds: still training when killed
    pool = LocalExecutor(context, jobs=1)
    try:
        _kill_workers(pool, times=2, after=1.5)
        results = list(pool.run(tasks[:1]))
    finally:
        pool.close(cancel=True)
    assert len(results) == 1 and results[0].error == WORKER_DIED


def test_tasks_started_ahead_are_adopted_or_dropped_and_context_files_are_cleaned(tmp_path):
    """submit_ahead starts trials before the run; run() adopts those it is given (each once, on_submit
    called for it) and drops the others. The context file goes with close(); one left by a killed
    study (its pid dead) is removed by the next executor."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from gbreg.execute import CONTEXT_FILE_PREFIX

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = Path(tempfile.gettempdir()) / f"{CONTEXT_FILE_PREFIX}{dead.pid}-killed.pickle"
    leftover.write_bytes(b"left by a SIGKILLed study")
    context, tasks = _context_and_tasks()
    pool = LocalExecutor(context, jobs=2)
    assert not leftover.exists()
    own = Path(pool._context_path)
    assert own.exists() and own.name.startswith(f"{CONTEXT_FILE_PREFIX}{os.getpid()}-")
    submitted = []
    try:
        pool.submit_ahead(tasks)  # the first 4 start now
        wanted = tasks[1:]  # as if the first were already done: its result must not come back
        results = [r.trial_key for r in pool.run(wanted, on_submit=lambda t: submitted.append(t.trial_key))]
    finally:
        pool.close()
    assert sorted(results) == sorted(submitted) == sorted(t.trial_key for t in wanted)
    assert not own.exists()
