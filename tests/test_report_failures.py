"""A parent artifact that cannot be made after the sweep: the trials stay logged and the parent FINISHED, the
user is told which step failed even with -q, and the exit status says something went wrong."""

from __future__ import annotations

import sqlite3

from conftest import small_spec, write_spec
from typer.testing import CliRunner

import gbreg.run.after_sweep as after_sweep
from gbreg.cli import app


def test_a_failed_findings_step_is_a_warning_and_exit_status_1(tracking, tmp_path, monkeypatch):
    def findings_that_fail(tracker, prepared, outcome):  # a fault injected where gbreg's own bug was
        raise ValueError("cannot reshape array of size 0 into shape (0,newaxis)")

    findings_that_fail.__name__ = "log_findings"
    monkeypatch.setattr(after_sweep, "log_findings", findings_that_fail)
    spec = write_spec(tmp_path, small_spec(sweep={"reg_alpha": [0, 1], "reg_lambda": [0]}))
    result = CliRunner().invoke(app, ["run", str(spec), "-q", "-j", "1"])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == "warning: could not test the hypotheses and make the findings (findings.md): " \
                                    "ValueError: cannot reshape array of size 0 " \
                                    "into shape (0,newaxis)", result.output
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        statuses = sorted(status for (status,) in db.execute("select status from runs"))
    assert statuses == ["FINISHED"] * 5  # the parent and its 4 trials
