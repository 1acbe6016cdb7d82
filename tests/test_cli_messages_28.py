"""Messages and answers of the command line fixed in round 28: an experiment's name given to ``gbreg results``,
what ``--dry-run`` says of trials the store already has, and the wording of spec and mlflow.yaml errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import small_spec, study_in_temp_store, write_spec
from typer.testing import CliRunner

from gbreg.cli import app

ONE_LIBRARY = {"xgboost": {"n_estimators": 5, "max_depth": 2}}


def gbreg(*args: str, cwd) -> subprocess.CompletedProcess:
    """The real ``gbreg`` command (its warnings reach stderr only through its entry point)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    return subprocess.run([sys.executable, "-m", "gbreg", *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def two_studies_one_experiment(tmp_path_factory):
    """Studies 'tf' and then 'tf2', both logged to experiment 'tf_exp'."""
    folder = tmp_path_factory.mktemp("experiment")
    spec = small_spec(name="tf", models=ONE_LIBRARY, mlflow={"experiment": "tf_exp"})
    stores = study_in_temp_store(folder, spec)
    first = next(stores)[0]
    second = next(study_in_temp_store(folder, {**spec, "name": "tf2"}))[0]
    yield folder, first, second


def test_results_of_an_experiment_name(two_studies_one_experiment):
    folder, first, second = two_studies_one_experiment
    shown = gbreg("results", "tf_exp", "--format", "csv", cwd=folder)
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout.splitlines()) == 1 + 6  # the header and tf2's trials
    assert (f"warning: experiment 'tf_exp' holds 2 studies; showing the latest, 'tf2' (run {second.parent_run_id}); "
            "the others: 'tf'; give a study's name (`gbreg results STUDY`) or pick a run with "
            "`gbreg results tf_exp --run RUN_ID`") in shown.stderr

    picked = CliRunner().invoke(app, ["results", "tf_exp", "--run", first.parent_run_id], env={
        "GBREG_MLFLOW_CONFIG": str(folder / "mlflow.yaml")})
    assert picked.exit_code == 0, picked.output
    assert "tf · " in picked.stdout and first.parent_run_id in picked.stdout

    default = gbreg("results", "Default", cwd=folder)
    assert default.returncode == 2
    assert default.stderr == (
        "error: experiment 'Default' holds no gbreg study (`gbreg run` logs each study to the experiment named by "
        "its spec's mlflow.experiment, else its name); give a study or its experiment: 'tf' (experiment 'tf_exp'), "
        "'tf2' (experiment 'tf_exp')\n")


def test_dry_run_says_how_many_trials_the_store_has_done(two_studies_one_experiment, tmp_path):
    folder, _, second = two_studies_one_experiment
    spec = write_spec(tmp_path, small_spec(name="tf2", models=ONE_LIBRARY, mlflow={"experiment": "tf_exp"}))
    env = {"GBREG_MLFLOW_CONFIG": str(folder / "mlflow.yaml")}
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    done = CliRunner().invoke(app, ["run", str(spec), "--dry-run"], env=env)
    assert done.exit_code == 0, done.output
    assert done.stdout.endswith(f"6 trials in the plan; 6 already done in the store ({uri}), a run would train 0\n")
    wider = CliRunner().invoke(app, ["run", str(spec), "--dry-run", "--set", "sweep.reg_alpha=[0, 1, 100, 1000]"],
                               env=env)
    assert wider.stdout.endswith(f"8 trials in the plan; 6 already done in the store ({uri}), a run would train 2\n")
    fresh = CliRunner().invoke(app, ["run", str(spec), "--dry-run", "--fresh"], env=env)
    assert fresh.stdout.endswith("6 trials in the plan; with --fresh a run would train all of them\n")


def test_dry_run_without_a_store_creates_none_and_says_nothing_of_it(tmp_path):
    spec = write_spec(tmp_path, small_spec(models=ONE_LIBRARY, sweep={"reg_alpha": [0]}))
    (tmp_path / "mlflow.yaml").write_text("tracking_uri: sqlite:///mlflow.db\n")
    result = CliRunner().invoke(app, ["run", str(spec), "--dry-run"], env={"GBREG_MLFLOW_CONFIG": str(
        tmp_path / "mlflow.yaml")})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].strip() == "1 trial"  # the table's title, singular
    assert "in the plan" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.yaml", "spec.yaml"]


def test_an_unknown_comparison_under_where_lists_the_comparisons(tmp_path):
    spec = write_spec(tmp_path, small_spec(models=ONE_LIBRARY))
    hypothesis = "expect=[{metric: n_leaves, trend: decreasing, along: reg_lambda, where: {reg_alpha: %s}}]"
    typo = CliRunner().invoke(app, ["validate", str(spec), "--no-data", "--set", hypothesis % "{gtt: 1}"])
    assert typo.exit_code == 2
    assert typo.stderr == (f"error: {spec}: expect[0].where.reg_alpha.gtt: unknown comparison 'gtt'; did you mean "
                           "'gt'? (expected one of eq, ne, gt, ge, lt, le, in)\n")
    other = CliRunner().invoke(app, ["validate", str(spec), "--no-data", "--set", hypothesis % "{between: 1}"])
    assert other.stderr.endswith("unknown comparison 'between'; expected one of eq, ne, gt, ge, lt, le, in\n")


