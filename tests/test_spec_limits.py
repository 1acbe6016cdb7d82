"""What a spec may ask for: parameters gbreg sets itself, value ranges, one parameter set twice, duplicate
YAML keys, and sizes (grids counted without being built, a trial limit, data too small to evaluate)."""

from __future__ import annotations

import ast
import inspect
import re

import pytest
import yaml
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg.catalogue import METRICS_BY_TASK
from gbreg.cli import app
from gbreg.errors import SpecError
from gbreg.models.boosters import ADAPTERS
from gbreg.plan import count_trials, make_plan
from gbreg.spec.params import (
    CHOICES,
    DEFAULTS,
    LIBRARIES,
    NATIVE_PARAMS,
    RANGES,
    RESERVED,
    SHARED_TO_NATIVE,
    resolve_params,
    shared_name,
    to_native,
)
from gbreg.spec.validation import load_spec, validate_spec

TASKS = {"regression": 0, "binary": 2, "multiclass": 3}


def problems_of(raw: dict) -> list[str]:
    """The spec's problems as "key.path: message" lines (none: an empty list)."""
    try:
        validate_spec(raw, source="s.yaml")
    except SpecError as exc:
        return [f"{path}: {message}" for path, message in exc.problems]
    return []


# ----------------------------------------------------------------------------------------------------
# parameters gbreg sets itself (issue 15, item 3)


def _native_params(library: str, params: dict, task: str, metric: str) -> dict:
    return ADAPTERS[library].native_params(resolve_params(library, params), task, TASKS[task], metric, seed=0,
                                           threads=1)


def _written_by_gbreg(library: str) -> set[str]:
    """Every native name native_params() writes that the spec did not, over every task, metric and branch."""
    written = set()
    for task in TASKS:
        for metric in METRICS_BY_TASK[task]:
            for params in ({}, {"subsample": 0.5}):
                native = _native_params(library, params, task, metric)
                given = to_native(library, {k: v for k, v in resolve_params(library, params).items()
                                            if k != "n_estimators"})
                written |= {name for name, value in native.items() if given.get(name, object()) != value}
    return written


def _names_written_in_source(library: str) -> set[str]:
    """Literal keys in native_params()'s source: native[...] = ..., native.update(k=...), native.setdefault(k)."""
    tree = ast.parse(inspect.getsource(type(ADAPTERS[library]).native_params).lstrip())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            names.add(node.slice.value)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("update", "setdefault"):
            names |= {keyword.arg for keyword in node.keywords}
            names |= {arg.value for arg in node.args[:1] if isinstance(arg, ast.Constant)}
    return names


@pytest.mark.parametrize("library", LIBRARIES)
def test_every_parameter_gbreg_writes_is_reserved_or_keeps_the_spec_value(library):
    """A name native_params() writes is either refused in a spec (reserved: the run would log a value that
    was not used) or, when the spec sets it, passed on as set (tree_method, bagging_freq)."""
    written = _written_by_gbreg(library) | _names_written_in_source(library)
    must_see = {"sklearn_hgb": {"loss", "early_stopping"}, "catboost": {"loss_function", "classes_count"}}.get(
        library, {"objective", "num_class"})
    assert must_see <= written  # the check sees what it must
    honoured = written - RESERVED
    for name in sorted(honoured):
        assert name in NATIVE_PARAMS[library], f"{name} is written by gbreg, neither reserved nor settable"
        native = _native_params(library, {name: "from-the-spec", "subsample": 0.5}, "multiclass", "logloss")
        assert native[name] == "from-the-spec", name
    assert honoured == {"xgboost": {"tree_method"}, "lightgbm": {"bagging_freq"},
                        "sklearn_hgb": {"max_iter", "max_depth"}, "catboost": {"boosting_type", "iterations"}}.get(library, set())  # max_depth 0: None


@pytest.mark.parametrize("library", LIBRARIES)
def test_every_name_a_spec_may_set_reaches_the_library_unchanged(library):
    settable = (NATIVE_PARAMS[library] | {s for s, n in SHARED_TO_NATIVE.items() if n[library]}) - {
        "n_estimators", "num_boost_round"}  # the number of rounds is xgb.train's / lgb.train's argument
    for name in sorted(settable):
        native = _native_params(library, {name: 7}, "binary", "logloss")
        target = SHARED_TO_NATIVE.get(shared_name(library, name), {}).get(library) or name  # min_split_loss: gamma
        assert native[target] == 7, name


