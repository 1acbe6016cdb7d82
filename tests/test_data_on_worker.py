"""With local workers, scikit-learn's data sets are loaded and every data set is split on a worker, which
imports scikit-learn anyway: the main process never imports it, and the data, splits and records are the
ones loading here gives."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import small_spec, write_spec

from gbreg import load_spec
from gbreg.data import load_dataset
from gbreg.data_splits import make_splits
from gbreg.run.local_processes import start_local_pool
from gbreg.run.study import _load_data, _splits, prepare_study

MAIN_PROCESS_MODULES = """
import sys
from gbreg import load_spec, run_study
outcome = run_study(load_spec(sys.argv[1]), jobs=2, verbosity=-1, raise_on_failure=True)
print(outcome.n_ran, "sklearn" in sys.modules, "scipy.stats" in sys.modules)
"""


def test_a_study_on_local_workers_never_imports_scikit_learn_in_the_main_process(tracking, tmp_path):
    path = write_spec(tmp_path, small_spec(sweep={"reg_alpha": [0, 1], "reg_lambda": [0, 10]}))
    done = subprocess.run([sys.executable, "-c", MAIN_PROCESS_MODULES, str(path)], capture_output=True, text=True,
                          cwd=tmp_path, check=True)
    assert done.stdout.split() == ["8", "False", "False"]


@pytest.mark.parametrize("data, evaluation", [
    ({"source": "sklearn", "name": "breast_cancer"}, {"split": "kfold", "folds": 3, "metric": "logloss"}),
    ({"source": "synthetic", "generator": "classification", "params": {"n_samples": 300, "n_classes": 3,
                                                                       "n_informative": 4}},
     {"split": "holdout", "test_size": 0.3, "metric": "logloss"}),
])
def test_the_data_and_splits_made_on_a_worker_are_those_made_here(tmp_path, data, evaluation):
    spec = load_spec(write_spec(tmp_path, small_spec(data=data, evaluation=evaluation, repeats=2)))
    pool = start_local_pool(2)
    try:
        dataset, splitting = _load_data(spec, pool)
        prepared = prepare_study(spec, check_libraries=False, dataset=dataset)
        splits = _splits(prepared, splitting)
    finally:
        pool.close(cancel=True)
    here = load_dataset(spec.data, spec.task, spec.seed, spec.base_dir)
    assert dataset.fingerprint() == here.fingerprint() and dataset.task == here.task
    expected = make_splits(here, spec.evaluation.split, spec.evaluation.test_size, spec.evaluation.folds, spec.seed,
                           spec.repeats)
    assert len(splits) == len(expected) == (6 if evaluation["split"] == "kfold" else 2)
    for made, wanted in zip(splits, expected):
        assert (made.repeat, made.fold) == (wanted.repeat, wanted.fold)
        assert np.array_equal(made.train, wanted.train) and np.array_equal(made.test, wanted.test)


def test_the_specs_own_checks_speak_before_a_split_the_worker_refused(tmp_path):
    from gbreg.errors import DataError, SpecError

    spec = load_spec(write_spec(tmp_path, small_spec(
        data={"source": "synthetic", "generator": "classification", "params": {"n_samples": 12, "n_classes": 2}},
        evaluation={"split": "kfold", "folds": 10, "metric": "logloss"})))
    pool = start_local_pool(2)
    try:
        dataset, splitting = _load_data(spec, pool)
        with pytest.raises(SpecError, match="every class needs at least 10"):
            prepare_study(spec, check_libraries=False, dataset=dataset)
    finally:
        pool.close(cancel=True)
    assert isinstance(splitting, DataError) and "evaluation: cannot split" in str(splitting)  # returned, not raised
