"""Values in a spec as written: exponent floats read as numbers, a grid value given twice, a library left
empty, and numbers in quotes or blank names where a number or a name is expected."""

from __future__ import annotations

import pytest
import yaml
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg.cli import app
from gbreg.errors import SpecError
from gbreg.plan import make_plan
from gbreg.spec.validation import load_spec, validate_spec
from gbreg.spec.yaml_file import UniqueKeyLoader, load_yaml


def problems_of(raw: dict) -> list[str]:
    """The spec's problems as "key.path: message" lines (none: an empty list)."""
    try:
        validate_spec(raw, source="s.yaml")
    except SpecError as exc:
        return [f"{path}: {message}" for path, message in exc.problems]
    return []


SPEC_TEXT = """\
name: small
data: {source: sklearn, name: diabetes}
models:
  xgboost: {n_estimators: 20, learning_rate: LEARNING_RATE}
  lightgbm: LIGHTGBM
sweep:
  reg_alpha: REG_ALPHA
"""


def spec_text(learning_rate: str = "0.3", lightgbm: str = "{n_estimators: 20}", reg_alpha: str = "[0, 1]") -> str:
    """A spec's YAML with some values written by hand, as a user would type them."""
    return (SPEC_TEXT.replace("LEARNING_RATE", learning_rate).replace("LIGHTGBM", lightgbm)
            .replace("REG_ALPHA", reg_alpha))


# ----------------------------------------------------------------------------------------------------
# exponent notation: YAML 1.2 floats, not YAML 1.1 text


@pytest.mark.parametrize("text, number", [
    ("1e3", 1000.0), ("1e-3", 0.001), ("5E+2", 500.0), ("-2e2", -200.0), ("+1.5e3", 1500.0), (".5e1", 5.0),
    ("1.e2", 100.0),
])
def test_exponent_notation_is_a_float_and_look_alikes_stay_text(text, number):
    value = load_yaml(f"x: {text}")[0]["x"]
    assert value == number and type(value) is float
    for look_alike in ("e3", "1e", "1e+", "1.2.3", "1e3.5", "v1e3", "'1e3'", "1 e3", "1e3x", f"{text}x"):
        assert isinstance(load_yaml(f"x: {look_alike}")[0]["x"], str), look_alike
    assert load_yaml("x: 1.0e+3")[0]["x"] == 1000.0  # YAML 1.1's own float form still reads the same


def test_the_resolver_is_the_spec_loaders_alone():
    """Other readers of YAML in the process (MLflow's, a user's) keep PyYAML's YAML 1.1 reading."""
    assert yaml.safe_load("x: 1e3") == {"x": "1e3"}
    assert UniqueKeyLoader.yaml_implicit_resolvers is not yaml.SafeLoader.yaml_implicit_resolvers


def test_exponent_values_in_a_spec_file_and_in_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(spec_text(reg_alpha="[0, 1e3]", learning_rate="1e-1"))
    spec = load_spec(path, overrides=["models.lightgbm.learning_rate=5E-2", "sweep.reg_lambda=[0, 1e+1]"])
    assert spec.sweep_values() == {"reg_alpha": [0, 1000.0], "reg_lambda": [0, 10.0]}
    assert spec.models["xgboost"]["learning_rate"] == 0.1
    assert spec.models["lightgbm"]["learning_rate"] == 0.05
    assert len(make_plan(spec)) == 2 * 2 * 2


# ----------------------------------------------------------------------------------------------------
# a grid value given twice


@pytest.mark.parametrize("values, problems", [
    ([0, 1, 1.0], ["sweep.reg_alpha[2]: 1.0 repeats sweep.reg_alpha[1] (1); give each value once"]),
    ([0, 1, 1], ["sweep.reg_alpha[2]: 1 repeats sweep.reg_alpha[1] (1); give each value once"]),
    ([0.0, 1, 0, 1e0], ["sweep.reg_alpha[2]: 0 repeats sweep.reg_alpha[0] (0.0); give each value once",
                        "sweep.reg_alpha[3]: 1.0 repeats sweep.reg_alpha[1] (1); give each value once"]),
])
def test_a_value_repeated_in_a_sweep_axis_is_rejected(values, problems):
    assert problems_of(small_spec(sweep={"reg_alpha": values})) == problems
    # true equals 1 in Python but is not the same setting: it is rejected for what it is, not as a repeat
    assert problems_of(small_spec(sweep={"reg_alpha": [*values, True]}))[-1] == (
        f"sweep.reg_alpha[{len(values)}]: must be a finite number ≥ 0, got True")


