"""A sweep with an axis besides the two penalties (XGBoost's gamma, LightGBM's min_split_gain): each
trial appears once in comparison.csv, and the figures include regularization paths along that axis."""

from __future__ import annotations

import pytest
from conftest import small_spec, study_in_temp_store

from gbreg.analysis.comparison import comparison_table
from gbreg.report.plots import table_figures
from gbreg.report.plots.figure_data import PlotContext, path_data

SPEC = small_spec(models={"xgboost": {"n_estimators": 10, "max_depth": 3},
                          "lightgbm": {"n_estimators": 10, "num_leaves": 7}},
                  sweep={"reg_alpha": [0, 10], "reg_lambda": [0, 1, 10], "gamma": [0, 3000],
                         "min_split_gain": [0, 3000]})


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    yield from study_in_temp_store(tmp_path_factory.mktemp("extra_axes"), SPEC)


def test_each_trial_appears_once_in_the_comparison_table(study):
    outcome, _, _ = study
    results = outcome.results
    table = comparison_table(results, ("rmse", "mae", "r2"), ["gamma", "min_split_gain"])
    for library, own_axis, other_axis in (("xgboost", "gamma", "min_split_gain"),
                                          ("lightgbm", "min_split_gain", "gamma")):
        filled = table[table[f"{library}.test_rmse"].notna()]
        trials = results[results["library"] == library]
        assert len(filled) == len(trials) == 12  # 2 alpha x 3 lambda x 2 values of its own axis
        assert filled[other_axis].isna().all()  # no values repeated along the other library's axis
        assert sorted(filled[f"{library}.test_rmse"]) == sorted(trials["test_rmse"].astype(float))
        assert set(filled[own_axis]) == {0, 3000}


def test_paths_along_each_extra_axis_for_the_library_that_has_it(study):
    outcome, _, _ = study
    context = PlotContext("rmse", ("reg_alpha", "reg_lambda", "gamma", "min_split_gain"))
    names = {name for name, _, _ in table_figures(outcome.results, context)}
    assert {"path_gamma_test_rmse.png", "path_min_split_gain_test_rmse.png",
            "path_gamma_leaves_per_tree.png"} <= names
    data = path_data(outcome.results, "gamma", "leaves_per_tree", context)
    assert [panel.label for panel in data.panels] == ["xgboost"]  # LightGBM has no gamma
    (panel,) = data.panels
    assert data.other_axis == "reg_lambda" and len(panel.lines) == 3  # one line per reg_lambda value
    assert set(panel.held) == {"reg_alpha"}
    for line in panel.lines:
        assert list(line.x) == [0.0, 3000.0]
        assert line.y[1] < line.y[0]  # a large gamma prunes splits: fewer leaves per tree
