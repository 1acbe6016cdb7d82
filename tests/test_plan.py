"""Grid expansion and trial keys: pure, deterministic, per library."""

from __future__ import annotations

from conftest import small_spec

from gbreg.plan import make_plan
from gbreg.spec.validation import validate_spec


def test_grid_is_cartesian_per_library_with_resolved_defaults():
    plan = make_plan(validate_spec(small_spec()))
    assert len(plan) == 2 * 3 * 2
    xgb = [t for t in plan if t.library == "xgboost"]
    assert {(t.point["reg_alpha"], t.point["reg_lambda"]) for t in xgb} == {(a, b) for a in (0, 1, 100) for b in (0, 10)}
    assert xgb[0].params["max_depth"] == 3 and xgb[0].params["min_child_weight"] == 1.0
    lgb = [t for t in plan if t.library == "lightgbm"]
    assert lgb[0].params["num_leaves"] == 7 and lgb[0].params["min_data_in_leaf"] == 20


def test_an_axis_only_one_library_accepts_applies_to_that_library_alone():
    spec = small_spec(sweep={"reg_alpha": [0, 1], "gamma": [0, 5, 10]})
    plan = make_plan(validate_spec(spec))
    assert sum(t.library == "xgboost" for t in plan) == 6
    assert sum(t.library == "lightgbm" for t in plan) == 2
    assert all("gamma" not in t.point for t in plan if t.library == "lightgbm")


def test_unswept_penalty_is_recorded_at_each_library_default():
    plan = make_plan(validate_spec(small_spec(sweep={"reg_alpha": [0, 1]})))
    lambdas = {t.library: t.params["reg_lambda"] for t in plan}
    assert lambdas == {"xgboost": 1.0, "lightgbm": 0.0}


def test_trial_keys_are_stable_and_depend_on_what_determines_a_trial():
    first = [t.trial_key for t in make_plan(validate_spec(small_spec()))]
    again = [t.trial_key for t in make_plan(validate_spec(small_spec(description="other words")))]
    assert first == again and len(set(first)) == len(first)
    reseeded = [t.trial_key for t in make_plan(validate_spec(small_spec(seed=1)))]
    assert not set(first) & set(reseeded)
    extended = make_plan(validate_spec(small_spec(sweep={"reg_alpha": [0, 1, 100, 1000], "reg_lambda": [0, 10]})))
    assert set(first) < {t.trial_key for t in extended}


def test_log_space_with_zero_expands_to_readable_values():
    spec = validate_spec(small_spec(sweep={"reg_lambda": {"log": [0.01, 100], "num": 5, "zero": True}}))
    assert spec.sweep_values()["reg_lambda"] == [0.0, 0.01, 0.1, 1.0, 10.0, 100.0]
    assert [t.run_name for t in make_plan(spec)][:2] == ["xgboost λ=0", "xgboost λ=0.01"]
