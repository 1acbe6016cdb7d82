"""Bad input, table-driven: every mistake gets one line naming the cause and the place, exit status 2,
and leaves the tracking store exactly as it was (nothing trained, nothing logged).

Each case writes a spec (and, for data cases, a data file) into a fresh folder and runs ``gbreg run``
through the real CLI. The store is either absent (it must stay absent) or holds one finished study
(its runs must be unchanged).
"""

from __future__ import annotations

import gc
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import write_spec
from typer.testing import CliRunner

from gbreg.cli import app

BASE = {"name": "bad", "seed": 0, "data": {"source": "sklearn", "name": "diabetes"},
        "models": {"xgboost": {"n_estimators": 3, "max_depth": 2}}, "sweep": {"reg_alpha": [0, 1]}}


def spec_with(**changes) -> dict:
    """BASE with changes at ``a__b__c`` key paths (a value of ``None`` deletes the key)."""
    spec = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        node = spec
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return spec


def file_spec(path: str, target: str = "y", **changes) -> dict:
    return spec_with(data={"source": "file", "path": path, "target": target}, **changes)


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "y": rng.normal(size=n)})


def _write_data(folder: Path) -> None:
    """Every data file the cases refer to."""
    frame = _frame()
    frame.to_csv(folder / "ok.csv", index=False)
    frame.assign(y=["cat"] * 30 + ["dog"] * 30).to_csv(folder / "labels.csv", index=False)
    frame.assign(y="spam").to_csv(folder / "one_class.csv", index=False)
    frame.assign(y=frame["y"].where(frame.index % 7 != 0)).to_csv(folder / "nan_target.csv", index=False)
    frame.assign(a=1.0, b=2.0).to_csv(folder / "constant.csv", index=False)
    frame.assign(y=(frame["y"] > 0).astype(int)).to_csv(folder / "binary.csv", index=False)
    frame.assign(b=frame["b"].astype(object).where(frame.index != 6, "oops")).to_csv(folder / "text_feature.csv",
                                                                                    index=False)
    frame[["y"]].to_csv(folder / "target_only.csv", index=False)
    frame.head(5).to_csv(folder / "five_rows.csv", index=False)
    (folder / "empty.csv").write_text("")
    (folder / "header_only.csv").write_text("a,b,y\n")
    (folder / "table.xlsx").write_text("not a spreadsheet")
    (folder / "broken.parquet").write_bytes(b"PAR1 this is no parquet file")
    (folder / "latin1.csv").write_bytes("a,b,y\n1,2,caf\xe9\n".encode("latin-1"))
    (folder / "folder.csv").mkdir()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# (case id, spec: dict or raw YAML text, exact error after "error: " — or a compiled regex)