@pytest.mark.parametrize("name", sorted(RESERVED))
@pytest.mark.parametrize("where", ["models", "sweep"])
def test_each_reserved_name_is_refused_with_the_reason(name, where):
    raw = small_spec()
    if where == "models":
        raw["models"]["lightgbm"][name] = "x"
        path = f"models.lightgbm.{name}"
    else:
        raw["sweep"][name] = ["x", "y"]
        path = f"sweep.{name}"
    (problem,) = problems_of(raw)
    assert problem.startswith(f"{path}: '{name}' is set by gbreg "), problem


def test_objective_and_metrics_say_why():
    raw = small_spec(models={"xgboost": {"objective": "reg:absoluteerror", "eval_metric": "mae"},
                             "lightgbm": {"objective": "huber", "boost_from_average": True}})
    assert problems_of(raw) == [
        "models.xgboost.objective: 'objective' is set by gbreg to the task's own loss (squared error, logistic or "
        "softmax), which the closed-form leaf checks, the curves, the metrics and the linear counterparts all follow",
        "models.xgboost.eval_metric: 'eval_metric' is set by gbreg from evaluation.metric (the metric the curves "
        "record); set that instead",
        "models.lightgbm.objective: 'objective' is set by gbreg to the task's own loss (squared error, logistic or "
        "softmax), which the closed-form leaf checks, the curves, the metrics and the linear counterparts all follow",
        "models.lightgbm.boost_from_average: 'boost_from_average' is set by gbreg to false: LightGBM's starting "
        "score is passed as init_score instead, so that every leaf holds what the trees learned, as with "
        "XGBoost's base_score",
    ]


@pytest.mark.parametrize("library, name, value", [
    ("xgboost", "booster", "gblinear"), ("xgboost", "booster", "dart"), ("xgboost", "tree_method", "exact"),
    ("xgboost", "tree_method", "approx"), ("xgboost", "process_type", "update"), ("lightgbm", "boosting", "dart"),
    ("lightgbm", "boosting", "rf"), ("lightgbm", "linear_tree", True),
])
def test_boosters_whose_trees_gbreg_cannot_read_are_refused(library, name, value):
    allowed, why = CHOICES[(library, name)]
    for raw in (small_spec(models={library: {name: value}}),
                small_spec(models={library: {}}, sweep={"reg_alpha": [0], name: [allowed[0], value]})):
        (problem,) = problems_of(raw)
        assert re.fullmatch(rf"(models\.{library}|sweep)\.{name}(\[1\])?: must be .*, got {value!r}: .+", problem)
        assert why in problem


@pytest.mark.parametrize("library, name, value", [
    ("xgboost", "booster", "gbtree"), ("xgboost", "tree_method", "hist"), ("lightgbm", "boosting", "goss"),
    ("lightgbm", "linear_tree", False),
])
def test_boosters_gbreg_reads_are_accepted(library, name, value):
    assert problems_of(small_spec(models={library: {name: value}})) == []


# ----------------------------------------------------------------------------------------------------
# ranges of the shared parameters (item 4)

OUT_OF_RANGE = {
    "n_estimators": [5.5, 0, -1, "abc", 100_001, True],
    "learning_rate": [0, -0.1, float("inf"), "fast"],
    "max_depth": [2.5, "deep"],
    "reg_alpha": [-1, float("nan")],
    "reg_lambda": [-0.5],
    "min_child_weight": [-1],
    "subsample": [0, 1.5],
    "colsample_bytree": [0, 2],
    "max_bin": [1, 63.5],
    "gamma": [-1],
    "min_split_gain": [-0.1],
    "num_leaves": [1, 131073, 7.5],
    "max_leaves": [-1, 1.5],
    "min_data_in_leaf": [-1, 2.5],
}


def test_every_shared_parameter_has_a_range_and_the_defaults_are_in_it():
    assert set(RANGES) == set(SHARED_TO_NATIVE) == set(OUT_OF_RANGE)
    for library, defaults in DEFAULTS.items():
        # xgboost beside it: the sweep's max_delta_step is not every library's
        assert problems_of(small_spec(models={"xgboost": {}, library: dict(defaults)},
                                      sweep={"max_delta_step": [0]})) == []


