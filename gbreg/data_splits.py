"""A data set's train/test splits (holdout or k-fold, repeated with seed + repeat; stratified for classes), and
the jobs that make them on a worker process."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gbreg.data import Dataset, load_dataset
from gbreg.errors import DataError


@dataclass(frozen=True)
class Split:
    """One train/test partition: ``repeat`` r uses seed + r; ``fold`` is 0 for a holdout split."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray

    @property
    def split_id(self) -> str:
        return f"r{self.repeat}f{self.fold}"


def make_splits(dataset: Dataset, split: str, test_size: float, folds: int, seed: int,
                repeats: int) -> list[Split]:
    return split_rows(dataset.y, dataset.task, dataset.name, split, test_size, folds, seed, repeats)


def split_rows(y: np.ndarray, task: str, name: str, split: str, test_size: float, folds: int, seed: int,
               repeats: int) -> list[Split]:
    """The train/test partitions of a target ``y``: a stratified split for classification tasks."""
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    stratify = task != "regression"
    indices = np.arange(len(y))
    splits = []
    for repeat in range(repeats):
        state = seed + repeat
        try:
            if split == "holdout":
                train, test = train_test_split(indices, test_size=test_size, random_state=state,
                                               stratify=y if stratify else None)
                splits.append(Split(repeat, 0, train, test))  # train_test_split's order: XGBoost's sketch depends on it
            else:
                splitter = (StratifiedKFold if stratify else KFold)(n_splits=folds, shuffle=True, random_state=state)
                for fold, (train, test) in enumerate(splitter.split(indices, y)):
                    splits.append(Split(repeat, fold, train, test))
        except ValueError as exc:
            raise DataError(f"evaluation: cannot split {name} ({len(indices)} rows): {exc}") from exc
    return splits


# Jobs for a worker process, which imports scikit-learn with XGBoost and LightGBM anyway: loading
# scikit-learn's data sets and splitting there spares the main process the import, whose CPU would be
# taken from the workers on a machine whose cores they fill.

def load_and_split_job(job: tuple) -> tuple[Dataset, list[Split] | DataError]:
    """``job``: (data spec, task, seed, base dir, evaluation spec, repeats) -> the data set and its splits."""
    data, task, seed, base_dir, evaluation, repeats = job
    dataset = load_dataset(data, task, seed, base_dir)
    return dataset, split_job((dataset.y, dataset.task, dataset.name, evaluation, seed, repeats))


def split_job(job: tuple) -> list[Split] | DataError:
    """``job``: (y, task, name, evaluation spec, seed, repeats) -> the splits, or the error that refused them
    (returned, not raised: the caller raises it where it makes the splits, after the spec's own checks)."""
    y, task, name, evaluation, seed, repeats = job
    try:
        return split_rows(y, task, name, evaluation.split, evaluation.test_size, evaluation.folds, seed, repeats)
    except DataError as exc:
        return exc
