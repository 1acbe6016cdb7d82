"""Hypothesis metrics are checked against the task once the data tell it: a file whose target is a number
is a regression, so test_auc is refused by `gbreg validate` (it used to validate, then every verdict said
'no trial has a value of test_auc')."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg.cli import app


def test_a_metric_of_another_task_is_refused_once_the_data_give_the_task(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"]).assign(price=rng.normal(size=120))
    frame.to_csv(tmp_path / "houses.csv", index=False)
    expect = [{"metric": "test_auc", "trend": "decreasing", "along": "reg_alpha"},
              {"metric": "gap_rmse", "trend": "decreasing", "along": "reg_lambda"}]
    data = {"source": "file", "path": "houses.csv", "target": "price"}
    spec = write_spec(tmp_path, small_spec(data=data, evaluation={"split": "holdout", "test_size": 0.25},
                                           expect=expect))
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2, result.output
    assert ("expect[0].metric: 'test_auc' does not fit task 'regression'; the task's metrics are rmse, mae, r2"
            in result.stderr)
    assert "expect[1]" not in result.stderr  # gap_rmse fits
    assert CliRunner().invoke(app, ["validate", str(spec), "--no-data"]).exit_code == 0  # the task is not known


def test_a_suite_checks_each_data_sets_hypotheses_against_the_task_its_data_give(tmp_path):
    import yaml

    rng = np.random.default_rng(1)
    numbers = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    numbers.assign(price=rng.normal(size=120)).to_csv(tmp_path / "houses.csv", index=False)
    numbers.assign(kind=rng.choice(["x", "y", "z"], 120)).to_csv(tmp_path / "kinds.csv", index=False)
    suite = {"name": "tasks", "study": {
        "models": {"xgboost": {"n_estimators": 5}}, "sweep": {"reg_alpha": [0, 1], "reg_lambda": [0, 1]},
        "expect": [{"metric": "gap_{metric}", "trend": "decreasing", "along": "reg_lambda"},
                   {"metric": "test_auc", "trend": "decreasing", "along": "reg_alpha"}]},
        "datasets": [{"name": "houses", "data": {"source": "file", "path": "houses.csv", "target": "price"}},
                     {"name": "kinds", "data": {"source": "file", "path": "kinds.csv", "target": "kind"},
                      "skip_expect": [2]}]}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    result = CliRunner().invoke(app, ["suite", "validate", str(path)])
    assert result.exit_code == 2, result.output
    # gap_{metric} is gap_rmse and gap_logloss: both fit; test_auc fits the classes only (skipped there)
    assert result.stderr.strip().endswith(
        "study.expect[1].metric (for datasets[0]): 'test_auc' does not fit task 'regression'; the task's metrics are "
        "rmse, mae, r2; if it does not apply there, list its number under that entry's skip_expect")
    assert "datasets[1]" not in result.stderr