# {dir} is the case folder, {spec} the spec file name.
CASES = [
    # malformed YAML
    ("yaml-unclosed", "name: [unclosed\n",
     "{spec}: malformed YAML: line 2, column 1: expected ',' or ']', but got '<stream end>'"),
    ("yaml-tab", "name: x\n\tdata: 1\n",
     "{spec}: malformed YAML: line 2, column 1: found character '\\t' that cannot start any token; indent with "
     "spaces: YAML does not allow tabs in indentation"),
    ("yaml-empty", "", "{spec}: the spec is empty; expected a mapping with name, data, models, sweep"),
    ("yaml-list", "- a\n- b\n", "{spec}: expected a mapping at the top level, got list"),
    ("yaml-python-object", "name: !!python/object/apply:os.system ['echo pwned']\n",
     "{spec}: line 1, column 7: the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed: "
     "a spec is plain data (mappings, lists, numbers, text); remove the '!!' tag"),
    # unknown keys, with the closest valid one
    ("unknown-top-key", spec_with(sweeep={"reg_alpha": [0]}),
     "{spec}: sweeep: unknown key 'sweeep'; did you mean 'sweep'?"),
    ("unknown-evaluation-key", spec_with(evaluation={"spilt": "kfold"}),
     "{spec}: evaluation.spilt: unknown key 'spilt'; did you mean 'split'?"),
    ("unknown-library", spec_with(models={"lightgmb": {}}),
     "{spec}: models.lightgmb: unknown library 'lightgmb'; did you mean 'lightgbm'?"),
    ("unknown-model-param", spec_with(models__xgboost__max_dept=3),
     "{spec}: models.xgboost.max_dept: unknown xgboost parameter 'max_dept'; did you mean 'max_depth'?"),
    ("unknown-data-key", spec_with(data__pth="x.csv"), "{spec}: data.pth: unknown key 'pth'; did you mean 'path'?"),
    ("unknown-logspace-key", spec_with(sweep={"reg_alpha": {"lg": [0.1, 10], "num": 3}}),
     "{spec}: sweep.reg_alpha.lg: unknown key 'lg'; did you mean 'log'?"),
    ("unknown-dataset", spec_with(data={"source": "sklearn", "name": "diabetis"}),
     "{spec}: data.name: unknown scikit-learn data set 'diabetis'; did you mean 'diabetes'?"),
    # wrong types
    ("seed-not-int", spec_with(seed="abc"), "{spec}: seed: must be a whole number, got 'abc'"),
    ("folds-not-int", spec_with(evaluation={"split": "kfold", "folds": "five"}),
     "{spec}: evaluation.folds: must be a whole number, got 'five'"),
    ("test-size-range", spec_with(evaluation={"test_size": 2}), "{spec}: evaluation.test_size: must be less than 1.0, got 2"),
    ("evaluation-not-mapping", spec_with(evaluation="kfold"),
     "{spec}: evaluation: must be a mapping (indented key: value lines), got 'kfold'"),
    ("param-is-list", spec_with(models__xgboost__max_depth=[3, 4]),
     "{spec}: models.xgboost.max_depth: must be a single number, true/false or text, got [3, 4]"),
    ("task-unknown", spec_with(task="classification"),
     "{spec}: task: must be one of 'regression', 'binary' or 'multiclass', got 'classification'"),
    ("missing-name", spec_with(name=None), "{spec}: name: required key is missing"),
    ("reserved-param", spec_with(models__xgboost__nthread=4),
     "{spec}: models.xgboost.nthread: 'nthread' is set by gbreg (threads, seeds, determinism)"),
    # penalties
    ("negative-penalty", spec_with(sweep={"reg_alpha": [0, -1]}),
     "{spec}: sweep.reg_alpha[1]: must be a finite number ≥ 0, got -1"),
    ("nan-penalty", "name: bad\ndata: {source: sklearn, name: diabetes}\nmodels: {xgboost: {n_estimators: 3}}\n"
     "sweep: {reg_lambda: [0, .nan]}\n", "{spec}: sweep.reg_lambda[1]: must be a finite number ≥ 0, got nan"),
    ("inf-penalty", "name: bad\ndata: {source: sklearn, name: diabetes}\nmodels: {xgboost: {n_estimators: 3}}\n"
     "sweep: {reg_lambda: [.inf]}\n", "{spec}: sweep.reg_lambda[0]: must be a finite number ≥ 0, got inf"),
    ("inf-logspace", spec_with(sweep={"reg_alpha": {"log": [1, float("inf")], "num": 3}}),
     "{spec}: sweep.reg_alpha.log: must be [low, high] with 0 < low ≤ high, got [1.0, inf]"),
    ("negative-model-penalty", spec_with(models__xgboost__reg_lambda=-2),
     "{spec}: models.xgboost.reg_lambda: must be a finite number ≥ 0, got -2"),
    ("negative-native-penalty", spec_with(models={"lightgbm": {"lambda_l2": -1}}),
     "{spec}: models.lightgbm.lambda_l2: must be a finite number ≥ 0, got -1"),
    # the grid
    ("empty-grid", spec_with(sweep={}),
     "{spec}: sweep: the grid is empty; give at least one axis, e.g. reg_alpha: [0, 1, 10]"),
    ("empty-axis", spec_with(sweep={"reg_alpha": []}), "{spec}: sweep.reg_alpha: the axis has no values; the grid would be empty"),
    # data files
    ("data-missing", file_spec("nowhere.csv"),
     "{dir}/nowhere.csv: data file not found (data.path is relative to the spec file's folder)"),
    ("data-empty", file_spec("empty.csv"), "{dir}/empty.csv: the data file is empty"),
    ("data-header-only", file_spec("header_only.csv"), "{dir}/header_only.csv: the data file has a header but no rows"),
    ("data-unknown-format", file_spec("table.xlsx"),
     "{spec}: data.path: unknown file format '.xlsx'; expected a .csv, .tsv or .parquet file"),
    ("data-unreadable-parquet", file_spec("broken.parquet"),
     re.compile(r"\{dir\}/broken\.parquet: cannot read it as parquet: .*Parquet magic bytes not found.*")),
    ("data-not-utf8", file_spec("latin1.csv"),
     "{dir}/latin1.csv: cannot read it as csv: not UTF-8 text (byte e9 is not valid UTF-8); save it as UTF-8"),
    ("data-is-folder", file_spec("folder.csv"), "{dir}/folder.csv: data.path names a folder, not a data file"),
    ("target-missing", file_spec("ok.csv", target="label"), "{dir}/ok.csv: data.target: no column 'label'; columns are a, b, y"),
    ("target-not-numeric", file_spec("labels.csv", task="regression"),
     "{dir}/labels.csv: task is regression but target column 'y' is not numeric (e.g. 'cat'); "
     "use task: binary or multiclass"),
    ("target-one-class", file_spec("one_class.csv"),
     "{dir}/one_class.csv: target column 'y' has one class ('spam'); classification needs at least two"),
    ("target-has-nan", file_spec("nan_target.csv"),
     "{dir}/nan_target.csv: target column 'y' has 9 missing values; drop or fill those rows"),
    ("task-contradicts-continuous", file_spec("ok.csv", task="binary"),
     "{dir}/ok.csv: task: binary contradicts target column 'y', which holds continuous numbers (e.g. 0.787588); "
     "use task: regression or leave task out"),
    ("task-contradicts-classes", file_spec("binary.csv", task="multiclass"),
     "{dir}/binary.csv: task: multiclass but target column 'y' has 2 classes; use task: binary"),
    ("task-contradicts-sklearn", spec_with(task="binary"),
     "data (sklearn diabetes): task: binary contradicts the target, which is continuous; "
     "use task: regression or leave task out"),
    ("features-constant", file_spec("constant.csv"),
     "{dir}/constant.csv: every feature column (a, b) is constant; nothing to learn from"),
    ("no-features", file_spec("target_only.csv"), "{dir}/target_only.csv: no feature columns besides the target 'y'"),
    ("feature-not-numeric", file_spec("text_feature.csv"),
     "{dir}/text_feature.csv: column 'b' holds numbers except in row 7: 'oops' (row 1 is the first after the "
     "header); fix those cells, add their text to data.na_values, or list the column under data.categorical to "
     "keep it as categories"),
    ("metric-contradicts-task", spec_with(evaluation={"metric": "auc"}),
     "{spec}: evaluation.metric: 'auc' does not fit the task 'regression' (inferred from the target); "
     "expected one of rmse, mae, r2"),
    # parameters the libraries reject, found by the cheap check
    # parameters gbreg sets itself, value ranges, one parameter set twice (more in tests/test_spec_limits.py)
    ("objective-is-gbregs", spec_with(models__xgboost__objective="reg:absoluteerror"),
     "{spec}: models.xgboost.objective: 'objective' is set by gbreg to the task's own loss (squared error, "
     "logistic or softmax), which the closed-form leaf checks, the curves, the metrics and the linear "
     "counterparts all follow"),
    ("unreadable-booster", spec_with(models__xgboost__booster="gblinear"),
     "{spec}: models.xgboost.booster: must be 'gbtree', got 'gblinear': gblinear grows no trees to read; DART "
     "rescales earlier trees each time it drops them, so the leaves are no longer the penalized leaf weights "
     "gbreg measures"),
    ("rounds-not-a-number", spec_with(models__xgboost__n_estimators="abc"),
     "{spec}: models.xgboost.n_estimators: must be a whole number ≥ 1 and ≤ 100000, got 'abc'"),
    ("rounds-fraction-swept", spec_with(models={"xgboost": {"max_depth": 2}}, sweep={"n_estimators": [5.5]}),
     "{spec}: sweep.n_estimators[0]: must be a whole number ≥ 1 and ≤ 100000, got 5.5"),
    ("learning-rate-zero", spec_with(models__xgboost__learning_rate=0),
     "{spec}: models.xgboost.learning_rate: must be a finite number > 0, got 0; with learning_rate 0 no tree "
     "changes the prediction"),
    ("set-in-models-and-swept", spec_with(models__xgboost__alpha=1),
     "{spec}: sweep.reg_alpha: xgboost's reg_alpha is also set at models.xgboost.alpha; set it in one place "
     "(remove it from models to sweep it)"),
    ("yaml-duplicate-key", "name: bad\ndata: {source: sklearn, name: diabetes}\nmodels: {xgboost: {n_estimators: 3}}\n"
     "sweep:\n  reg_alpha: [0, 1]\n  reg_alpha: [5]\n",
     "{spec}: line 6: duplicate key 'reg_alpha' (first at line 5); YAML would silently keep only the last value: "
     "remove one or merge them"),
    ("data-too-small", file_spec("five_rows.csv"),
     "{spec}: data: 5 rows with evaluation.test_size = 0.25 leave 3 for training and 2 for testing; a result "
     "needs at least 10 and 2: use more rows (or another test_size)"),
    # (native parameters outside gbreg's own range table)
    ("xgboost-rejects-param", spec_with(models__xgboost__max_delta_step=-5),
     "{spec}: models.xgboost.max_delta_step: xgboost rejects max_delta_step=-5: "
     "value -5 for Parameter max_delta_step should be greater equal to 0"),
    ("lightgbm-rejects-param", spec_with(models={"lightgbm": {"n_estimators": 3, "path_smooth": -1}}),
     "{spec}: models.lightgbm.path_smooth: lightgbm rejects path_smooth=-1: Check failed: (path_smooth) >= (0.0)"),
    ("library-rejects-sweep-value", spec_with(sweep={"reg_alpha": [0], "max_delta_step": [0.1, -1]}),
     "{spec}: sweep.max_delta_step[1]: xgboost rejects max_delta_step=-1: "
     "value -1 for Parameter max_delta_step should be greater equal to 0"),
]

