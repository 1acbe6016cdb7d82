"""Suites (``gbreg suite validate | run | report``): one study per data set, verdicts combined across them.

Real studies on real bundled data into a real SQLite store; the suite file's mistakes are all reported
at once with their key paths, before anything is logged."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gbreg.suite.aggregate import combine, suite_results
from gbreg.suite.verdict_rows import dataset_verdicts

HYPOTHESES = [
    {"metric": "zero_leaf_fraction", "trend": "increasing", "along": "reg_alpha"},
    {"metric": "leaf_abs_mean", "trend": "decreasing", "along": "reg_lambda"},
    {"metric": "n_leaves", "trend": "none", "along": "reg_lambda", "where": {"library": "xgboost"}},
]


def tiny_suite(**overrides) -> dict:
    suite = {
        "name": "tiny-suite",
        "seed": 0,
        "study": {
            "repeats": 3,
            "evaluation": {"split": "holdout", "test_size": 0.3},
            "models": {"xgboost": {"n_estimators": 10, "max_depth": 3},
                       "lightgbm": {"n_estimators": 10, "num_leaves": 7}},
            "sweep": {"reg_alpha": [0, 10], "reg_lambda": [0, 10]},
            "expect": HYPOTHESES,
        },
        "datasets": [
            {"name": "diabetes", "data": {"source": "sklearn", "name": "diabetes"}},
            {"name": "cancer", "data": {"source": "sklearn", "name": "breast_cancer"}},
            {"name": "friedman", "data": {"source": "synthetic", "generator": "friedman1",
                                          "params": {"n_samples": 400, "noise": 1.0}}, "skip_expect": [3]},
        ],
    }
    suite.update(overrides)
    return suite


def write_suite(folder: Path, suite: dict) -> Path:
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def gbreg(folder: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    return subprocess.run([sys.executable, "-m", "gbreg", *args], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------------------------------ the suite file


def test_every_mistake_of_every_entry_is_reported_with_its_key_path_and_nothing_is_logged(tracking, tmp_path):
    (tmp_path / "frame.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i * 2}\n" for i in range(60)))
    suite = tiny_suite()
    suite["study"]["evaluation"]["folds"] = 3  # fine: not a mistake
    suite["study"]["reapeats"] = 2  # misspelled template key
    suite["datasets"] = [
        {"name": "diabetes", "data": {"source": "sklearn", "name": "diabetis"}},  # misspelled data set
        {"name": "frame", "data": {"source": "file", "path": "frame.csv", "target": "z"}},  # no such column
        {"name": "frame", "data": {"source": "sklearn", "name": "wine"}},  # name used twice
        {"name": "cancer", "data": {"source": "sklearn", "name": "breast_cancer"}, "skip_expect": [7],
         "models": {"xgboost": {"max_dept": 3}}},
    ]
    result = gbreg(tmp_path, "suite", "validate", str(write_suite(tmp_path, suite)))
    assert result.returncode == 2, result.stderr
    message = result.stderr
    assert "study.reapeats: unknown study key 'reapeats'; did you mean 'repeats'?" in message
    assert "datasets[0].data.name" in message and "diabetes" in message
    assert "datasets[2].name: 'frame' is already the name of datasets[1]" in message
    assert "datasets[3].skip_expect: expected a list of hypothesis numbers from 1 to 3" in message
    assert "Traceback" not in message
    assert not (tmp_path / "mlflow.db").exists(), "a suite with mistakes logs nothing"

    # the template's mistakes fixed: the data are checked too, each entry's by its own key path
    del suite["study"]["reapeats"]
    suite["datasets"] = [suite["datasets"][1], {"name": "wine", "data": {"source": "sklearn", "name": "wine"},
                                                "evaluation": {"metric": "rmse"}}]
    result = gbreg(tmp_path, "suite", "run", str(write_suite(tmp_path, suite)))
    assert result.returncode == 2, result.stderr
    assert "datasets[0].data" in result.stderr and "'z'" in result.stderr
    assert "datasets[1].evaluation.metric" in result.stderr and "'rmse' does not fit" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_the_template_may_not_set_name_or_data_and_an_entry_may_not_override_expect(tmp_path):
    from gbreg.errors import SpecError
    from gbreg.suite.spec import validate_suite

    suite = tiny_suite()
    suite["study"]["data"] = {"source": "sklearn", "name": "diabetes"}
    suite["datasets"][0]["expect"] = []
    with pytest.raises(SpecError) as caught:
        validate_suite(suite, "s.yaml", tmp_path)
    paths = [path for path, _ in caught.value.problems]
    assert "study.data" in paths and "datasets[0].expect" in paths
    assert "skip_expect" in dict(caught.value.problems)["datasets[0].expect"]


def test_the_same_data_twice_and_a_hypothesis_skipped_twice_are_refused(tmp_path):
    # four entries of iris made the combined verdicts count one data set four times
    from gbreg.errors import SpecError
    from gbreg.suite.spec import validate_suite

    suite = tiny_suite()
    suite["datasets"] += [{"name": "diabetes2", "data": {"source": "sklearn", "name": "diabetes"}},
                          {"name": "cancer", "data": {"source": "sklearn", "name": "wine"}, "skip_expect": [1, 1]}]
    with pytest.raises(SpecError) as caught:
        validate_suite(suite, "s.yaml", tmp_path)
    assert caught.value.problems == [
        ("datasets[3].data", "the same data as datasets[0] ('diabetes'): a data set counts once in the combined "
                             "verdicts; give each entry its own data"),
        ("datasets[4].name", "'cancer' is already the name of datasets[1]"),
        ("datasets[4].skip_expect", "lists a hypothesis more than once: [1, 1]")]


def test_each_entry_is_the_template_with_its_overrides_and_keeps_hypothesis_numbers(tmp_path):
    from gbreg.suite.spec import validate_suite

    suite = tiny_suite()
    suite["datasets"][1]["evaluation"] = {"metric": "auc"}
    suite["datasets"][1]["models"] = {"xgboost": {"max_depth": 2}}
    loaded = validate_suite(suite, "s.yaml", tmp_path)
    cancer, friedman = loaded.studies[1], loaded.studies[2]
    assert cancer.spec.name == "tiny-suite.cancer" and cancer.spec.experiment_name == "tiny-suite"
    assert cancer.spec.evaluation.metric == "auc" and cancer.spec.evaluation.split == "holdout"
    assert cancer.spec.libraries()["xgboost"] == {"n_estimators": 10, "max_depth": 2}  # merged key by key
    assert cancer.hypothesis_numbers == [1, 2, 3]
    assert friedman.hypothesis_numbers == [1, 2] and len(friedman.spec.expect) == 2
    assert loaded.sha256() != validate_suite(tiny_suite(seed=1), "s.yaml", tmp_path).sha256()


# ------------------------------------------------------------------------------------- the aggregation


def synthetic_cells(slope_by_library: dict[str, float], seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Six repeats x a 3 x 2 grid per library; zero_leaf_fraction rises along reg_alpha by ``slope``, with
    noise that reorders neighbours now and then (repeats that all give ρ = 1 exactly have no spread for a
    t-test: the exact test's 2/2^n decides, which 3 repeats cannot pass)."""
    rng = np.random.default_rng(seed)
    rows = []
    for library, slope in slope_by_library.items():
        for alpha in (0.0, 1.0, 10.0):
            for lam in (0.0, 10.0):
                for repeat in range(6):
                    rows.append({"library": library, "kind": "booster", "model": library, "reg_alpha": alpha,
                                 "reg_lambda": lam, "repeat": repeat, "fold": 0,
                                 "zero_leaf_fraction": slope * np.log1p(alpha) + rng.normal(0, 0.1),
                                 "leaf_abs_mean": 1 / (1 + lam) + rng.normal(0, 0.01), "n_leaves": 8.0})
    cells = pd.DataFrame(rows)
    return cells.groupby(["library", "kind", "model", "reg_alpha", "reg_lambda"], as_index=False).mean(), cells


