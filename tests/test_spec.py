"""Spec loading: safe YAML, ``--set`` overrides, and the recorded spec that ``gbreg reproduce`` reruns."""

from __future__ import annotations

import pytest
import yaml
from conftest import small_spec, write_spec

from gbreg.errors import SpecError
from gbreg.plan import make_plan
from gbreg.spec.validation import load_spec, validate_spec


def test_input_dict_validates_back_to_the_same_spec_and_trial_keys(tmp_path):
    """Task and metric left out, a log-spaced axis, a --set override: the recorded dict reruns identically."""
    raw = small_spec(sweep={"reg_alpha": [0, 1], "reg_lambda": {"log": [0.1, 100], "num": 4, "zero": True}})
    del raw["evaluation"]["metric"]
    spec = load_spec(write_spec(tmp_path, raw), overrides=["models.xgboost.max_depth=5"])
    again = validate_spec(yaml.safe_load(yaml.safe_dump(spec.input_dict())), source="recorded")
    assert again.sha256() == spec.sha256()
    assert [t.trial_key for t in make_plan(again)] == [t.trial_key for t in make_plan(spec)]
    assert len(make_plan(spec)) == 2 * 2 * 5
    assert again.models["xgboost"]["max_depth"] == 5
    assert "task" not in spec.input_dict() and "metric" not in spec.input_dict()["evaluation"]


def test_yaml_never_builds_python_objects(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(SpecError, match="the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not "
                                        "allowed"):
        load_spec(path)
    assert not marker.exists()


def test_semantic_problems_are_collected_together(tmp_path):
    raw = small_spec(sweep={"reg_alpha": [0, -1], "reg_lambda": [float("nan")]})
    raw["models"]["xgboost"]["max_dept"] = 3
    with pytest.raises(SpecError) as caught:
        validate_spec(raw, source="s.yaml")
    assert str(caught.value).splitlines() == [
        "s.yaml: 3 problems",
        "  models.xgboost.max_dept: unknown xgboost parameter 'max_dept'; did you mean 'max_depth'?",
        "  sweep.reg_alpha[1]: must be a finite number ≥ 0, got -1",
        "  sweep.reg_lambda[0]: must be a finite number ≥ 0, got nan",
    ]


@pytest.mark.parametrize("override, message", [
    ("sweep.reg_alpha", "s.yaml: --set: expected KEY.PATH=VALUE, got 'sweep.reg_alpha'"),
    ("sweep.reg_alpha=[0, 1", "s.yaml: --set sweep.reg_alpha: value is not valid YAML: '[0, 1'"),
    ("sweep.reg_alpha=[0, -3]", "s.yaml: sweep.reg_alpha[1]: must be a finite number ≥ 0, got -3"),
])
def test_bad_overrides(tmp_path, override, message):
    path = write_spec(tmp_path, small_spec(), name="s.yaml")
    with pytest.raises(SpecError) as caught:
        load_spec(path, overrides=[override])
    assert str(caught.value) == message.replace("s.yaml", str(path))
