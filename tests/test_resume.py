"""Resume after any interruption: nothing lost, nothing duplicated.

``gbreg run`` runs in a subprocess that tells the test (one line on a pipe) when it reaches a chosen
moment and then waits there; the test kills it, reads the real SQLite store (read-only, with the
``sqlite3`` module) to check the kill landed at that moment, then runs the same spec again and checks
that the study is complete with exactly one FINISHED child run per trial key, in one parent run, and
that no run is left RUNNING.
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
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


# ``gbreg run`` that stops at a moment of its real sequence of store writes (argv[1]), writes "reached" to
# the pipe whose write end is argv[2], and waits there until a signal ends it (an interrupt raises
# KeyboardInterrupt in the wait, as it would in the library). The study tracker's trial steps and the
# trial function the inline executor calls are wrapped: the moments are the same whether the trial runs
# are written through MLflow's client or straight into the SQLite tables, where the tracker's writer
# thread commits them (each hook settles it first: the moment is what the store then holds).
LAUNCHER = """
import os, sys, threading
import gbreg.run.local_processes
from gbreg.tracking.tracker import StudyTracker
from gbreg.cli import main

moment, reached_fd = sys.argv[1], int(sys.argv[2])
sys.argv = ["gbreg", *sys.argv[3:]]

def reached():
    os.write(reached_fd, b"reached\\n")
    threading.Event().wait()

if moment == "before-first-trial":  # the parent run exists, no child run yet
    StudyTracker.start_trial = lambda self, *args, **kwargs: reached()
elif moment == "during-trial":  # a child run RUNNING, its trial function called, nothing logged yet
    start_trial, trackers = StudyTracker.start_trial, []
    def start_and_keep(self, *args, **kwargs):
        trackers.append(self)
        return start_trial(self, *args, **kwargs)
    def settle_then_stop(*args, **kwargs):
        trackers[-1].settle()
        reached()
    StudyTracker.start_trial = start_and_keep
    gbreg.run.local_processes.run_trial = settle_then_stop
elif moment == "during-logging":  # a child run RUNNING with its files stored, its records not yet
    store_files = StudyTracker._store_files
    def store_files_then_stop(self, run_id, files):
        store_files(self, run_id, files)
        self.settle()
        reached()
    StudyTracker._store_files = store_files_then_stop
elif moment == "between-trials":  # the second child run FINISHED, the next one not started
    finish_trial, finished = StudyTracker.finish_trial, []
    def finish_then_stop(self, run_id, result):
        finish_trial(self, run_id, result)
        finished.append(run_id)
        if len(finished) == 2:
            self.settle()
            reached()
    StudyTracker.finish_trial = finish_then_stop
else:
    raise SystemExit(f"unknown moment {moment}")
main()
"""


def start_run(folder: Path, spec_path: Path, *args: str, output: Path | None = None,
              stop_at: tuple[str, int] | None = None) -> subprocess.Popen:
    """``gbreg run`` in a subprocess; with ``output``, its stdout and stderr go to that file, not pipes;
    with ``stop_at`` (moment, pipe write end), it stops at that moment and says so on the pipe."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    sink = output.open("w") if output else subprocess.PIPE
    command = [sys.executable, "-m", "gbreg"]
    if stop_at:
        command = [sys.executable, "-c", LAUNCHER, stop_at[0], str(stop_at[1])]
    return subprocess.Popen([*command, "run", str(spec_path), *args], cwd=folder, env=env, stdout=sink,
                            stderr=sink, text=True, pass_fds=stop_at[1:] if stop_at else ())


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


# moment -> what the store holds at that moment (child runs as ``children`` reads them), run with -j 1
MOMENTS = {
    "before-first-trial": lambda runs, db: runs == [] and _has_parent(db),
    "during-trial": lambda runs, db: [(status, n) for _, status, _, n in runs] == [("RUNNING", 0)],
    "during-logging": lambda runs, db: [(status, n) for _, status, _, n in runs] == [("RUNNING", 0)],
    "between-trials": lambda runs, db: sorted(status for _, status, _, _ in runs) == ["FINISHED"] * 2,
}