TRACKING_CASES = [
    ("server-unreachable", lambda folder: f"http://127.0.0.1:{_closed_port()}",
     re.compile(r"tracking server http://127\.0\.0\.1:\d+ cannot be reached \(\[Errno 111\] Connection refused\); "
                r"start it with `gbreg server` or fix tracking_uri in mlflow\.yaml / MLFLOW_TRACKING_URI")),
    ("store-folder-is-a-file", lambda folder: f"sqlite:///{folder}/afile/mlflow.db",
     "tracking store sqlite:///{dir}/afile/mlflow.db: {dir}/afile is a file, not a folder"),
    ("store-is-a-folder", lambda folder: f"sqlite:///{folder}/folder.db",
     "tracking store sqlite:///{dir}/folder.db: {dir}/folder.db is a folder, not a SQLite file; "
     "fix tracking_uri in mlflow.yaml / MLFLOW_TRACKING_URI"),
    ("store-not-sqlite", lambda folder: f"sqlite:///{folder}/notes.db",
     "tracking store sqlite:///{dir}/notes.db: {dir}/notes.db is not a SQLite database; "
     "fix tracking_uri in mlflow.yaml / MLFLOW_TRACKING_URI"),
]


def _store_snapshot(folder: Path) -> dict | None:
    """Runs (id, status), params, metrics and tags in the store; None when there is no store file."""
    db = folder / "mlflow.db"
    if not db.exists():
        return None
    with sqlite3.connect(db) as connection:
        return {table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall())
                for table in ("runs", "params", "metrics", "tags", "experiments")}


