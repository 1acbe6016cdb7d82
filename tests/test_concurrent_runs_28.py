"""Two ``gbreg run`` of one study at once: the second refuses (exit 2) before it trains or writes anything,
instead of resuming the first one's live parent run and training the same trials again.

Real processes on a real SQLite store: the first ``gbreg run`` is held between two trials (through the
pipe of ``test_resume``), the second runs to its end.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from conftest import write_spec
from test_resume import assert_complete, children, parents, plan_keys, resume_spec, run_to

pytestmark = pytest.mark.slow


def gbreg_run(folder, spec_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gbreg", "run", str(spec_path), "-j", "1"], cwd=folder,
                          capture_output=True, text=True, timeout=300)


def test_second_run_of_a_study_being_run_refuses_and_writes_nothing(tracking, tmp_path):
    spec_path = write_spec(tmp_path, resume_spec())
    db = tmp_path / "mlflow.db"
    first = run_to(tmp_path, spec_path, "between-trials", "-j", "1")
    try:
        before = children(db), parents(db)
        second = gbreg_run(tmp_path, spec_path)
        after = children(db), parents(db)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert second.returncode == 2, (second.stdout, second.stderr)
    [(parent_id, status)] = before[1]
    assert status == "RUNNING"
    error = second.stderr.strip()
    assert error.startswith("error: study 'resume' is being run right now by gbreg process "
                            f"{first.pid} on this machine"), error
    assert parent_id in error and "run this again to resume" in error and "Traceback" not in second.stderr
    assert "to run" not in second.stdout + second.stderr  # refused before it planned anything
    assert after == before, "the refused run wrote nothing"

    rerun = gbreg_run(tmp_path, spec_path)  # the first one stopped: this one resumes it
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming parent run" in rerun.stdout + rerun.stderr
    assert_complete(db, plan_keys(spec_path))


def test_a_running_parent_of_another_host_is_not_taken_for_dead(tracking, tmp_path):
    """As with trial runs, a RUNNING parent another machine's process left cannot be checked from here: the
    run is refused with the way out, which then resumes the study."""
    from mlflow import MlflowClient

    spec_path = write_spec(tmp_path, resume_spec())
    db = tmp_path / "mlflow.db"
    first = run_to(tmp_path, spec_path, "between-trials", "-j", "1")
    first.send_signal(signal.SIGKILL)  # the parent stays RUNNING
    first.communicate(timeout=60)
    [(parent_id, status)] = parents(db)
    assert status == "RUNNING"
    client = MlflowClient(f"sqlite:///{db}")
    client.set_tag(parent_id, "gbreg.host", "another-host")  # as if the killed run had been made there

    refused = gbreg_run(tmp_path, spec_path)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert f"parent run {parent_id} is RUNNING in gbreg process {first.pid} on host another-host" in refused.stderr
    assert "cannot be checked from here" in refused.stderr and "set_terminated" in refused.stderr
    assert parents(db) == [(parent_id, "RUNNING")]

    client.set_terminated(parent_id, "FAILED")  # the way out the message gives
    rerun = gbreg_run(tmp_path, spec_path)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming parent run {parent_id}" in rerun.stdout + rerun.stderr
    assert_complete(db, plan_keys(spec_path))