def test_set_help_gives_each_kind_of_file_its_own_example():
    wide = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}
    for command in (["run"], ["validate"]):
        shown = CliRunner().invoke(app, [*command, "--help"], env=wide).stdout
        assert "(a list item by index: sweep.reg_alpha[0]=0.5)" in shown and "datasets[0]" not in shown
    suite = CliRunner().invoke(app, ["suite", "validate", "--help"], env=wide).stdout
    assert "(a list item by index: datasets[0].name=cps)" in suite


@pytest.mark.parametrize("override, problem", [
    ("datasets[0].name=x", "--set datasets: unknown key 'datasets'; did you mean 'data'?"),
    ("mlflow.experimnt[0]=x", "--set mlflow.experimnt: unknown key 'experimnt'; did you mean 'experiment'?"),
    ("expect[0].metric=n_leaves", "--set expect[0]: expect is not set in the file, so it has no item 0 to set; set "
                                  "the whole list (expect=[...])"),
])
def test_set_of_an_item_of_a_key_the_file_lacks(tmp_path, override, problem):
    spec = write_spec(tmp_path, small_spec())
    result = CliRunner().invoke(app, ["validate", str(spec), "--no-data", "--set", override])
    assert result.exit_code == 2
    assert result.stderr == f"error: {spec}: {problem}\n"


def test_mlflow_yaml_is_strict_and_reports_every_problem_at_once(tmp_path):
    config = tmp_path / "mlflow.yaml"
    config.write_text("tracking_uri: sqlite:///a.db\nui: {port: \"5079\", hots: x}\nserver_wait_seconds: '60'\n"
                      "executor: {kind: local, scheduler: tcp://h:8786}\ntracking_uri: sqlite:///b.db\n")
    result = CliRunner().invoke(app, ["results", "any"], env={"GBREG_MLFLOW_CONFIG": str(config),
                                                              "MLFLOW_TRACKING_URI": None})
    assert result.exit_code == 2
    assert result.stderr == "\n".join([
        f"error: {config}: 5 problems",
        "  line 5: 'tracking_uri' is given twice (first on line 1); keep one",
        "  executor.scheduler is set but executor.kind is 'local'; use kind: dask",
        "  ui: unknown keys ['hots']; expected host, port",
        "  ui.port: must be a whole number from 1 to 65535, got '5079' (text: write the number without quotes, 5079)",
        "  server_wait_seconds: must be a number of seconds from 0 to 86400, got '60' (text: write the number "
        "without quotes, 60)", ""])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.yaml"]


def refusal(tmp_path, text: str, *args: str) -> str:
    """What ``gbreg validate --no-data`` (or ``args``) says of a spec file of ``text``; it must exit 2."""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, [*(args or ["validate"]), str(path), *([] if args else ["--no-data"])])
    assert result.exit_code == 2, result.output
    return result.stderr.removeprefix(f"error: {path}: ").rstrip("\n")


SMALL = "name: s\ndata: {source: sklearn, name: diabetes}\nmodels: {xgboost: {}}\nsweep: {reg_alpha: [0, 1]}\n"


def test_a_float_where_an_integer_is_expected_says_how_to_write_it(tmp_path):
    assert refusal(tmp_path, SMALL + "seed: 1e3\n") == "seed: write it as an integer: 1000 (got 1000.0, a float)"


def test_a_tab_in_the_indentation_says_to_indent_with_spaces(tmp_path):
    assert refusal(tmp_path, "name: x\ndata:\n\tsource: sklearn\n") == (
        "malformed YAML: line 3, column 1: found character '\\t' that cannot start any token; indent with spaces: "
        "YAML does not allow tabs in indentation")


def test_a_study_spec_given_to_a_suite_command_and_the_reverse(tmp_path):
    for command in (["suite", "run"], ["suite", "validate"]):
        assert refusal(tmp_path, SMALL, *command) == ("this is a study spec (it has data, models, sweep), not a "
                                                      "suite: use `gbreg run` or `gbreg validate` on it")
    suite = "name: s\nstudy: {models: {xgboost: {}}}\ndatasets: [{name: d, data: {source: sklearn, name: iris}}]\n"
    assert refusal(tmp_path, suite, "run") == ("this is a suite (it has study, datasets), not a study spec: use "
                                               "`gbreg suite run` or `gbreg suite validate` on it")


def test_validate_says_that_run_refuses_a_study_above_its_limit_until_yes(tmp_path):
    path = write_spec(tmp_path, small_spec(models=ONE_LIBRARY, limits={"max_trials": 1}))
    result = CliRunner().invoke(app, ["validate", str(path), "--no-data"])
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("6 trials is above limits.max_trials = 1: `gbreg run` will refuse it, with its "
                                  "estimate of how long it would take, unless given --yes\n")
    refused = CliRunner().invoke(app, ["run", str(path)])
    assert refused.exit_code == 2 and "run it anyway with --yes" in refused.stderr