def _expected(expected, folder: Path, spec_name: str):
    if isinstance(expected, re.Pattern):
        return re.compile(expected.pattern.replace(r"\{dir\}", re.escape(str(folder)))
                          .replace(r"\{spec\}", re.escape(spec_name)))
    return expected.format(dir=folder, spec=spec_name)


def _run_case(folder: Path, spec, env: dict | None = None):
    _write_data(folder)
    path = folder / "spec.yaml"
    if isinstance(spec, str):
        path.write_text(spec)
    else:
        write_spec(folder, spec)
    return CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1"], env=env)


def _assert_error(result, expected, folder: Path) -> None:
    message = result.stderr.strip()
    assert result.exit_code == 2, (result.exit_code, message, result.exception)
    assert message.startswith("error: "), message
    wanted = _expected(expected, folder, str(folder / "spec.yaml"))
    text = message.removeprefix("error: ")
    if isinstance(wanted, re.Pattern):
        assert wanted.fullmatch(text), text
    else:
        assert text == wanted
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case_id, spec, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_leaves_no_store(tracking, tmp_path, case_id, spec, expected):
    result = _run_case(tmp_path, spec)
    _assert_error(result, expected, tmp_path)
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "mlartifacts").exists()


def test_parameters_rejected_on_a_worker_leave_no_store_and_no_training(tracking, tmp_path):
    """With worker processes the library check runs on a worker while trials start ahead on the new
    store's behalf: the rejection is the same message as in-process, nothing is written, nothing is left."""
    import tempfile

    spec = spec_with(models={"xgboost": {"n_estimators": 3, "max_delta_step": -5},
                             "lightgbm": {"n_estimators": 3, "path_smooth": -1}})
    _write_data(tmp_path)
    path = write_spec(tmp_path, spec)
    before = set(Path(tempfile.gettempdir()).glob("gbreg-context-*"))
    in_process = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1"])
    on_worker = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "2"])
    assert in_process.exit_code == on_worker.exit_code == 2, on_worker.output
    assert "models.xgboost.max_delta_step: xgboost rejects max_delta_step=-5" in on_worker.stderr
    assert "models.lightgbm.path_smooth: lightgbm rejects path_smooth=-1" in on_worker.stderr
    assert on_worker.stderr == in_process.stderr
    assert "Traceback" not in on_worker.output
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "mlartifacts").exists()
    assert set(Path(tempfile.gettempdir()).glob("gbreg-context-*")) <= before
    assert gc.isenabled() and gc.get_freeze_count() == 0  # the study's collector pause is undone