def test_dataset_verdicts_judge_each_library_and_skip_what_cannot_apply():
    results, cells = synthetic_cells({"xgboost": 0.2, "lightgbm": 0.2})
    # catboost has no reg_alpha: a constant column, so the L1 claim does not apply to it
    catboost = cells[cells["library"] == "xgboost"].assign(library="catboost", model="catboost", reg_alpha=0.0)
    cells = pd.concat([cells, catboost], ignore_index=True)
    results = cells.groupby(["library", "kind", "model", "reg_alpha", "reg_lambda"], as_index=False).mean()
    rows = dataset_verdicts("toy", HYPOTHESES, [1, 2, 3], results, cells, ["reg_alpha", "reg_lambda"])
    pairs = set(zip(rows["hypothesis"], rows["library"]))
    assert pairs == {(1, "xgboost"), (1, "lightgbm"), (2, "xgboost"), (2, "lightgbm"), (2, "catboost"),
                     (3, "xgboost")}
    h1 = rows[rows["hypothesis"] == 1]
    assert (h1["verdict"] == "supported").all() and (h1["effect"] > 0.8).all() and (h1["n_units"] == 6).all()
    assert (rows["df"][rows["kind"] == "trend"] == 5).all()


def test_combined_rows_count_verdicts_and_pool_the_effects():
    frames = []
    for number, slope in enumerate((0.3, 0.25, 0.2, 0.0)):
        results, cells = synthetic_cells({"xgboost": slope}, seed=number)
        frames.append(dataset_verdicts(f"set{number}", HYPOTHESES[:1], [1], results, cells,
                                       ["reg_alpha", "reg_lambda"]))
    verdicts = pd.concat(frames, ignore_index=True)
    assert list(verdicts["verdict"]).count("supported") == 3
    combined = combine(verdicts, HYPOTHESES)
    row = combined.iloc[0]
    assert (row["dataset"], row["library"], row["k"]) == ("combined", "xgboost", 4)
    assert (row["n_supported"], row["n_contradicted"], row["n_inconclusive"]) == (3, 0, 1)
    assert row["ci_low"] <= row["effect"] <= row["ci_high"]
    table = suite_results(verdicts, combined)
    assert list(table["dataset"]) == ["set0", "set1", "set2", "set3", "combined"]
    assert {"hypothesis", "dataset", "library", "verdict", "effect", "ci_low", "ci_high"} <= set(table.columns)