@pytest.mark.parametrize("shared", sorted(OUT_OF_RANGE))
def test_out_of_range_values_are_refused_by_shared_and_native_name_in_models_and_sweep(shared):
    for library in LIBRARIES:
        native = SHARED_TO_NATIVE[shared][library]
        if native is None:
            continue
        for name in sorted({shared, native}):
            for value in OUT_OF_RANGE[shared]:
                (in_models,) = problems_of(small_spec(models={"xgboost": {}, library: {name: value}},
                                                      sweep={"max_delta_step": [0]}))
                assert in_models.startswith(f"models.{library}.{name}: must be a "), in_models
                assert f"got {value!r}" in in_models
                (in_sweep,) = problems_of(small_spec(models={library: {}}, sweep={name: [value]}))
                assert in_sweep.startswith(f"sweep.{name}[0]: must be a "), in_sweep


def test_range_messages_say_what_is_expected():
    raw = small_spec(models={"xgboost": {"n_estimators": 1_000_000_000, "eta": 0, "max_depth": -1},
                             "lightgbm": {"num_leaves": 1, "max_depth": -1}})
    assert problems_of(raw) == [
        "models.xgboost.n_estimators: must be a whole number ≥ 1 and ≤ 100000, got 1000000000; more than 100000 "
        "rounds per trial is almost certainly a typo (a sweep multiplies it by every trial)",
        "models.xgboost.eta: must be a finite number > 0, got 0; with learning_rate 0 no tree changes the prediction",
        "models.xgboost.max_depth: must be a whole number ≥ 0, got -1",
        "models.lightgbm.num_leaves: must be a whole number ≥ 2 and ≤ 131072, got 1",
    ]
    mixed = small_spec(models={"xgboost": {}, "lightgbm": {}}, sweep={"max_depth": [-1, 3]})
    assert problems_of(mixed) == ["sweep.max_depth[0]: for xgboost: must be a whole number ≥ 0, got -1"]
    logs = small_spec(models={"xgboost": {}}, sweep={"n_estimators": {"log": [10, 1000], "num": 4}})
    assert problems_of(logs) == ["sweep.n_estimators: a value of the log space must be a whole number ≥ 1 and "
                                 "≤ 100000, got 10.0; list the values instead"]


# ----------------------------------------------------------------------------------------------------
# one parameter set in two places (item 5)


def test_a_parameter_under_models_and_swept_is_refused_naming_both_places():
    raw = small_spec(models={"xgboost": {"reg_alpha": 2}, "lightgbm": {"lambda_l1": 1}}, sweep={"reg_alpha": [0, 1]})
    assert problems_of(raw) == [
        "sweep.reg_alpha: xgboost's reg_alpha is also set at models.xgboost.reg_alpha; set it in one place "
        "(remove it from models to sweep it)",
        "sweep.reg_alpha: lightgbm's reg_alpha is also set at models.lightgbm.lambda_l1; set it in one place "
        "(remove it from models to sweep it)",
    ]


@pytest.mark.parametrize("models, sweep, where", [
    ({"xgboost": {"alpha": 1, "reg_alpha": 2}}, {"reg_lambda": [0]}, "models.xgboost.reg_alpha"),
    ({"xgboost": {}}, {"eta": [0.1], "learning_rate": [0.3]}, "sweep.learning_rate"),
    ({"xgboost": {"min_split_loss": 1}}, {"gamma": [0, 1]}, "sweep.gamma"),
    ({"lightgbm": {"num_boost_round": 10}}, {"n_estimators": [5, 10]}, "sweep.n_estimators"),
])
def test_two_names_for_one_parameter_are_refused(models, sweep, where):
    (problem,) = problems_of(small_spec(models=models, sweep=sweep))
    assert problem.startswith(f"{where}: ") and "is also set at" in problem


def test_an_alias_sets_the_shared_parameter_that_is_logged():
    """min_split_loss is XGBoost's gamma: the plan logs gamma as the value used, not the default 0."""
    (trial,) = make_plan(validate_spec(small_spec(models={"xgboost": {"min_split_loss": 3}},
                                                  sweep={"reg_alpha": [0]})))
    assert trial.params["gamma"] == 3 and "min_split_loss" not in trial.params


# ----------------------------------------------------------------------------------------------------
# duplicate YAML keys (item 6)