def test_a_parameter_rejected_on_a_new_store_is_said_once(tracking, tmp_path):
    """On a new store trials start on the workers before the check has answered; LightGBM's native
    ``[Fatal]`` lines from those trials (printed by C++ on the worker's stderr) must not precede the error."""
    spec = spec_with(models={"lightgbm": {"n_estimators": 3, "min_data_in_bin": 0}})
    _write_data(tmp_path)
    path = write_spec(tmp_path, spec)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    result = subprocess.run([sys.executable, "-m", "gbreg", "run", str(path), "-q", "-j", "2"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: {path}: models.lightgbm.min_data_in_bin: lightgbm rejects min_data_in_bin=0: "
        "Check failed: (min_data_in_bin) > (0)"], result.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("case_id, uri, expected", TRACKING_CASES, ids=[c[0] for c in TRACKING_CASES])
def test_unusable_tracking_store_is_found_before_training(tracking, tmp_path, case_id, uri, expected):
    (tmp_path / "afile").write_text("in the way")
    (tmp_path / "folder.db").mkdir()
    (tmp_path / "notes.db").write_text("not a database")
    result = _run_case(tmp_path, BASE, env={"MLFLOW_TRACKING_URI": uri(tmp_path)})
    _assert_error(result, expected, tmp_path)
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "mlartifacts").exists()
    assert (tmp_path / "notes.db").read_text() == "not a database"


