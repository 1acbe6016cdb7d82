"""Spec fixes: whole numbers written as exponent floats, hypotheses whose filter leaves their axis one value,
--set list indexes out of range, and key paths written with [i]; each through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gbreg.cli import app
from gbreg.plan import make_plan
from gbreg.spec.validation import load_spec

REPO = Path(__file__).resolve().parent.parent

SPEC = """\
name: fixes
seed: 0
data: {source: sklearn, name: diabetes}
evaluation: {split: holdout, test_size: 0.25, metric: rmse}
models:
  xgboost:  {n_estimators: N_ESTIMATORS, learning_rate: 0.3}
  lightgbm: {n_estimators: 20, num_leaves: 7}
sweep:
  reg_alpha:  [0, 1, 10]
  reg_lambda: [0, 1, 10]
  MORE
counterparts: [ols, lasso, ridge]
EXPECT
"""


def spec_file(tmp_path: Path, n_estimators: str = "20", more: str = "", expect: str = "") -> Path:
    """A spec as a user types it (exponent numbers are YAML text, not Python floats)."""
    path = tmp_path / "fixes.yaml"
    path.write_text(SPEC.replace("N_ESTIMATORS", n_estimators).replace("MORE", more)
                    .replace("EXPECT", f"expect:\n{expect}" if expect else ""))
    return path


def validate(path: Path, *overrides: str):
    args = ["validate", "--no-data", str(path)]
    for override in overrides:
        args += ["--set", override]
    return CliRunner().invoke(app, args)


def refused(path: Path, *overrides: str) -> list[str]:
    """The problem lines of a refused spec (exit status 2), without the 'error: FILE:' head."""
    result = validate(path, *overrides)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    head = f"error: {path}: "
    assert lines[0].startswith(head), lines
    if len(lines) == 1:
        return [lines[0].removeprefix(head)]
    return [line.strip() for line in lines[1:]]


# ----------------------------------------------------------------------------------------------------
# 1. whole numbers written in exponent notation


def test_a_whole_number_in_exponent_notation_is_the_int_it_is(tmp_path):
    path = spec_file(tmp_path, n_estimators="2e1", more="max_depth: [2e0, 4]")
    result = validate(path)
    assert result.exit_code == 0, result.output
    spec = load_spec(path)
    assert spec.models["xgboost"]["n_estimators"] == 20 and type(spec.models["xgboost"]["n_estimators"]) is int
    assert [type(v) for v in spec.sweep_values()["max_depth"]] == [int, int]
    # the trials are those of the spec written with 20 and [2, 4]: same parameters, same keys
    (tmp_path / "plain").mkdir()
    plain = load_spec(spec_file(tmp_path / "plain", more="max_depth: [2, 4]"))
    assert [(t.trial_key, t.params) for t in make_plan(spec)] == [(t.trial_key, t.params) for t in make_plan(plain)]
    booster = next(t for t in make_plan(spec) if t.library == "xgboost")
    assert type(booster.params["n_estimators"]) is int and type(booster.params["max_depth"]) is int


def test_set_takes_a_whole_number_in_exponent_notation(tmp_path):
    path = spec_file(tmp_path)
    result = validate(path, "models.xgboost.n_estimators=1e1")
    assert result.exit_code == 0, result.output
    spec = load_spec(path, ["models.xgboost.n_estimators=1e1"])
    assert [t.trial_key for t in make_plan(spec)] == [
        t.trial_key for t in make_plan(load_spec(path, ["models.xgboost.n_estimators=10"]))]


def test_a_fraction_where_a_whole_number_is_expected_is_still_refused(tmp_path):
    path = spec_file(tmp_path, n_estimators="2.5", more="max_depth: [2.5e0, 4]")
    assert refused(path) == [
        "models.xgboost.n_estimators: must be a whole number ≥ 1 and ≤ 100000, got 2.5",
        "sweep.max_depth[0]: for xgboost: must be a whole number ≥ 0, got 2.5",
        "sweep.max_depth[0]: for lightgbm: must be a whole number, got 2.5",
    ]
    assert refused(spec_file(tmp_path), "models.lightgbm.num_leaves=7.5") == [
        "models.lightgbm.num_leaves: must be a whole number ≥ 2 and ≤ 131072, got 7.5"]


def test_a_float_axis_keeps_its_floats(tmp_path):
    path = spec_file(tmp_path, more="subsample: [5e-1, 1e0]")
    spec = load_spec(path, ["sweep.reg_alpha=[0, 1e1]"])
    assert spec.sweep_values()["reg_alpha"] == [0, 10.0] and type(spec.sweep_values()["reg_alpha"][1]) is float
    assert [type(v) for v in spec.sweep_values()["subsample"]] == [float, float]


def test_a_generators_counts_in_exponent_notation(tmp_path):
    path = tmp_path / "synthetic.yaml"
    path.write_text("name: synthetic\ndata: {source: synthetic, generator: regression,\n"
                    "       params: {n_samples: 2e2, n_features: 1e1, n_informative: 3, noise: 1e0}}\n"
                    "models: {xgboost: {n_estimators: 5}}\nsweep: {reg_alpha: [0, 1]}\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    params = load_spec(path).data.params
    assert params == {"n_samples": 200, "n_features": 10, "n_informative": 3, "noise": 1.0}
    assert type(params["n_samples"]) is int and type(params["noise"]) is float


def test_every_library_trains_and_logs_the_int(tracking, tmp_path):
    pytest.importorskip("catboost")
    path = tmp_path / "ints.yaml"
    path.write_text("name: ints\nseed: 0\ndata: {source: sklearn, name: diabetes}\nmodels:\n"
                    "  xgboost: {n_estimators: 3e0, max_depth: 2e0}\n  lightgbm: {n_estimators: 3e0, num_leaves: 4e0}\n"
                    "  catboost: {n_estimators: 3e0, max_depth: 2e0}\n  sklearn_hgb: {n_estimators: 3e0, max_leaves: 4e0}\n"
                    "sweep: {reg_lambda: [0, 1e1]}\n")
    result = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    from gbreg.tracking.readback import find_parent_run, study_results
    from gbreg.tracking.store import open_store

    client = open_store(tracking)
    trials = study_results(client, find_parent_run(client, "ints"))
    assert sorted(set(trials["model"])) == ["catboost", "lightgbm", "sklearn_hgb", "xgboost"]
    for run_id in trials["run_id"]:
        run = client.get_run(run_id)
        assert run.data.params["n_estimators"] == "3", run.data.params  # logged as set, not 3.0
        assert run.data.metrics["n_trees"] == 3 and run.data.metrics["leaves_per_tree"] == 4  # and trained so


# ----------------------------------------------------------------------------------------------------
# 2. a filter that leaves the tested axis fewer values than the test needs


def test_a_trend_filtered_to_lasso_along_reg_lambda_is_refused(tmp_path):
    path = spec_file(tmp_path, expect="  - {metric: test_rmse, trend: increasing, along: reg_alpha}\n"
                                      "  - {metric: test_rmse, trend: increasing, along: reg_lambda, "
                                      "where: {model: lasso}}\n")
    assert refused(path) == [
        "expect[1].where: keeps no configuration with 2 or more values of reg_lambda, the axis the trend is along, "
        "so the verdict could only be inconclusive: lasso has reg_lambda 0 only (lasso is the counterpart of pure-L1 "
        "(reg_lambda = 0 < reg_alpha) points); filter on a model that varies reg_lambda (xgboost, lightgbm, ridge) "
        "or test along reg_alpha"]


def test_a_best_point_filtered_to_ridge_along_reg_alpha_is_refused(tmp_path):
    path = spec_file(tmp_path, expect="  - {best: test_rmse, interior: [reg_alpha], where: {model: ridge}}\n")
    assert refused(path) == [
        "expect[0].where: keeps no configuration with 3 or more values along reg_alpha (a best point needs an "
        "interior), so the verdict could only be inconclusive: ridge has reg_alpha 0 only (ridge is the counterpart "
        "of pure-L2 (reg_alpha = 0 < reg_lambda) points); filter on a model that varies reg_alpha (xgboost, lightgbm)"]


def test_a_filter_keeping_only_libraries_without_the_axis_is_refused(tmp_path):
    path = spec_file(tmp_path, more="gamma: [0, 1]",
                     expect="  - {metric: n_leaves, trend: decreasing, along: gamma, where: {model: {ne: xgboost}}}\n")
    assert refused(path) == [
        "expect[0].where: keeps no configuration with 2 or more values of gamma, the axis the trend is along "
        "(n_leaves is measured on the boosters only), so the verdict could only be inconclusive: lightgbm has no "
        "gamma; filter on a model that varies gamma (xgboost) or test along reg_alpha or reg_lambda"]


def test_a_linear_metric_whose_counterparts_do_not_vary_the_axis_is_refused(tmp_path):
    path = spec_file(tmp_path, expect="  - {metric: zero_coef_fraction, trend: increasing, along: reg_lambda}\n")
    assert validate(path).exit_code == 0  # ridge varies reg_lambda
    assert refused(path, "counterparts=[lasso]") == [
        "expect[0].along: no configuration has 2 or more values of reg_lambda, the axis the trend is along "
        "(zero_coef_fraction is measured on the linear counterparts only), so the verdict could only be "
        "inconclusive: lasso has reg_lambda 0 only (lasso is the counterpart of pure-L1 (reg_lambda = 0 < "
        "reg_alpha) points); test along reg_alpha"]


@pytest.mark.parametrize("hypothesis", [
    "{metric: test_rmse, trend: increasing, along: reg_lambda, where: {model: ridge}}",
    "{metric: zero_coef_fraction, trend: increasing, along: reg_alpha, where: {model: lasso}}",
    "{metric: test_rmse, trend: increasing, along: reg_alpha, where: {kind: linear}}",  # lasso and ols at λ = 0
    "{best: test_rmse, interior: [reg_alpha, reg_lambda], where: {kind: booster}}",
    "{best: test_rmse, interior: [reg_lambda], where: {reg_alpha: 0}}",
    "{metric: n_leaves, trend: decreasing, along: reg_lambda, where: {library: lightgbm, reg_alpha: {gt: 0}}}",
])
def test_a_filter_that_keeps_the_variation_is_accepted(tmp_path, hypothesis):
    result = validate(spec_file(tmp_path, expect=f"  - {hypothesis}\n"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("path", sorted((REPO / "studies").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_study_still_validates(path):
    result = CliRunner().invoke(app, ["validate", "--no-data", str(path)])
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------------------------------------------
# 3 and 4. --set list indexes: the valid range, and paths written with [i]


def test_a_negative_set_index_names_the_valid_range(tmp_path):
    path = spec_file(tmp_path)
    message = ("--set sweep.reg_alpha[-1]: expected a list index below 3 (sweep.reg_alpha has 3 items: indexes "
               "0 to 2), got -1; counting from the end is not supported: sweep.reg_alpha[-1] is sweep.reg_alpha[2]")
    assert refused(path, "sweep.reg_alpha[-1]=7") == [message]
    assert refused(path, "sweep.reg_alpha.-1=7") == [message]


def test_an_index_past_the_end_names_the_valid_range(tmp_path):
    path = spec_file(tmp_path)
    assert refused(path, "counterparts[3]=ols") == [
        "--set counterparts[3]: expected a list index below 3 (counterparts has 3 items: indexes 0 to 2), got 3"]
    assert refused(path, "counterparts=[]", "counterparts[0]=ols") == [
        "--set counterparts[0]: counterparts is an empty list: it has no item 0 to set; set the whole list "
        "(counterparts=[...])"]
    assert refused(path, "sweep[0]=1") == ["--set sweep[0]: sweep is a mapping, not a list; name one of its keys: "
                                           "sweep.KEY"]


@pytest.mark.parametrize("override", ["expect[9].metric=n_leaves", "expect.9.metric=n_leaves"])
def test_an_index_error_writes_the_path_with_brackets(tmp_path, override):
    path = spec_file(tmp_path, expect="  - {metric: test_rmse, trend: increasing, along: reg_alpha}\n")
    assert refused(path, override) == [
        "--set expect[9]: expected a list index below 1 (expect has 1 item: index 0), got 9"]
    result = validate(path, "expect.0.metric=n_leaves")  # a dotted index still sets the item
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------------------------------------------
# found on the way: a hypothesis beside a broken log space or a text axis was a traceback


@pytest.mark.parametrize("axis, problem", [
    ("reg_alpha: {log: [0, 10], num: 3}", "sweep.reg_alpha.log: must be [low, high] with 0 < low ≤ high, got [0.0, 10.0]"),
    ("reg_alpha: {log: [1], num: 3}", "sweep.reg_alpha.log[1]: required key is missing"),
])
def test_a_hypothesis_beside_a_broken_log_space_is_checked_not_a_traceback(tmp_path, axis, problem):
    path = spec_file(tmp_path, expect="  - {metric: test_rmse, trend: increasing, along: reg_alpha}\n"
                                      "  - {metric: test_rmse, trend: increasing, along: reg_lambdda}\n")
    path.write_text(path.read_text().replace("reg_alpha:  [0, 1, 10]", axis))
    assert refused(path) == [problem, "expect[1].along: unknown sweep axis 'reg_lambdda'; did you mean 'reg_lambda'?"]


def test_a_number_bound_on_a_text_axis_is_a_spec_error_not_a_traceback(tmp_path):
    path = spec_file(tmp_path, more="grow_policy: [depthwise, lossguide]",
                     expect="  - {metric: n_leaves, trend: increasing, along: reg_alpha, "
                            "where: {grow_policy: {gt: 1}}}\n")
    assert refused(path) == ["expect[0].where.grow_policy: keeps none of the values of sweep.grow_policy (depthwise, "
                             "lossguide); the hypothesis would have no cells"]