# ------------------------------------------------------------------------------------------ end to end


def suite_rows(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
        return connection.execute(
            "SELECT r.run_uuid, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "AND t.key = 'gbreg.kind' AND t.value = 'suite'").fetchall()


def study_rows(db: Path) -> list[tuple[str, str, str]]:
    """(study name, status, suite run id) of each study's parent run."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
        return connection.execute(
            "SELECT s.value, r.status, (SELECT value FROM tags u WHERE u.run_uuid = r.run_uuid AND "
            "u.key = 'gbreg.suite_run_id') FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid AND "
            "t.key = 'gbreg.kind' AND t.value = 'study' JOIN tags s ON s.run_uuid = r.run_uuid AND "
            "s.key = 'gbreg.study'").fetchall()


def finished_children(db: Path) -> dict[str, list[str]]:
    """study name -> the trial keys of its FINISHED child runs."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
        rows = connection.execute(
            "SELECT s.value, k.value FROM runs r JOIN tags k ON k.run_uuid = r.run_uuid AND "
            "k.key = 'gbreg.trial_key' JOIN tags s ON s.run_uuid = r.run_uuid AND s.key = 'gbreg.study' "
            "WHERE r.status = 'FINISHED'").fetchall()
    out: dict[str, list[str]] = {}
    for study, key in rows:
        out.setdefault(study, []).append(key)
    return out


@pytest.mark.slow
def test_a_suite_runs_one_study_per_data_set_then_logs_the_combined_verdicts(tracking, tmp_path):
    path = write_suite(tmp_path, tiny_suite())
    result = gbreg(tmp_path, "suite", "run", str(path))
    assert result.returncode == 0, result.stderr
    assert "[3/3] friedman" in result.stdout and "H1" in result.stdout
    db = tmp_path / "mlflow.db"
    [(suite_run_id, status)] = suite_rows(db)
    assert status == "FINISHED"
    studies = sorted(study_rows(db))
    assert [name for name, _, _ in studies] == ["tiny-suite.cancer", "tiny-suite.diabetes", "tiny-suite.friedman"]
    assert {status for _, status, _ in studies} == {"FINISHED"}
    assert {run for _, _, run in studies} == {suite_run_id}, "each study links to its suite run"

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    folder = client.download_artifacts(suite_run_id, "", str(tmp_path / "artifacts"))
    table = pd.read_csv(Path(folder) / "suite_results.csv")
    per_data_set = table[table["dataset"] != "combined"]
    # H1, H2 on both libraries of three data sets; H3 (xgboost only) skipped on friedman
    assert len(per_data_set) == 2 * 2 * 3 + 2
    assert set(table[table["dataset"] == "combined"][["hypothesis", "library"]].itertuples(index=False, name=None)) \
        == {(1, "xgboost"), (1, "lightgbm"), (2, "xgboost"), (2, "lightgbm"), (3, "xgboost")}
    assert set(per_data_set["verdict"]) <= {"supported", "contradicted", "inconclusive"}
    assert (Path(folder) / "plots" / "forest_h1.png").stat().st_size > 10_000
    findings = (Path(folder) / "suite_findings.md").read_text()
    assert "holds on" in findings and "combined effect" in findings
    run = client.get_run(suite_run_id)
    assert run.data.metrics["hypothesis_2_xgboost_n_supported"] + run.data.metrics[
        "hypothesis_2_xgboost_n_contradicted"] + run.data.metrics["hypothesis_2_xgboost_n_inconclusive"] == 3

    again = gbreg(tmp_path, "suite", "run", str(path))
    assert again.returncode == 0 and "the suite is done" in again.stdout, again.stdout + again.stderr
    assert f"run {suite_run_id} (use --fresh to run it again)" in again.stdout
    assert len(suite_rows(db)) == 1
    from gbreg.suite.run import run_suite
    from gbreg.suite.spec import load_suite

    said = []  # called as a library, it names the library's parameter
    assert run_suite(load_suite(path), say=said.append, config=tracking).already_done
    assert said[-1] == (f"the suite is done: its results are in run {suite_run_id} "
                        "(run_suite(..., fresh=True) to run it again)")

    page = gbreg(tmp_path, "suite", "report", "tiny-suite", "-o", "suite.html")
    assert page.returncode == 0, page.stderr
    html = (tmp_path / "suite.html").read_text()
    assert "data:image/png;base64," in html and "Each claim across data sets" in html

    # gbreg results of the suite's run (or name) printed an empty table; it says where its results are
    for asked in (suite_run_id, "tiny-suite"):
        shown = gbreg(tmp_path, "results", asked)
        assert shown.returncode == 2, shown.stdout
        assert (f"is the run of suite 'tiny-suite', which combines its studies' verdicts and holds no trials: see "
                f"`gbreg suite report {suite_run_id} -o suite.html`; its studies: 'tiny-suite.cancer', "
                "'tiny-suite.diabetes', 'tiny-suite.friedman' (gbreg results STUDY)") in shown.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_a_suite_killed_mid_study_resumes_its_run_and_completes_every_study_once(tracking, tmp_path, sig):
    path = write_suite(tmp_path, tiny_suite())
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    process = subprocess.Popen([sys.executable, "-m", "gbreg", "suite", "run", str(path), "-j", "1"], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    in_second = False
    for line in process.stdout:  # the event: a trial of the second study finished
        seen.append(line)
        in_second = in_second or line.startswith("[2/3]")
        if in_second and "trials" in line and line.split("/")[0].strip().isdigit():
            break
    process.send_signal(sig)
    rest, _ = process.communicate(timeout=120)
    assert in_second, "".join(seen)
    db = tmp_path / "mlflow.db"
    [(suite_run_id, status)] = suite_rows(db)
    if sig == signal.SIGKILL:
        assert status == "RUNNING"  # nothing could mark it
    else:  # stopped cleanly: the study in progress and the suite run KILLED, and how to resume
        assert (status, process.returncode) == ("KILLED", 130), rest
        # the study in progress and the suite both point at the suite: a study of a suite has no spec file
        resume = f"resume with: gbreg suite run {path} -j 1"
        assert rest.count(resume) == 2, rest
        assert "resume with: gbreg run" not in rest, rest
        assert "KILLED" in {status for _, status, _ in study_rows(db)}

    rerun = gbreg(tmp_path, "suite", "run", str(path))
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming suite run {suite_run_id}" in rerun.stdout
    assert suite_rows(db) == [(suite_run_id, "FINISHED")]
    from gbreg.plan import make_plan
    from gbreg.suite.spec import load_suite

    finished = finished_children(db)
    for study in load_suite(path).studies:
        keys = sorted(trial.trial_key for trial in make_plan(study.spec))
        assert sorted(finished[study.spec.name]) == keys, f"exactly one FINISHED child per trial of {study.dataset}"


@pytest.mark.slow
def test_the_shipped_suite_is_valid_and_its_data_load():
    result = gbreg(Path(__file__).resolve().parents[1], "suite", "validate", "suites/l1_l2_claims.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok — ") == 20 and "suites/l1_l2_claims.yaml: ok" in result.stdout


def test_metric_placeholder_becomes_each_data_sets_metric_including_one_known_only_from_its_target(tmp_path):
    from gbreg.suite.run import check_suite
    from gbreg.suite.spec import validate_suite

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=200), "x2": rng.normal(size=200)})
    frame["label"] = np.where(frame["x1"] + rng.normal(0, 0.5, 200) > 0, "yes", "no")  # a string target
    frame.to_csv(tmp_path / "labels.csv", index=False)
    suite = tiny_suite()
    suite["study"]["expect"] = [{"metric": "gap_{metric}", "trend": "decreasing", "along": "reg_lambda"},
                                {"best": "test_{metric}", "interior": ["reg_alpha", "reg_lambda"]}]
    suite["study"]["sweep"] = {"reg_alpha": [0, 1, 10], "reg_lambda": [0, 1, 10]}
    suite["datasets"] = [suite["datasets"][0], suite["datasets"][1],
                         {"name": "labels", "data": {"source": "file", "path": "labels.csv", "target": "label"}}]
    loaded = validate_suite(suite, "s.yaml", tmp_path)
    metrics = {s.dataset: [h.get("metric") or h.get("best") for h in s.spec.expect] for s in loaded.studies}
    assert metrics["diabetes"] == ["gap_rmse", "test_rmse"] and metrics["cancer"] == ["gap_logloss", "test_logloss"]
    assert [s.metric_from_data for s in loaded.studies] == [False, False, True]
    check_suite(loaded, say=lambda line: None)
    assert [h["metric"] for h in loaded.studies[2].spec.expect[:1]] == ["gap_logloss"]


