"""The library as a library: what a ``run_study`` caller reads is about its parameters, not the CLI's
options; ``gbreg.judge`` names a mistyped column; the outcome object is public (real libraries and store)."""

from __future__ import annotations

import re

from conftest import REPO, small_spec, write_spec
from typer.testing import CliRunner


def _tiny_spec(**overrides) -> dict:
    return small_spec(name="lib28", models={"xgboost": {"n_estimators": 5, "max_depth": 2}},
                      sweep={"reg_alpha": [0, 1], "reg_lambda": [0]}, **overrides)


def test_a_library_call_names_the_parameter_that_starts_over_and_the_cli_its_option(tracking, tmp_path, capfd):
    import gbreg
    from gbreg import load_spec, run_study
    from gbreg.cli import app

    path = write_spec(tmp_path, _tiny_spec())
    first = run_study(load_spec(path), jobs=1, config=tracking)
    assert isinstance(first, gbreg.StudyOutcome) and first.n_ran == 2 and not first.interrupted
    capfd.readouterr()
    again = run_study(load_spec(path), jobs=1, config=tracking)
    printed = "".join(capfd.readouterr())
    assert again.n_ran == 0 and again.n_done_before == 2
    assert "2 done, 0 to run (run_study(..., fresh=True) starts over)" in printed
    assert "--fresh" not in printed

    result = CliRunner().invoke(app, ["run", str(path), "-j", "1"])
    assert result.exit_code == 0, result.output
    assert "2 done, 0 to run (use --fresh to start over)" in result.output


def test_the_outcome_class_is_public_and_imported_only_when_used():
    import subprocess
    import sys

    code = ("import sys, gbreg; assert 'gbreg.run.sweep' not in sys.modules and 'pandas' not in sys.modules; "
            "from gbreg.run.sweep import StudyOutcome as inner; "
            "assert gbreg.StudyOutcome is inner and 'StudyOutcome' in gbreg.__all__ and 'StudyOutcome' in dir(gbreg)")
    subprocess.run([sys.executable, "-c", code], check=True)


def _cells():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = [{"library": library, "reg_alpha": alpha, "reg_lambda": lam, "repeat": repeat, "fold": 0,
             "zero_leaf_fraction": alpha * 0.01 + rng.normal(0, 0.001), "test_rmse": 50 + rng.normal()}
            for library in ("xgboost", "lightgbm") for alpha in (0, 1, 10) for lam in (0, 1, 10) for repeat in range(6)]
    return pd.DataFrame(rows)


AXES = ["reg_alpha", "reg_lambda"]


def test_judge_names_the_hypothesis_the_key_and_the_closest_column_of_a_mistyped_axis():
    import pytest

    from gbreg import judge

    trend = {"metric": "zero_leaf_fraction", "trend": "increasing", "along": "reg_alfa"}
    with pytest.raises(ValueError, match=r"hypothesis 1 \(zero_leaf_fraction is increasing along reg_alfa\): "
                                         r"along: unknown column 'reg_alfa'; did you mean 'reg_alpha'\?"):
        judge(_cells(), [trend], axes=AXES)
    best = {"best": "test_rmse", "interior": ["reg_alpha", "reg_lamda"], "where": {"libary": "xgboost"}}
    with pytest.raises(ValueError) as raised:
        judge(_cells(), [{**trend, "along": "reg_alpha"}, best], axes=["reg_alpha", "reg_lambda", "gama"])
    message = str(raised.value)
    assert message.startswith("judge: 3 problems")
    assert "axes: unknown column 'gama'" in message
    assert "hypothesis 2 (" in message and "interior[1]: unknown column 'reg_lamda'; did you mean 'reg_lambda'?" in message
    assert "where.libary: unknown column 'libary'; did you mean 'library'?" in message
    with pytest.raises(TypeError, match="axes must be a list"):
        judge(_cells(), [{**trend, "along": "reg_alpha"}], axes="reg_alpha")


def test_judge_keeps_a_metric_the_table_lacks_inconclusive_and_reads_columns_of_the_trial_table():
    from gbreg import judge

    cells = _cells()
    verdicts = judge(cells, [{"metric": "zero_leaf_fraction", "trend": "increasing", "along": "reg_alpha"},
                             {"metric": "leaf_shrinkage", "trend": "increasing", "along": "reg_alpha"}], axes=AXES)
    assert verdicts[0].verdict == "supported"
    assert verdicts[1].verdict == "inconclusive" and "'leaf_shrinkage'" in verdicts[1].reason
    # a where key that only the one-row-per-trial table has is a column, not a mistake
    trials = cells.drop(columns=["fold", "repeat"]).drop_duplicates(["library", "reg_alpha", "reg_lambda"])
    trials = trials.assign(objective="reg:squarederror")
    judged = judge(cells, [{"metric": "zero_leaf_fraction", "trend": "increasing", "along": "reg_alpha",
                            "where": {"objective": "reg:squarederror"}}], axes=AXES, trials=trials)
    assert judged[0].verdict == "inconclusive"


CONTRACT = REPO / "docs" / "mlflow_contract.md"