def test_duplicate_keys_at_any_depth_are_refused_with_both_lines(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: dup\ndata: {source: sklearn, name: diabetes}\nmodels:\n  xgboost: {n_estimators: 3}\n"
                    "sweep:\n  reg_alpha: [0, 1]\n  reg_lambda: [0]\n  reg_alpha: [5]\nname: again\n"
                    "evaluation: {metric: rmse, metric: mae}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).splitlines() == [
        f"{path}: 3 problems",
        "  line 8: duplicate key 'reg_alpha' (first at line 6); YAML would silently keep only the last value: "
        "remove one or merge them",
        "  line 9: duplicate key 'name' (first at line 1); YAML would silently keep only the last value: "
        "remove one or merge them",
        "  line 10: duplicate key 'metric' (first at line 10); YAML would silently keep only the last value: "
        "remove one or merge them",
    ]
    with pytest.raises(SpecError, match=r"--set models.xgboost: line 1: duplicate key 'max_depth'"):
        load_spec(write_spec(tmp_path, small_spec()), ["models.xgboost={max_depth: 2, max_depth: 3}"])


def test_the_loader_is_still_safe_load_and_allows_merge_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: merged\ndata: {source: sklearn, name: diabetes}\nbase: &base {n_estimators: 3, "
                    "max_depth: 2}\n")
    text = path.read_text()
    from gbreg.spec.yaml_file import load_yaml

    data, duplicates = load_yaml(text + "models:\n  xgboost:\n    <<: *base\n    max_depth: 4\n")
    assert duplicates == [] and data["models"]["xgboost"] == {"n_estimators": 3, "max_depth": 4}
    assert data == yaml.safe_load(text + "models:\n  xgboost:\n    <<: *base\n    max_depth: 4\n")
    with pytest.raises(yaml.constructor.ConstructorError):
        load_yaml("x: !!python/object/apply:os.system ['true']\n")


# ----------------------------------------------------------------------------------------------------
# sizes (item 9) and data too small to evaluate


@pytest.mark.parametrize("changes", [
    {},
    {"sweep": {"reg_alpha": [0, 1, 100], "lambda_l2": [0, 1], "gamma": [0, 5]}},
    {"sweep": {"reg_alpha": [0, 0.5, 2], "reg_lambda": [0, 1]}, "counterparts": ["ols", "lasso", "ridge", "elasticnet"]},
    {"sweep": {"reg_alpha": [0, 1]}, "counterparts": ["lasso", "elasticnet", "ols"]},  # unswept λ: 1 and 0
    {"models": {"lightgbm": {"reg_lambda": 2}}, "sweep": {"reg_alpha": [0, 3]}, "counterparts": ["elasticnet"]},
    {"sweep": {"alpha": [0, 1], "lambda_l1": [1, 0, 4], "reg_lambda": [0, 2]}, "counterparts": ["lasso", "ols"]},
])
def test_count_trials_equals_the_plan_it_does_not_build(changes):
    spec = validate_spec(small_spec(**changes))
    assert count_trials(spec) == len(make_plan(spec))


def test_count_trials_refuses_a_counterpart_with_no_point_like_make_plan():
    spec = validate_spec(small_spec(sweep={"reg_alpha": [0, 1], "reg_lambda": [1, 10]}, counterparts=["lasso"]))
    with pytest.raises(SpecError) as counted:
        count_trials(spec)
    with pytest.raises(SpecError) as planned:
        make_plan(spec)
    assert str(counted.value) == str(planned.value)


def _huge_spec(**extra) -> dict:
    """1001 x 1001 penalty points, two libraries, four counterparts: 2,004,002 + 4,004,001 trials."""
    axis = {"log": [0.001, 1000], "num": 1000, "zero": True}
    return small_spec(sweep={"reg_alpha": axis, "reg_lambda": dict(axis)},
                      counterparts=["ols", "lasso", "ridge", "elasticnet"], **extra)


