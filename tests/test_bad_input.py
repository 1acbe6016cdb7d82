"""Bad input, table-driven: every mistake gets one line naming the cause and the place, exit status 2,
and leaves the tracking store exactly as it was (nothing trained, nothing logged).

Each case writes a spec (and, for data cases, a data file) into a fresh folder and runs ``gbreg run``
through the real CLI. The store is either absent (it must stay absent) or holds one finished study
(its runs must be unchanged).
"""

from __future__ import annotations

import gc
import re
import socket
import sqlite3
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
    frame.assign(b=["x", "y"] * 30).to_csv(folder / "text_feature.csv", index=False)
    frame[["y"]].to_csv(folder / "target_only.csv", index=False)
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
     "{spec}: malformed YAML: line 2, column 1: found character '\\t' that cannot start any token"),
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
    ("negative-native-penalty", spec_with(models={"lightgbm": {"lambda_l1": -1}}),
     "{spec}: models.lightgbm.lambda_l1: must be a finite number ≥ 0, got -1"),
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
    ("feature-not-numeric", file_spec("text_feature.csv", data__categorical=["a"]),
     "{dir}/text_feature.csv: column 'b' is not numeric; list it under data.categorical or fix its values"),
    ("metric-contradicts-task", spec_with(evaluation={"metric": "auc"}),
     "{spec}: evaluation.metric: 'auc' does not fit the task 'regression' (inferred from the target); "
     "expected one of rmse, mae, r2"),
    # parameters the libraries reject, found by the cheap check
    ("xgboost-rejects-param", spec_with(models__xgboost__max_depth=-5),
     "{spec}: models.xgboost.max_depth: xgboost rejects max_depth=-5: "
     "value -5 for Parameter max_depth should be greater equal to 0"),
    ("lightgbm-rejects-param", spec_with(models={"lightgbm": {"n_estimators": 3, "num_leaves": 1}}),
     "{spec}: models.lightgbm.num_leaves: lightgbm rejects num_leaves=1: Check failed: (num_leaves) > (1)"),
    ("library-rejects-sweep-value", spec_with(sweep={"reg_alpha": [0], "learning_rate": [0.1, -1]}),
     "{spec}: sweep.learning_rate[1]: xgboost rejects learning_rate=-1: "
     "value -1 for Parameter learning_rate should be greater equal to 0"),
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

    spec = spec_with(models={"xgboost": {"n_estimators": 3, "max_depth": -5},
                             "lightgbm": {"n_estimators": 3, "num_leaves": 1}})
    _write_data(tmp_path)
    path = write_spec(tmp_path, spec)
    before = set(Path(tempfile.gettempdir()).glob("gbreg-context-*"))
    in_process = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1"])
    on_worker = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "2"])
    assert in_process.exit_code == on_worker.exit_code == 2, on_worker.output
    assert "models.xgboost.max_depth: xgboost rejects max_depth=-5" in on_worker.stderr
    assert "models.lightgbm.num_leaves: lightgbm rejects num_leaves=1" in on_worker.stderr
    assert on_worker.stderr == in_process.stderr
    assert "Traceback" not in on_worker.output
    assert not (tmp_path / "mlflow.db").exists()
    assert not (tmp_path / "mlartifacts").exists()
    assert set(Path(tempfile.gettempdir()).glob("gbreg-context-*")) <= before
    assert gc.isenabled() and gc.get_freeze_count() == 0  # the study's collector pause is undone


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
    """XGBoost refuses an infinite feature value that LightGBM accepts. The value sits in a row the cheap
    check does not sample, so validation passes and the XGBoost trials fail while training: each is a
    FAILED child run with the error, the LightGBM trials finish, the summary lists the failures, exit 1."""
    from mlflow.tracking import MlflowClient

    from gbreg.param_check import sample_rows

    frame = _frame(400)
    unsampled = next(i for i in range(400) if i not in set(sample_rows(400)))
    frame.loc[unsampled, "a"] = np.inf
    frame.to_csv(tmp_path / "inf.csv", index=False)
    spec = file_spec("inf.csv", models={"xgboost": {"n_estimators": 5}, "lightgbm": {"n_estimators": 5}},
                     sweep={"reg_alpha": [0, 1]})
    path = write_spec(tmp_path, spec)
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0

    result = CliRunner().invoke(app, ["run", str(path), "-j", "1"])
    assert result.exit_code == 1, result.output
    assert "2 trial(s) failed:" in result.stdout
    for name in ("xgboost α=0", "xgboost α=1"):
        assert re.search(rf"{name}: XGBoostError: .*Input data contains `inf`", result.stdout), result.stdout
    client = MlflowClient(tracking.tracking_uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "bad"]
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags["gbreg.kind"] == "study"]
    assert parent.info.status == "FINISHED" and parent.data.metrics["n_failed"] == 2
    trials = {(r.data.params["library"], r.data.params["reg_alpha"]): r for r in runs if r is not parent
              and r.data.tags["gbreg.kind"] == "booster"}
    assert len(trials) == 4
    for (library, _), run in trials.items():
        if library == "xgboost":
            assert run.info.status == "FAILED"
            assert "Input data contains `inf`" in run.data.tags["gbreg.error"]
            detail = Path(client.download_artifacts(run.info.run_id, "error.txt", str(tmp_path))).read_text()
            assert "Traceback" in detail and "XGBoostError" in detail
        else:
            assert run.info.status == "FINISHED" and run.data.metrics["test_rmse"] > 0
    results = pd.read_csv(client.download_artifacts(parent.info.run_id, "results.csv", str(tmp_path)))
    assert sorted(results["status"]) == ["FAILED", "FAILED", "FINISHED", "FINISHED"]

    again = CliRunner().invoke(app, ["run", str(path), "-j", "1"])  # failed trials are not "done"
    assert again.exit_code == 1
    assert "2 done, 2 to run" in again.stderr
