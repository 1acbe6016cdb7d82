"""An artifact folder that cannot be written before the first trial: one line (as when it happens during
the sweep), the parent run FAILED with the error, nothing left RUNNING; once fixed, the same command
resumes that parent and gives it the spec files it lacked.

The folder is made unwritable in a way that stops root too (tests may run as root, whom permission bits
do not stop): the artifact location lies under a regular file. Real ``gbreg run`` processes, real store.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import small_spec, write_spec
from test_resume import assert_complete, children, parents, plan_keys

pytestmark = pytest.mark.slow


def gbreg_run(folder, spec_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gbreg", "run", str(spec_path), "-j", "1"], cwd=folder,
                          capture_output=True, text=True, timeout=300)


def test_unwritable_artifact_folder_before_the_sweep_is_one_line_and_the_parent_failed(tracking, tmp_path):
    from mlflow import MlflowClient

    (tmp_path / "blocker").write_text("a file where the artifact folder's parent should be\n")
    (tmp_path / "mlflow.yaml").write_text(yaml.safe_dump({"tracking_uri": "sqlite:///mlflow.db",
                                                         "artifact_location": "blocker/mlartifacts"}))
    spec_path = write_spec(tmp_path, small_spec(name="unwritable", sweep={"reg_alpha": [0, 1], "reg_lambda": [0]}))
    db = tmp_path / "mlflow.db"

    failed = gbreg_run(tmp_path, spec_path)
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert "Traceback" not in failed.stderr, failed.stderr
    [line] = [text for text in failed.stderr.splitlines() if text.strip()]
    assert line.startswith("error: the study stopped: NotADirectoryError: "), line
    assert "; its runs in progress were marked FAILED; after fixing the cause, resume with: gbreg run " in line
    [(parent_id, status)] = parents(db)
    assert status == "FAILED"
    client = MlflowClient(f"sqlite:///{db}")
    assert client.get_run(parent_id).data.tags["gbreg.error"].startswith("NotADirectoryError: ")
    assert children(db) == [], "no trial started"

    (tmp_path / "blocker").unlink()  # the cause fixed: the same command resumes the study
    rerun = gbreg_run(tmp_path, spec_path)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming parent run {parent_id}" in rerun.stdout + rerun.stderr
    assert_complete(db, plan_keys(spec_path))
    logged = {artifact.path for artifact in client.list_artifacts(parent_id)}
    assert {"spec.yaml", "spec_input.yaml", "results.csv"} <= logged, logged
    assert client.get_run(parent_id).inputs.dataset_inputs, "the data set recorded on the parent"