def test_validate_and_dry_run_of_a_huge_grid_count_it_and_show_its_head(tmp_path, monkeypatch):
    """The plan is never built (make_plan would take minutes and gigabytes): its size is counted."""
    import gbreg.plan

    def refuse(spec):
        raise AssertionError("the whole plan was built")

    monkeypatch.setattr(gbreg.plan, "make_plan", refuse)
    monkeypatch.setattr(gbreg.plan, "penalty_points", refuse)
    path = write_spec(tmp_path, _huge_spec())
    n_trials = 2 * 1001 * 1001 + 1 + 1000 + 1000 + 1000 * 1000
    assert count_trials(load_spec(path)) == n_trials
    for args in (["validate", str(path), "--no-data"], ["run", str(path), "--dry-run"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert len(lines) < 70
        assert f"{n_trials:,} trials" in lines[1 if args[0] == "validate" else 0]
        assert f"… and {n_trials - 50:,} more" in result.output
        assert "above limits.max_trials = 10,000" in result.output
    assert not (tmp_path / "mlflow.db").exists()


def test_the_library_check_of_a_huge_grid_tries_a_few_values_per_axis(tmp_path, monkeypatch):
    """`validate` with data trains one round per value it checks: the ends (and zero) of a 1001-point axis."""
    import gbreg.run.param_check

    tried = []
    real_try = gbreg.run.param_check._try
    monkeypatch.setattr(gbreg.run.param_check, "_try", lambda adapter, fold, params, metric: tried.append(
        (adapter.library, params["reg_alpha"], params["reg_lambda"])) or real_try(adapter, fold, params, metric))
    result = CliRunner().invoke(app, ["validate", str(write_spec(tmp_path, _huge_spec()))])
    assert result.exit_code == 0, result.output
    for library, lam in (("xgboost", 1.0), ("lightgbm", 0.0)):  # each library's default reg_lambda
        models_alone = [(0.0, lam)]
        alpha_axis = [(0.0, lam), (1000.0, lam)]  # the ends of [0, 0.001 ... 1000]
        lambda_axis = [(0.0, 0.0), (0.0, 1000.0)]
        assert [t[1:] for t in tried if t[0] == library] == models_alone + alpha_axis + lambda_axis


def test_run_above_the_trial_limit_asks_for_yes_and_says_how_long(tracking, tmp_path):
    spec = small_spec(models={"xgboost": {"n_estimators": 3}}, sweep={"reg_alpha": [0, 1, 2]},
                      limits={"max_trials": 2})
    path = write_spec(tmp_path, spec)
    refused = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1"])
    assert refused.exit_code == 2
    assert re.fullmatch(rf"error: {re.escape(str(path))}: 3 trials, above limits\.max_trials = 2; on 442 rows x 10 "
                        r"features that is roughly \d+ seconds on this machine's \d+ core\(s\)\. Shrink the sweep, "
                        r"raise limits\.max_trials in the spec, or run it anyway with --yes\n", refused.stderr)
    assert not (tmp_path / "mlflow.db").exists()
    ran = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1", "--yes"])
    assert ran.exit_code == 0, ran.output
    raised = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1", "--set", "limits.max_trials=3"])
    assert raised.exit_code == 0, raised.output
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("small").experiment_id])
    kinds = sorted(run.data.tags["gbreg.kind"] for run in runs)
    assert kinds == ["booster"] * 3 + ["study"]  # the limit is no part of the study: the same parent resumed


def test_the_estimate_grows_with_rows_rounds_and_trials():
    from gbreg.spec.limits import estimate_seconds

    spec = validate_spec(_huge_spec())
    base = estimate_seconds(spec, count_trials(spec), rows=1000, features=10, cores=2)
    assert 2 * 3600 < base < 30 * 86400  # two million 20-round trials on 750 x 10: days, not seconds or years
    assert estimate_seconds(spec, count_trials(spec), rows=100_000, features=10, cores=2) > 2 * base
    assert estimate_seconds(spec, count_trials(spec), rows=1000, features=10, cores=4) == pytest.approx(base / 2)


@pytest.mark.parametrize("evaluation, rows, expected", [
    ({"split": "holdout", "test_size": 0.25}, 5,
     "data: 5 rows with evaluation.test_size = 0.25 leave 3 for training and 2 for testing; a result needs at least "
     "10 and 2: use more rows (or another test_size)"),
    ({"split": "kfold", "folds": 10}, 12,
     "data: 12 rows with evaluation.folds = 10 leave 10 for training and 1 for testing; a result needs at least "
     "10 and 2: use more rows (or fewer evaluation.folds)"),
    ({"split": "holdout", "test_size": 0.25}, 40, None),
])
def test_data_too_small_to_evaluate_is_refused(tmp_path, evaluation, rows, expected):
    import numpy as np
    import pandas as pd

    from gbreg.run.study import prepare_study

    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=rows), "y": rng.normal(size=rows)}).to_csv(tmp_path / "d.csv", index=False)
    spec = load_spec(write_spec(tmp_path, small_spec(data={"source": "file", "path": "d.csv", "target": "y"},
                                                     evaluation=evaluation)))
    if expected is None:
        assert prepare_study(spec, check_libraries=False).dataset.X.shape == (rows, 1)
        return
    with pytest.raises(SpecError) as caught:
        prepare_study(spec, check_libraries=False)
    assert str(caught.value) == f"{spec.source}: {expected}"