def _doc_forms(name: str, metrics: tuple[str, ...]) -> list[str]:
    """The names as docs/mlflow_contract.md writes them: a family of names by its pattern."""
    if name.endswith("_std"):
        return ["<name>_std", *_doc_forms(name[:-4], metrics)]
    patterns = [(rf"^(train|test|gap)_({'|'.join(metrics)})$", lambda m: [f"{m[1]}_<m>"]),
                (r"^curve_(train|test)_\w+$", lambda m: [f"curve_{m[1]}_<metric>"]),
                (r"^hypothesis_\d+_verdict$", lambda m: ["hypothesis_<i>_verdict"]),
                (r"^hypothesis_\d+_(\w+)$", lambda m: ["hypothesis_<i>_verdict", f"_{m[1]}"]),
                (r"^gbreg\.hypothesis\.\d+$", lambda m: ["gbreg.hypothesis.<i>"]),
                (r"^gbreg\.version\..+$", lambda m: ["gbreg.version.<package>"]),
                (r"^(data|evaluation)\..+$", lambda m: [f"{m[1]}.*"]),
                (r"^sweep\..+$", lambda m: ["sweep.<axis>"]),
                (r"^plots$", lambda m: ["plots/*.png"])]
    for pattern, forms in patterns:
        match = re.match(pattern, name)
        if match:
            return forms(match)
    return [name]


def test_every_name_a_study_logs_is_in_the_mlflow_contract(tracking, tmp_path):
    """Parent and child runs of a real study with every optional part (repeats, counterparts, hypotheses):
    each param, metric, tag and artifact name is in docs/mlflow_contract.md, so the contract cannot fall
    behind the code. A booster's own parameters are the one open family ("every other model parameter")."""
    from gbreg import load_spec, run_study
    from gbreg.catalogue import METRICS_BY_TASK
    from gbreg.spec.params import resolve_params
    from gbreg.tracking.store import open_store

    spec = small_spec(name="contract28", repeats=2, counterparts=["lasso"],
                      models={"xgboost": {"n_estimators": 5, "max_depth": 2},
                              "lightgbm": {"n_estimators": 5, "num_leaves": 4},
                              "catboost": {"n_estimators": 5, "max_depth": 2},
                              "sklearn_hgb": {"n_estimators": 5, "max_leaves": 4}},
                      sweep={"reg_alpha": [0, 1, 10], "reg_lambda": [0, 1]},
                      expect=[{"metric": "zero_leaf_fraction", "trend": "increasing", "along": "reg_alpha"},
                              {"best": "test_rmse", "interior": ["reg_alpha"]}])
    study = load_spec(write_spec(tmp_path, spec))
    outcome = run_study(study, jobs=1, verbosity=-1, config=tracking)
    assert not outcome.failures
    client = open_store(tracking)
    parent = client.get_run(outcome.parent_run_id)
    children = client.search_runs([outcome.experiment_id], f"tags.`mlflow.parentRunId` = '{outcome.parent_run_id}'")
    assert {child.data.tags["gbreg.kind"] for child in children} == {"booster", "linear"}
    model_params = {name for library, params in study.libraries().items() for name in resolve_params(library, params)}
    doc = CONTRACT.read_text()
    metrics = METRICS_BY_TASK["regression"]
    missing = {}
    for run in [parent, *children]:
        kind = run.data.tags["gbreg.kind"]
        names = {"param": set(run.data.params) - (model_params if kind == "booster" else set()),
                 "metric": set(run.data.metrics), "tag": set(run.data.tags),
                 "artifact": {entry.path for entry in client.list_artifacts(run.info.run_id)}}
        for what, found in names.items():
            for name in found:
                absent = [form for form in _doc_forms(name, metrics) if f"`{form}`" not in doc]
                if absent:
                    missing.setdefault(f"{kind} {what}", set()).add(name)
    assert not missing, f"logged but not in {CONTRACT.name}: {missing}"
    assert {"hypotheses_supported", "hypotheses_contradicted", "hypotheses_inconclusive"} <= set(parent.data.metrics)


SPEC_DOC = REPO / "docs" / "spec.md"


def test_spec_doc_says_what_a_scalar_axis_and_the_other_splits_key_do():
    """docs/spec.md: a scalar sweep axis is one value (the same trials as a one-item list); folds is unused
    with holdout, test_size with kfold (but both enter the trial keys, as the doc says)."""
    from gbreg.plan import make_plan
    from gbreg.spec.validation import validate_spec

    def keys(**overrides):
        return [t.trial_key for t in make_plan(validate_spec(small_spec(**overrides)))]

    scalar = validate_spec(small_spec(sweep={"reg_alpha": 3, "reg_lambda": [0, 1]}))
    assert scalar.sweep_values()["reg_alpha"] == [3]
    assert keys(sweep={"reg_alpha": 3, "reg_lambda": [0, 1]}) == keys(sweep={"reg_alpha": [3], "reg_lambda": [0, 1]})
    holdout = {"split": "holdout", "test_size": 0.25, "metric": "rmse"}
    assert keys(evaluation={**holdout, "folds": 7}) != keys(evaluation=holdout)  # unused, yet in the key
    doc = SPEC_DOC.read_text()
    assert "a single number (reg_alpha: 3): one value" in doc
    assert "# holdout only;" in doc and "# kfold only" in doc and "it still enters" in doc


def test_catboost_trains_a_zero_l2_at_1e_20_as_docs_spec_says():
    import numpy as np
    import pytest

    catboost = pytest.importorskip("catboost")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    model = catboost.CatBoostRegressor(iterations=2, l2_leaf_reg=0, verbose=0, allow_writing_files=False,
                                       thread_count=1).fit(X, X[:, 0])
    assert model.get_all_params()["l2_leaf_reg"] == pytest.approx(1e-20, rel=1e-6)  # float32 1e-20
    text = " ".join(SPEC_DOC.read_text().split())
    assert "raises a 0 to 1e-20 itself" in text and "gbreg logs `reg_lambda` 0" in text