def test_bad_input_leaves_an_existing_store_unchanged(tracking, tmp_path):
    """A store that already holds a study keeps exactly the same runs, params, metrics and tags."""
    study = tmp_path / "good"
    study.mkdir()
    path = write_spec(study, spec_with(name="good", sweep={"reg_alpha": [0]}))
    ok = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1"])
    assert ok.exit_code == 0, ok.output
    before = _store_snapshot(tmp_path)
    assert before is not None and len(before["runs"]) == 2
    by_id = {case[0]: case for case in CASES}
    for case_id, spec, expected in (by_id[k] for k in ("yaml-unclosed", "negative-penalty", "target-has-nan",
                                                       "xgboost-rejects-param")):
        folder = tmp_path / case_id
        folder.mkdir()
        _write_data(folder)
        spec_path = folder / "spec.yaml"
        spec_path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec))
        result = CliRunner().invoke(app, ["run", str(spec_path), "-q", "-j", "1"])
        _assert_error(result, expected, folder)
        assert _store_snapshot(tmp_path) == before, case_id


def test_enough_cases():
    assert len(CASES) + len(TRACKING_CASES) >= 30


def test_trial_that_fails_in_training_is_logged_and_the_study_goes_on(tracking, tmp_path):
    """LightGBM's GOSS needs top_rate + other_rate <= 1. Each swept value passes the cheap check on its own
    (over the other's default), so validation passes and only the grid point (0.6, 0.5) fails, while
    training: a FAILED child run with the error, the other trials finish, the summary lists the failure,
    exit 1. (Bad data values no longer get this far: they are rejected when the data are loaded.)"""
    from mlflow.tracking import MlflowClient

    _frame(200).to_csv(tmp_path / "ok.csv", index=False)
    spec = file_spec("ok.csv", models={"xgboost": {"n_estimators": 5},
                                       "lightgbm": {"n_estimators": 5, "boosting": "goss"}},
                     sweep={"reg_alpha": [0], "top_rate": [0.2, 0.6], "other_rate": [0.1, 0.5]})
    path = write_spec(tmp_path, spec)
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0

    result = CliRunner().invoke(app, ["run", str(path), "-j", "1"])
    assert result.exit_code == 1, result.output
    assert "1 trial(s) failed:" in result.stdout
    failed_name = "lightgbm α=0 top_rate=0.6 other_rate=0.5"
    assert re.search(rf"{failed_name}: LightGBMError: Check failed: .*top_rate.*other_rate", result.stdout), \
        result.stdout
    client = MlflowClient(tracking.tracking_uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "bad"]
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags["gbreg.kind"] == "study"]
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_failed"] == 1
    trials = {r.info.run_name: r for r in runs if r is not parent and r.data.tags["gbreg.kind"] == "booster"}
    assert len(trials) == 5  # xgboost has no top_rate/other_rate: one trial; lightgbm 2 x 2
    for name, run in trials.items():
        if name == failed_name:
            assert run.info.status == "FAILED"
            assert "top_rate" in run.data.tags["gbreg.error"]
            detail = Path(client.download_artifacts(run.info.run_id, "error.txt", str(tmp_path))).read_text()
            assert "Traceback" in detail and "LightGBMError" in detail
        else:
            assert run.info.status == "FINISHED" and run.data.metrics["test_rmse"] > 0
    results = pd.read_csv(client.download_artifacts(parent.info.run_id, "results.csv", str(tmp_path)))
    assert sorted(results["status"]) == ["FAILED"] + ["FINISHED"] * 4

    again = CliRunner().invoke(app, ["run", str(path), "-j", "1"])  # failed trials are not "done"
    assert again.exit_code == 1
    assert "4 done, 1 to run" in again.stderr


# ----------------------------------------------------------------------------------------------------
# command-line values: out of range or unknown is exit 2 naming the option (never silently coerced)

