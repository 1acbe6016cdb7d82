"""What the user sees while a study runs (progress bar, plain lines, -v, -q) and after it (the summary)."""

from __future__ import annotations

import io
import re

import pytest
from conftest import small_spec

from gbreg.models.trial import TrialResult
from gbreg.plan import make_plan
from gbreg.run.progress import StudyProgress, format_seconds
from gbreg.spec.validation import validate_spec

ANSI = re.compile(r"\x1b\[")


class TerminalStream(io.StringIO):
    """An in-memory stream that says it is a terminal, as a user's shell does."""

    def isatty(self) -> bool:
        return True


def _trials():
    return make_plan(validate_spec(small_spec()))  # 12 trials


def _feed(progress: StudyProgress, scores: list[float | None]) -> None:
    """Finish one trial per score (None = a failed trial)."""
    trials = _trials()
    progress.start(len(scores))
    for trial, score in zip(trials, scores):
        result = (TrialResult(trial.trial_key, error="ValueError: bad input") if score is None
                  else TrialResult(trial.trial_key, metrics={"test_rmse": score, "test_r2": -score}, seconds=0.25))
        progress.trial_done(trial, result)
    progress.stop()


SCORES = [61.0, 60.5, 62.0, None, 59.75, 63.0, 60.0, 59.9, None, 61.5, 64.0, 58.25]


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = StudyProgress(0, "rmse", stream)
    _feed(progress, SCORES)
    out = stream.getvalue()
    assert not ANSI.search(out) and "\r" not in out  # nothing animated in a log
    lines = out.splitlines()
    assert lines[0] == "running 12 trial(s)"
    tally = [line for line in lines if re.match(r"\d+/12 trials", line)]
    assert 5 <= len(tally) <= 11 and tally[-1].startswith("12/12 trials · failed 2 · best test_rmse 58.25")
    assert re.search(r"elapsed \d+s · left ~\d+s$", tally[-1])
    failures = [line for line in lines if "FAILED" in line]
    assert failures == [f"[4/12] {_trials()[3].run_name}: FAILED: ValueError: bad input",
                        f"[9/12] {_trials()[8].run_name}: FAILED: ValueError: bad input"]
    assert (progress.done, progress.failed, progress.best) == (12, 2, 58.25)


def test_verbose_prints_one_line_per_trial():
    stream = io.StringIO()
    _feed(StudyProgress(1, "rmse", stream), SCORES)
    per_trial = [line for line in stream.getvalue().splitlines() if line.startswith("[")]
    assert len(per_trial) == 12
    assert per_trial[0] == f"[1/12] {_trials()[0].run_name}: test_rmse=61 (0.2s)"


def test_quiet_prints_nothing():
    stream = io.StringIO()
    progress = StudyProgress(-1, "rmse", stream)
    progress.message("resuming")
    _feed(progress, SCORES)
    assert stream.getvalue() == ""
    assert progress.best == 58.25  # still counted


def test_best_follows_the_metric_direction():
    progress = StudyProgress(-1, "r2", io.StringIO())
    _feed(progress, SCORES)
    assert progress.best == -58.25  # r2: higher is better


def test_a_terminal_gets_a_progress_bar():
    stream = TerminalStream()
    progress = StudyProgress(0, "rmse", stream)
    progress.start(12)
    assert progress._bar is not None
    progress.stop()
    stream = TerminalStream()
    _feed(StudyProgress(0, "rmse", stream), SCORES)
    out = stream.getvalue()
    assert ANSI.search(out)
    final = ANSI.sub("", out).split("\r")[-1]
    assert "12/12" in final and "failed 2 · best test_rmse 58.25" in final
    assert "elapsed" in final and "left" in final
    assert "FAILED: ValueError: bad input" in out  # failures are still listed above the bar


def test_format_seconds():
    assert [format_seconds(s) for s in (None, 4.4, 59.6, 185, 3725)] == ["?", "4s", "1m00s", "3m05s", "1h02m"]


@pytest.mark.slow
def test_a_real_study_prints_per_trial_lines_and_a_summary(tracking, capsys):
    """``gbreg run -v`` on a 4-trial study: a line per trial with its logged score, then the summary."""
    from rich.console import Console

    from gbreg.report.summary import best_per_model, format_cell, print_summary
    from gbreg.run.study import run_study
    from gbreg.tracking.run_table import numeric_columns

    spec = validate_spec(small_spec(models={"xgboost": {"n_estimators": 20, "max_depth": 3}},
                                    sweep={"reg_alpha": [0, 100], "reg_lambda": [0, 10]}))
    outcome = run_study(spec, jobs=1, verbosity=1, config=tracking)
    err = capsys.readouterr().err
    results = numeric_columns(outcome.results)
    for _, row in results.iterrows():
        assert f"{row['run_name']}: test_rmse={row['test_rmse']:.5g} (" in err
    assert "4/4 trials · failed 0 · best test_rmse " + f"{results['test_rmse'].min():.5g}" in err

    best = best_per_model(outcome.results, "rmse")
    expected = results.loc[results["test_rmse"].idxmin()]
    assert list(best["model"]) == ["xgboost"] and best["run_id"].iloc[0] == expected["run_id"]
    assert {"reg_alpha", "reg_lambda", "leaves_per_tree", "zero_leaf_fraction"} <= set(best.columns)
    console = Console(file=io.StringIO(), width=250)
    print_summary(spec, outcome, console=console)
    shown = console.file.getvalue()
    assert format_cell(expected["test_rmse"]) in shown and format_cell(expected["zero_leaf_fraction"]) in shown
    assert f"parent run {outcome.parent_run_id}" in shown
    assert f"http://127.0.0.1:5000/#/experiments/{outcome.experiment_id}/runs?workflowType=machine_learning" in shown


def test_best_per_model_skips_failed_trials_and_keeps_run_order():
    import pandas as pd

    from gbreg.report.summary import best_per_model, format_cell

    results = pd.DataFrame([
        {"run_id": "a", "status": "FINISHED", "kind": "booster", "model": "lightgbm", "reg_alpha": "0",
         "reg_lambda": "1", "test_rmse": 60.0, "zero_leaf_fraction": 0.0},
        {"run_id": "b", "status": "FINISHED", "kind": "booster", "model": "lightgbm", "reg_alpha": "10",
         "reg_lambda": "1", "test_rmse": 59.0, "zero_leaf_fraction": 0.25},
        {"run_id": "c", "status": "FAILED", "kind": "booster", "model": "xgboost", "reg_alpha": "0",
         "reg_lambda": "0", "test_rmse": None, "zero_leaf_fraction": None},
        {"run_id": "d", "status": "FINISHED", "kind": "linear", "model": "lasso", "reg_alpha": "10",
         "reg_lambda": "0", "test_rmse": 58.5, "zero_coef_fraction": 0.5},
    ])
    best = best_per_model(results, "rmse")
    assert list(best["run_id"]) == ["b", "d"] and list(best["reg_alpha"]) == [10.0, 10.0]
    assert list(best.columns) == ["model", "reg_alpha", "reg_lambda", "test_rmse", "zero_leaf_fraction",
                                  "zero_coef_fraction", "run_id"]
    assert [format_cell(v) for v in (10.0, 0.25, 59.123456, float("nan"))] == ["10", "0.25", "59.12", ""]


def test_quiet_silences_the_progress_not_the_warnings():
    stream = io.StringIO()
    quiet = StudyProgress(verbosity=-1, stream=stream)
    quiet.message("3 done, 5 to run")
    quiet.warning("log_findings failed: ValueError: something")
    assert stream.getvalue() == "warning: log_findings failed: ValueError: something\n"