def test_a_log_space_that_repeats_a_value_is_rejected():
    assert problems_of(small_spec(sweep={"reg_alpha": {"log": [1, 1], "num": 3}})) == [
        "sweep.reg_alpha: the log space gives 1 more than once (its 3 values are rounded to 6 significant "
        "digits); give a smaller num or a wider log range, or list the values"]
    assert problems_of(small_spec(sweep={"reg_alpha": {"log": [1, 1.00001], "num": 100, "zero": True}}))
    # zero: true adds 0, which no log-spaced point (all > 0) can equal
    spec = validate_spec(small_spec(sweep={"reg_lambda": {"log": [1e-6, 1e6], "num": 13, "zero": True}}))
    (values,) = spec.sweep_values().values()
    assert len(values) == len(set(values)) == 14 and values[0] == 0.0


# ----------------------------------------------------------------------------------------------------
# a library given no value


def test_a_library_left_empty_is_an_error_not_dropped(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(spec_text(lightgbm=""))  # `lightgbm:` with its parameters gone: YAML null
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems == [
        ("models.lightgbm", "expected a mapping of parameters ({} for the library's defaults), got null")]
    path.write_text(spec_text(lightgbm="{}"))  # what to write instead
    assert load_spec(path).libraries() == {"xgboost": {"n_estimators": 20, "learning_rate": 0.3}, "lightgbm": {}}


def test_a_library_set_to_null_on_the_command_line_exits_2(tmp_path):
    path = write_spec(tmp_path, small_spec())
    result = CliRunner().invoke(app, ["validate", "--no-data", str(path), "--set", "models.lightgbm=null"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"error: {path}: models.lightgbm: expected a mapping of parameters ({{}} "
                                     "for the library's defaults), got null")


def test_a_null_library_is_reported_with_the_other_mistakes():
    raw = small_spec(seed="3", models={"xgboost": None, "lightgbm": {"n_estimators": 5}, "lgbm": None})
    assert problems_of(raw) == [
        "seed: must be a whole number, got '3'",
        "models.xgboost: expected a mapping of parameters ({} for the library's defaults), got null",
        "models.lgbm: unknown library 'lgbm'; did you mean 'lightgbm'?",
    ]


# ----------------------------------------------------------------------------------------------------
# numbers in quotes and blank names


@pytest.mark.parametrize("changes, problem", [
    ({"evaluation": {"test_size": "0.3"}}, "evaluation.test_size: must be a number, got '0.3'"),
    ({"evaluation": {"split": "kfold", "folds": "3"}}, "evaluation.folds: must be a whole number, got '3'"),
    ({"seed": "1"}, "seed: must be a whole number, got '1'"),
    ({"repeats": 2.0}, "repeats: write it as an integer: 2 (got 2.0, a float)"),
    ({"repeats": True}, "repeats: must be a whole number, got True"),
    ({"limits": {"max_hours": "2"}}, "limits.max_hours: must be a number, got '2'"),
    ({"mlflow": {"trial_figures": "yes"}}, "mlflow.trial_figures: must be true or false, got 'yes'"),
    ({"sweep": {"reg_alpha": {"log": [0.1, 10], "num": "3"}}}, "sweep.reg_alpha.num: must be a whole number, got '3'"),
    ({"sweep": {"reg_alpha": {"log": ["0.1", 10], "num": 3}}}, "sweep.reg_alpha.log[0]: must be a number, got '0.1'"),
    ({"sweep": {"reg_alpha": {"log": [0.1, 10], "num": 3, "zero": "true"}}},
     "sweep.reg_alpha.zero: must be true or false, got 'true'"),
    ({"mlflow": {"experiment": ""}},
     "mlflow.experiment: must not be empty or blank, got ''; leave it out to use the study's name"),
    ({"mlflow": {"experiment": "  "}},
     "mlflow.experiment: must not be empty or blank, got '  '; leave it out to use the study's name"),
    ({"name": " "}, "name: must not be blank, got ' '"),
])
def test_a_value_of_the_wrong_kind_is_rejected(changes, problem):
    assert problems_of(small_spec(**changes)) == [problem]
    # strict, not narrower: a whole number is still a number (max_hours, a log space's bounds)
    spec = validate_spec(small_spec(limits={"max_hours": 2}, sweep={"reg_alpha": {"log": [1, 100], "num": 3}}))
    assert spec.max_hours == 2.0 and spec.sweep_values() == {"reg_alpha": [1.0, 10.0, 100.0]}


def test_set_takes_list_items_as_the_error_messages_write_them():
    from gbreg.spec.yaml_file import apply_override

    raw = {"datasets": [{"name": "a"}, {"name": "b"}], "sweep": {"reg_alpha": [0, 1]}}
    apply_override(raw, "datasets[1].name=wine", "s.yaml")
    apply_override(raw, "sweep.reg_alpha[0]=5", "s.yaml")
    apply_override(raw, "datasets.0.name=iris", "s.yaml")
    assert raw == {"datasets": [{"name": "iris"}, {"name": "wine"}], "sweep": {"reg_alpha": [5, 1]}}
    with pytest.raises(SpecError, match="expected a list index below 2"):
        apply_override(raw, "datasets[9].name=x", "s.yaml")
