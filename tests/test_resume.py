"""Resume after any interruption: nothing lost, nothing duplicated.

``gbreg run`` runs in a subprocess; the test watches the real SQLite store (read-only, with the
``sqlite3`` module) and kills the runner at a chosen moment, then runs the same spec again and checks
that the study is complete with exactly one FINISHED child run per trial key, in one parent run, and
that no run is left RUNNING.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import small_spec, write_spec

pytestmark = pytest.mark.slow

PARENT_TAG = "mlflow.parentRunId"


def resume_spec() -> dict:
    """8 trials of a fraction of a second each: long enough to be caught in each phase."""
    return small_spec(name="resume",
                      models={"xgboost": {"n_estimators": 150, "max_depth": 4},
                              "lightgbm": {"n_estimators": 150, "num_leaves": 15}},
                      sweep={"reg_alpha": [0, 10], "reg_lambda": [0, 10]})


def start_run(folder: Path, spec_path: Path, *args: str, output: Path | None = None) -> subprocess.Popen:
    """``gbreg run`` in a subprocess; with ``output``, its stdout and stderr go to that file, not pipes."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    sink = output.open("w") if output else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "gbreg", "run", str(spec_path), *args], cwd=folder, env=env,
                            stdout=sink, stderr=sink, text=True)


def children(db: Path) -> list[tuple[str, str, str | None, int]] | None:
    """(run id, status, trial key, number of metric values) per child run; None while unreadable."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as connection:
            return connection.execute(
                "SELECT r.run_uuid, r.status, "
                "(SELECT value FROM tags k WHERE k.run_uuid = r.run_uuid AND k.key = 'gbreg.trial_key'), "
                "(SELECT count(*) FROM metrics m WHERE m.run_uuid = r.run_uuid) "
                "FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = ?", (PARENT_TAG,)).fetchall()
    except sqlite3.Error:  # no tables yet, or the writer holds the lock
        return None


def parents(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
        return connection.execute(
            "SELECT r.run_uuid, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "AND t.key = 'gbreg.kind' AND t.value = 'study'").fetchall()


def error_tags(db: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
        return dict(connection.execute("SELECT run_uuid, value FROM tags WHERE key = 'gbreg.error'").fetchall())


# moment -> predicate on the child runs that says "now"
MOMENTS = {
    "before-first-trial": lambda runs, db: runs == [] and _has_parent(db),
    "during-trial": lambda runs, db: any(status == "RUNNING" and n == 0 for _, status, _, n in runs),
    "during-logging": lambda runs, db: any(status == "RUNNING" and n > 0 for _, status, _, n in runs),
    "between-trials": lambda runs, db: sum(status == "FINISHED" for _, status, _, _ in runs) >= 2,
}


def _has_parent(db: Path) -> bool:
    try:
        return bool(parents(db))
    except sqlite3.Error:
        return False


def run_until(process: subprocess.Popen, db: Path, moment: str, timeout: float = 120) -> bool:
    """Poll the store until ``moment`` is observed (True) or the run ends first (False)."""
    predicate = MOMENTS[moment]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        runs = children(db)
        if runs is not None and predicate(runs, db):
            return True
        time.sleep(0.002)
    return False


def plan_keys(spec_path: Path) -> set[str]:
    from gbreg.plan import make_plan
    from gbreg.spec import load_spec

    return {trial.trial_key for trial in make_plan(load_spec(spec_path))}


def assert_complete(db: Path, keys: set[str]) -> None:
    runs = children(db)
    finished = [key for _, status, key, _ in runs if status == "FINISHED"]
    assert sorted(finished) == sorted(keys), "exactly one FINISHED child run per trial key"
    assert not [r for r in runs if r[1] == "RUNNING"], "no child run left RUNNING"
    assert [status for _, status in parents(db)] == ["FINISHED"], "one parent run, FINISHED"


def kill_and_resume(tmp_path: Path, moment: str, sig: int) -> tuple[list, int, str, subprocess.CompletedProcess]:
    """Kill a run at ``moment`` with ``sig``; return the child runs then, its exit status and stderr, the rerun."""
    spec_path = write_spec(tmp_path, resume_spec())
    db = tmp_path / "mlflow.db"
    for _attempt in range(3):  # a moment shorter than a poll can be missed: then start over on a new store
        process = start_run(tmp_path, spec_path, "-j", "1")
        caught = run_until(process, db, moment)
        if caught:
            process.send_signal(sig)
            break
        process.wait(60)
        for leftover in tmp_path.glob("mlflow.db*"):
            leftover.unlink()
    else:
        pytest.fail(f"never observed the moment {moment!r} in 3 runs")
    _, err = process.communicate(timeout=60)
    at_kill = children(db)
    rerun = subprocess.run([sys.executable, "-m", "gbreg", "run", str(spec_path), "-j", "1"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    return at_kill, process.returncode, err, rerun


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigkill_at_any_moment_then_rerun_completes_the_study(tracking, tmp_path, moment):
    at_kill, returncode, _, rerun = kill_and_resume(tmp_path, moment, signal.SIGKILL)
    assert returncode == -signal.SIGKILL
    assert rerun.returncode == 0, rerun.stderr
    keys = plan_keys(tmp_path / "spec.yaml")
    finished_before = {key for _, status, key, _ in at_kill if status == "FINISHED"}
    running_before = {run_id for run_id, status, _, _ in at_kill if status == "RUNNING"}
    if moment != "before-first-trial":
        assert running_before or moment == "between-trials"
        assert f"{len(finished_before)} done, {len(keys) - len(finished_before)} to run" in rerun.stderr
    assert_complete(tmp_path / "mlflow.db", keys)
    # what the killed process left RUNNING is now FAILED, with the reason
    errors = error_tags(tmp_path / "mlflow.db")
    statuses = {run_id: status for run_id, status, _, _ in children(tmp_path / "mlflow.db")}
    for run_id in running_before:
        assert statuses[run_id] == "FAILED"
        assert errors[run_id] == "the gbreg process that ran it died"
    # the parent was RUNNING too: it is marked, then resumed
    assert f"marked {len(running_before) + 1} run(s) left RUNNING by a process that died as FAILED" in rerun.stderr
    # the resumed parent is the same run, and it no longer carries the death notice
    parent_id = parents(tmp_path / "mlflow.db")[0][0]
    assert parent_id not in errors


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_marks_killed_and_says_how_to_resume(tracking, tmp_path, sig):
    at_kill, returncode, err, rerun = kill_and_resume(tmp_path, "during-trial", sig)
    assert returncode == 130, err
    assert "interrupted:" in err and f"resume with: gbreg run {tmp_path / 'spec.yaml'}" in err, err
    assert "Traceback" not in err
    db = tmp_path / "mlflow.db"
    running_before = {run_id for run_id, status, _, _ in at_kill if status == "RUNNING"}
    assert not running_before, "the interrupted run marked its runs before exiting"
    killed = [r for r in at_kill if r[1] == "KILLED"]
    assert len(killed) == 1 and killed[0][3] == 0, "the trial in progress is abandoned, not half-logged"
    assert rerun.returncode == 0, rerun.stderr
    assert_complete(db, plan_keys(tmp_path / "spec.yaml"))
    assert "marked" not in rerun.stderr  # nothing was left RUNNING


def test_sigkill_with_worker_processes_then_rerun(tracking, tmp_path):
    spec_path = write_spec(tmp_path, resume_spec())
    db = tmp_path / "mlflow.db"
    process = start_run(tmp_path, spec_path, "-j", "2", output=tmp_path / "killed.log")
    assert run_until(process, db, "between-trials")
    process.kill()
    process.wait(60)  # its spawned workers may outlive it a little: they hold no lock on the store
    rerun = subprocess.run([sys.executable, "-m", "gbreg", "run", str(spec_path), "-j", "2"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert_complete(db, plan_keys(spec_path))


def test_finished_study_is_not_rerun_and_fresh_starts_over(tracking, tmp_path):
    from typer.testing import CliRunner

    from gbreg.cli import app

    spec_path = write_spec(tmp_path, small_spec(name="again", sweep={"reg_alpha": [0, 1]}))
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(spec_path), "-q", "-j", "1"]).exit_code == 0
    again = runner.invoke(app, ["run", str(spec_path), "-j", "1"])
    assert again.exit_code == 0
    assert "4 done, 0 to run" in again.stderr and "all 4 trials are done" in again.stderr
    fresh = runner.invoke(app, ["run", str(spec_path), "-q", "-j", "1", "--fresh"])
    assert fresh.exit_code == 0
    runs = children(tmp_path / "mlflow.db")
    assert len(runs) == 8 and {status for _, status, _, _ in runs} == {"FINISHED"}
    assert len(parents(tmp_path / "mlflow.db")) == 2


def test_objects_an_interrupt_left_half_built_are_freed_without_a_traceback(monkeypatch):
    """Ctrl-C inside a library's constructor leaves an object whose ``__del__`` fails (XGBoost's data
    iterator: ``AttributeError: ... '_temporary_data'``). Freed at once or later from a reference cycle,
    it must not print "Exception ignored ..." with a traceback under the "interrupted" message."""
    import gc

    from gbreg.runner import _Interrupts

    class HalfBuilt:
        def __del__(self):
            assert self._temporary_data is None  # never set: the constructor was interrupted

    printed = []
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    interrupts = _Interrupts()
    interrupts.requested = True  # what Ctrl-C sets
    freed_at_once = object.__new__(HalfBuilt)
    del freed_at_once
    in_a_cycle = object.__new__(HalfBuilt)
    in_a_cycle.itself = in_a_cycle
    del in_a_cycle
    interrupts.restore()
    gc.collect()
    assert printed == []
    assert sys.unraisablehook == printed.append  # the hook before the study is back