OPTION_CASES = [
    ("run-jobs-negative", ["run", "{spec}", "-j", "-3"], "'-j' / '--jobs'"),
    ("run-jobs-zero", ["run", "{spec}", "--jobs", "0"], "'-j' / '--jobs'"),
    ("run-executor-unknown", ["run", "{spec}", "--executor", "slurm"], "'--executor'"),
    ("run-verbose-and-quiet", ["run", "{spec}", "-v", "-q"],
     "error: -v/--verbose and -q/--quiet contradict each other; give one"),
    ("run-verbose-and-quiet-dry", ["run", "{spec}", "-v", "-q", "--dry-run"],
     "error: -v/--verbose and -q/--quiet contradict each other; give one"),
    ("results-format-unknown", ["results", "bad", "--format", "json"], "'--format'"),
    ("results-findings-as-csv", ["results", "bad", "--findings", "--format", "csv"],
     "error: --findings prints findings.md: it does not combine with --comparison, --all or --format csv"),
    ("results-findings-and-comparison", ["results", "bad", "--findings", "--comparison"], "error: --findings"),
    ("ui-port-too-high", ["ui", "--port", "70000"], "'--port'"),
    ("ui-port-zero", ["ui", "--port", "0"], "'--port'"),
    ("server-port-negative", ["server", "--port", "-1"], "'--port'"),
    ("reproduce-rtol-negative", ["reproduce", "abc", "--rtol", "-0.1"], "'--rtol'"),
    ("reproduce-jobs-zero", ["reproduce", "abc", "-j", "0"], "'-j' / '--jobs'"),
    ("report-output-is-a-folder", ["report", "abc", "-o", "{dir}"], "'-o' / '--output'"),
]


@pytest.mark.parametrize("case_id, args, expected", OPTION_CASES, ids=[c[0] for c in OPTION_CASES])
def test_option_values_out_of_range_or_unknown_exit_2(tracking, tmp_path, case_id, args, expected):
    path = write_spec(tmp_path, BASE)
    result = CliRunner().invoke(app, [a.format(spec=path, dir=tmp_path) for a in args])
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert expected in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "mlflow.db").exists()


def test_jobs_above_the_cores_are_capped_with_a_note_and_logged_as_used(tracking, tmp_path):
    """-j above this machine's cores runs (and logs) one job per core and says so; -j 1 trains one trial
    at a time with every core's thread, as --help says."""
    from mlflow.tracking import MlflowClient

    from gbreg.cli_options import JOBS_HELP
    from gbreg.machine import available_cores

    cores = available_cores()
    helped = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert " ".join(JOBS_HELP.split()) in " ".join(helped.output.replace("│", " ").split())
    spec = spec_with(sweep={"reg_alpha": list(range(cores + 2))})
    path = write_spec(tmp_path, spec)
    result = CliRunner().invoke(app, ["run", str(path), "-q", "-j", str(cores + 60)])
    assert result.exit_code == 0, result.output
    assert f"note: -j {cores + 60} is more than the {cores} cores here; running {cores} jobs" in result.stderr
    client = MlflowClient(tracking.tracking_uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("bad").experiment_id],
                                   "tags.`gbreg.kind` = 'study'")
    assert parent.data.params["jobs"] == str(cores)
    one = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1", "--fresh"])
    assert one.exit_code == 0 and "note:" not in one.stderr
    runs = client.search_runs([parent.info.experiment_id], "tags.`gbreg.kind` = 'study'",
                              order_by=["attributes.start_time DESC"])
    assert runs[0].data.params["jobs"] == "1" and runs[0].data.params["n_threads"] == str(cores)


# ----------------------------------------------------------------------------------------------------
# read-only commands never create a store, and a "not found" names the store searched

