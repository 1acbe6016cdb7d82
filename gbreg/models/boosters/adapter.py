"""The protocol every booster adapter follows, and the plain result a training returns.

The boundary is here so that the runner never touches a library: a worker calls :meth:`prepare` once
per (data set, split, data-shaping parameters) and reuses what it returns for every grid point, then
:meth:`train` once per grid point. Everything that comes back is plain numbers and arrays, so results
travel between processes (or Dask workers) and the model itself is dropped inside ``train``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from gbreg.models.boosters.library import Library


@dataclass
class FoldData:
    """One split of a data set, as the adapters receive it."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray
    task: str
    n_classes: int


@dataclass
class SplitResult:
    """What one training on one split produced: scores, per-round curves and the model's structure."""

    scores: dict[str, float]  # train_<m>, test_<m>, gap_<m>
    curves: dict[str, np.ndarray] = field(default_factory=dict)  # curve_train_<m>, curve_test_<m>
    leaves: dict[str, np.ndarray] | None = None  # the leaf table (gbreg.models.trees.LEAF_COLUMNS)
    coefficients: pd.DataFrame | None = None  # linear models: feature, class, coef
    stats: dict[str, float] = field(default_factory=dict)  # tree or coefficient statistics
    fit_seconds: float = 0.0
    extra_params: dict[str, Any] = field(default_factory=dict)  # resolved settings worth logging


class DeclaredAdapter:
    """What every adapter takes from its library's declaration (a subclass sets ``declaration``)."""

    declaration: Library

    @property
    def library(self) -> str:
        return self.declaration.name

    def dataset_key(self, params: dict) -> tuple:
        return self.declaration.dataset_key(params)


class BoosterAdapter(Protocol):
    library: str
    declaration: Library  # what gbreg knows about the library without importing it

    def dataset_key(self, params: dict) -> tuple:
        """The parameters that shape the training matrix: a prepared matrix is reused while they match."""

    def prepare(self, fold: FoldData, params: dict) -> Any:
        """Build the library's training and test matrices once; called by a worker per cache miss."""

    def train(self, prepared: Any, fold: FoldData, params: dict, metric: str, seed: int,
              threads: int) -> SplitResult:
        """Train at one grid point (``params`` in the shared vocabulary, resolved) and measure it."""
