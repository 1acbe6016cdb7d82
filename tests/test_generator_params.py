"""data.params of a synthetic generator: checked against sklearn's own parameters when the spec is
validated (a typo is a spec error with a did-you-mean, not a TypeError from sklearn at load time), and
make_classification's shuffle means what the logged value says."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from conftest import small_spec

from gbreg.data import load_dataset
from gbreg.errors import SpecError
from gbreg.spec.schema import GENERATOR_PARAMS
from gbreg.spec.validation import validate_spec


@pytest.mark.parametrize("generator", sorted(GENERATOR_PARAMS))
def test_the_settable_parameters_are_sklearns_less_those_gbreg_sets(generator):
    from sklearn import datasets

    signature = set(inspect.signature(getattr(datasets, f"make_{generator}")).parameters)
    assert set(GENERATOR_PARAMS[generator]) <= signature
    assert signature - set(GENERATOR_PARAMS[generator]) <= {"coef", "return_X_y", "weights"}


def _problems(generator: str, params: dict) -> list[str]:
    raw = small_spec(data={"source": "synthetic", "generator": generator, "params": params})
    with pytest.raises(SpecError) as caught:
        validate_spec(raw, source="study.yaml")
    return [f"{path}: {message}" for path, message in caught.value.problems]


def test_a_misspelt_generator_parameter_is_a_spec_error_with_the_right_name():
    assert _problems("regression", {"n_sample": 200, "noize": 1.0}) == [
        "data.params.n_sample: unknown make_regression parameter 'n_sample'; did you mean 'n_samples'?",
        "data.params.noize: unknown make_regression parameter 'noize'; did you mean 'noise'?",
    ]


def test_more_than_one_regression_target_is_refused_before_any_library_sees_it():
    assert _problems("regression", {"n_targets": 2}) == [
        "data.params.n_targets: a study fits one target; got 2, leave it out (1)"]


def test_classification_refuses_shuffle_true_which_would_hide_the_informative_columns():
    [problem] = _problems("classification", {"n_samples": 100, "shuffle": True})
    assert problem.startswith("data.params.shuffle: gbreg generates the classes unshuffled")


def test_shuffle_false_is_exactly_sklearns_unshuffled_data_and_the_default_permutes_columns(tmp_path):
    from sklearn.datasets import make_classification

    params = {"n_samples": 150, "n_features": 6, "n_informative": 3}
    expected_X, expected_y = make_classification(shuffle=False, random_state=7, **params)
    for shuffle, same_columns in ((False, True), (None, False)):
        given = params | ({} if shuffle is None else {"shuffle": shuffle})
        spec = validate_spec(small_spec(seed=7, data={"source": "synthetic", "generator": "classification",
                                                      "params": given}))
        data = load_dataset(spec.data, None, spec.seed, tmp_path)
        assert np.array_equal(data.y, expected_y)
        assert np.array_equal(data.X.to_numpy(), expected_X) is same_columns
        # either way the informative columns are the ones make_classification made informative
        informative = [int(name[1:]) for name in data.informative]
        assert sorted(data.X.to_numpy()[:, informative].sum(axis=0).round(9)) == sorted(
            expected_X[:, :3].sum(axis=0).round(9))