READ_ONLY = [["results", "quick"], ["results", "quick", "--comparison"], ["results", "quick", "--findings"],
             ["report", "quick", "-o", "r.html"], ["reproduce", "0123abcd"], ["ui", "--port", "5999"]]


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a[:2]) for a in READ_ONLY])
def test_read_only_commands_create_no_store(tmp_path, monkeypatch, args):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("GBREG_MLFLOW_CONFIG", raising=False)
    folder = tmp_path / "empty"
    folder.mkdir()
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    db = folder / "mlflow.db"
    assert result.stderr.strip() == (
        f"error: no tracking store at {db} (tracking URI sqlite:///{db}, the default: no mlflow.yaml in "
        f"{folder} or its parents); run a study first (`gbreg run` creates the store), or work in the folder "
        "whose mlflow.yaml names your store, or set MLFLOW_TRACKING_URI")
    assert list(folder.iterdir()) == []

    config = folder / "mlflow.yaml"  # a configured store in a folder that does not exist yet
    config.write_text("tracking_uri: sqlite:///stores/team.db\n")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"no tracking store at {folder / 'stores' / 'team.db'} (tracking URI sqlite:///" in result.stderr
    assert f"from {config}" in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["mlflow.yaml"]


def test_not_found_in_an_existing_store_names_it(tracking, tmp_path):
    from gbreg.tracking.store import open_store

    open_store(tracking)  # an empty store (what `gbreg run` creates)
    before = _store_snapshot(tmp_path)
    uri = tracking.tracking_uri
    for args, message in [
        (["results", "nosuch"], f"error: no study or run 'nosuch' in the tracking store {uri}; experiments: Default"),
        (["report", "nosuch"], f"error: no study or run 'nosuch' in the tracking store {uri}; experiments: Default"),
        (["reproduce", "nosuch"], f"error: no run 'nosuch' in the tracking store {uri}; give the id of a"),
    ]:
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(message), result.stderr
    assert _store_snapshot(tmp_path) == before


# ----------------------------------------------------------------------------------------------------
# data problems through the CLI: exit 2 against the data file, nothing written, no C++ stack trace

DATA_CASES = [
    ("duplicate-columns", "{dir}/d.csv: duplicate column names: 'a' (columns 1, 2); "
                                       "give each column a unique name"),
    ("inf-feature", "{dir}/d.csv: column 'a' holds inf in row 3 (row 1 is the first after the header); "
                          "use a finite number, or leave the cell empty for a missing value"),
    ("huge-target", "{dir}/d.csv: target column 'y' holds -1e+300 in row 3 (row 1 is the first after the "
                          "header), beyond the float32 range (±3.4e+38) that XGBoost and LightGBM train in; "
                          "rescale the column"),
    ("bracket-in-name", "{dir}/d.csv: column name 'a[0]' contains [ ], which XGBoost or LightGBM refuse in "
                              "feature names (any of [ ] < \" , : { }); rename the column"),
]


def _bad_data(case_id: str, folder: Path) -> None:
    frame = _frame(400)
    if case_id == "duplicate-columns":
        (folder / "d.csv").write_text("a,a,b,y\n" + "".join(f"{i},{i % 7},{i % 3},{i * 0.1}\n" for i in range(60)))
        return
    if case_id == "inf-feature":
        frame.loc[2, "a"] = np.inf
    elif case_id == "huge-target":
        frame.loc[2, "y"] = -1e300
    else:
        frame = frame.rename(columns={"a": "a[0]"})
    frame.to_csv(folder / "d.csv", index=False)


@pytest.mark.parametrize("case_id, expected", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_data_problems_are_reported_against_the_data(tracking, tmp_path, case_id, expected):
    _bad_data(case_id, tmp_path)
    path = write_spec(tmp_path, file_spec("d.csv", models={"xgboost": {"n_estimators": 5},
                                                           "lightgbm": {"n_estimators": 5}}))
    for command in (["validate", str(path)], ["run", str(path), "-q", "-j", "1"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == "error: " + expected.replace("{dir}", str(tmp_path))
        assert "Stack trace" not in result.output and "[bt]" not in result.output
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("port", ["70000", "0", "5000.5", "true"])
def test_ui_port_in_mlflow_yaml_out_of_range_is_rejected(tmp_path, monkeypatch, port):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("GBREG_MLFLOW_CONFIG", raising=False)
    config = tmp_path / "mlflow.yaml"
    config.write_text(f"tracking_uri: sqlite:///mlflow.db\nui: {{port: {port}}}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["results", "any"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {config}: ui.port: must be a whole number from 1 to 65535, "
                                     f"got {yaml.safe_load(port)!r}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.yaml"]