def test_a_skipped_hypothesis_does_not_renumber_the_others_in_the_study(tmp_path):
    """docs/suites.md: hypothesis 3 is the same claim on every data set, in the study's own findings too."""
    from gbreg.analysis.judgement import judge
    from gbreg.suite.spec import validate_suite

    suite = tiny_suite()
    suite["datasets"][0]["skip_expect"] = [1]
    diabetes = validate_suite(suite, "s.yaml", tmp_path).studies[0]
    assert diabetes.hypothesis_numbers == [2, 3]
    means, cells = synthetic_cells({"xgboost": 0.2})
    verdicts = judge(cells, diabetes.spec.expect, ["reg_alpha", "reg_lambda"], trials=means)
    assert [(v.index, v.hypothesis.metric) for v in verdicts] == [(2, "leaf_abs_mean"), (3, "n_leaves")]
    assert list(verdicts.to_frame()["index"]) == [2, 3]


def test_a_template_hypothesis_refused_on_some_data_sets_names_them_once(tmp_path):
    from gbreg.errors import SpecError
    from gbreg.suite.spec import validate_suite

    suite = tiny_suite()
    suite["study"]["expect"] = [
        {"metric": "test_rmse", "sign": "positive"},  # a regression metric: not on wine
        {"metric": "n_leaves", "sign": "positive", "where": {"library": "catboost"}},  # not in models
    ]
    suite["datasets"] = [{"name": "diabetes", "data": {"source": "sklearn", "name": "diabetes"}},
                         {"name": "wine", "data": {"source": "sklearn", "name": "wine"}},
                         {"name": "iris", "data": {"source": "sklearn", "name": "iris"}}]
    with pytest.raises(SpecError) as caught:
        validate_suite(suite, "s.yaml", tmp_path)
    problems = dict(caught.value.problems)
    assert problems["study.expect[0].metric (for datasets[1], datasets[2])"].endswith(
        "if it does not apply there, list its number under that entry's skip_expect")
    # every data set has the second one: the template's own mistake, said once, without data sets
    assert problems["study.expect[1].where.library"] == (
        "'catboost' is not among the study's libraries (xgboost, lightgbm); add it under models or drop the filter")
    assert len(problems) == 2
