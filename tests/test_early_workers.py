"""``gbreg run`` starts its local workers before it reads the spec; the study adopts them, or stops them
when its plan needs fewer, and a refused spec stops them with nothing left behind."""

from __future__ import annotations

import os

import psutil
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg.cli import app
from gbreg.run.worker_processes import CONTEXT_FILE_PREFIX, WorkerProcesses, start_workers


def _children() -> set[int]:
    """This process's spawned workers (not multiprocessing's resource tracker, which lives on)."""
    workers = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                workers.add(child.pid)
        except psutil.Error:  # gone meanwhile
            pass
    return workers


def _context_files(folder) -> list:
    return sorted(folder.glob(f"{CONTEXT_FILE_PREFIX}{os.getpid()}-*"))


def _wait_gone(pids: set[int]) -> set[int]:
    _, alive = psutil.wait_procs([psutil.Process(pid) for pid in pids if psutil.pid_exists(pid)], timeout=30)
    return {process.pid for process in alive}


def test_only_a_local_study_of_several_jobs_starts_workers_early():
    assert start_workers("dask", 4) is None
    assert start_workers("local", 1) is None
    workers = start_workers("local", 2)
    try:
        assert isinstance(workers, WorkerProcesses) and workers.jobs == 2
    finally:
        workers.close(cancel=True)
        workers.close(cancel=True)  # a second close does nothing


def test_a_refused_spec_stops_the_early_workers_and_leaves_no_context_file(tracking, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    before = _children()
    path = write_spec(tmp_path, small_spec(sweep={"reg_alpha": [0, "lots"]}))
    result = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "2"])
    assert result.exit_code == 2, result.output
    assert "sweep.reg_alpha" in result.output
    assert not _wait_gone(_children() - before)  # the spawned workers were stopped
    assert not _context_files(tmp_path)
    assert not (tmp_path / "mlflow.db").exists()


def test_a_plan_smaller_than_the_workers_stops_them_and_runs_inline(tracking, tmp_path, monkeypatch):
    from gbreg.run.study import run_study
    from gbreg.spec.schema import validate_spec

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    workers = WorkerProcesses(2)
    early = _children()
    assert len(early) >= 2 and _context_files(tmp_path)
    spec = validate_spec(small_spec(models={"xgboost": {"n_estimators": 5}}, sweep={"reg_alpha": [1]}))
    outcome = run_study(spec, jobs=None, workers=workers, verbosity=-1)  # one trial: one job, inline
    assert outcome.n_ran == 1 and not outcome.failures
    assert not _wait_gone(early) and not _context_files(tmp_path)


def test_a_study_runs_its_trials_on_the_workers_started_early(tracking, tmp_path, monkeypatch):
    from gbreg.run.study import run_study
    from gbreg.spec.schema import validate_spec

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    workers = WorkerProcesses(2)
    workers.pool.submit(os.getpid).result()
    early = set(workers.pool._processes)
    spec = validate_spec(small_spec())
    spawned = []
    original = WorkerProcesses.__init__
    monkeypatch.setattr(WorkerProcesses, "__init__", lambda self, jobs: spawned.append(jobs) or original(self, jobs))
    outcome = run_study(spec, jobs=2, workers=workers, verbosity=-1)
    assert outcome.n_ran == 12 and not outcome.failures
    assert not spawned  # no second set of workers
    assert early and not _wait_gone(early) and not _context_files(tmp_path)