def _has_parent(db: Path) -> bool:
    try:
        return bool(parents(db))
    except sqlite3.Error:
        return False


def run_to(folder: Path, spec_path: Path, moment: str, *args: str, output: Path | None = None,
           timeout: float = 600) -> subprocess.Popen:
    """``gbreg run`` started and stopped at ``moment``; the timeout only guards against a hang."""
    read_end, write_end = os.pipe()
    process = start_run(folder, spec_path, *args, output=output, stop_at=(moment, write_end))
    os.close(write_end)  # the process holds the only write end: it ending is an end of file here
    with os.fdopen(read_end, "rb") as pipe:
        line = pipe.readline() if select.select([pipe], [], [], timeout)[0] else b""
    if line != b"reached\n":
        process.kill()
        pytest.fail(f"gbreg run never reached {moment!r}: {process.communicate(timeout=60)}")
    return process


def plan_keys(spec_path: Path) -> set[str]:
    from gbreg.plan import make_plan
    from gbreg.spec.validation import load_spec

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
    process = run_to(tmp_path, spec_path, moment, "-j", "1")
    at_moment = children(db)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert MOMENTS[moment](at_moment, db), (moment, at_moment)  # the signal came at the intended moment
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
    trials = f"{len(running_before)} trial run(s) and " if running_before else ""
    assert (f"marked {trials}1 study run(s) left RUNNING by a process that died as FAILED; a study's run is "
            "resumed if its study runs again") in rerun.stderr
    # the resumed parent is the same run, and it no longer carries the death notice
    parent_id = parents(tmp_path / "mlflow.db")[0][0]
    assert parent_id not in errors


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_marks_killed_and_says_how_to_resume(tracking, tmp_path, sig):
    at_kill, returncode, err, rerun = kill_and_resume(tmp_path, "during-trial", sig)
    assert returncode == 130, err
    # the hint is the command that was interrupted, its options included (not --fresh)
    assert "interrupted:" in err and f"resume with: gbreg run {tmp_path / 'spec.yaml'} -j 1\n" in err, err
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
    process = run_to(tmp_path, spec_path, "between-trials", "-j", "2", output=tmp_path / "killed.log")
    at_kill = children(db)
    process.kill()
    assert process.wait(60) == -signal.SIGKILL
    assert sum(status == "FINISHED" for _, status, _, _ in at_kill) == 2, at_kill  # its spawned workers may outlive it a little: they hold no lock on the store
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

    from gbreg.cli_process import ProcessRunControl

    class HalfBuilt:
        def __del__(self):
            assert self._temporary_data is None  # never set: the constructor was interrupted

    printed = []
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    with ProcessRunControl() as control:
        control.sweep_starts()
        control.requested = True  # what Ctrl-C sets
        freed_at_once = object.__new__(HalfBuilt)
        del freed_at_once
        in_a_cycle = object.__new__(HalfBuilt)
        in_a_cycle.itself = in_a_cycle
        del in_a_cycle
        control.sweep_ends()
    gc.collect()
    assert printed == []
    assert sys.unraisablehook == printed.append  # the hook before the study is back


def test_results_of_an_interrupted_study_say_how_far_it_got(tracking, tmp_path):
    spec_path = write_spec(tmp_path, resume_spec())
    process = run_to(tmp_path, spec_path, "between-trials", "-j", "1")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    shown = subprocess.run([sys.executable, "-m", "gbreg", "results", "resume"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    finished = sum(status == "FINISHED" for _, status, _, _ in children(tmp_path / "mlflow.db"))
    assert finished == 2
    assert (f"this run of the study was interrupted: 2 of {len(plan_keys(spec_path))} trials finished; "
            f"`gbreg run {spec_path}`") in shown.stdout
    assert shown.stdout.count("FINISHED") == 2 and "status" in shown.stdout  # each trial's status shown
