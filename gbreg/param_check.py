"""A cheap check of model parameters against the libraries themselves, before any real training.

Each library trains one round on a small, evenly spaced sample of the real data, first with the
spec's model parameters, then with each sweep value on its own: a value the library rejects is found
in seconds, with the key path that set it, not after an hour of training.
"""

from __future__ import annotations

import numpy as np

from gbreg.boosters import ADAPTERS, FoldData
from gbreg.params import accepts, resolve_params
from gbreg.errors import SpecError


def check_library_params(prepared) -> None:
    spec = prepared.spec
    dataset = prepared.dataset
    rows = np.unique(np.linspace(0, len(dataset.y) - 1, min(len(dataset.y), 200)).astype(int))
    X, y = dataset.X.iloc[rows], dataset.y[rows]
    fold = FoldData(X, y, X, y, prepared.task, dataset.n_classes)
    problems = []
    for library, model_params in spec.libraries().items():
        adapter = ADAPTERS[library]
        base = {**model_params, "n_estimators": 1}
        error = _try(adapter, fold, resolve_params(library, base), prepared.metric)
        if error:
            problems.append((f"models.{library}", f"{library} rejects these parameters: {error}"))
            continue
        for axis, values in spec.sweep_values().items():
            if not accepts(library, axis) or axis == "n_estimators":
                continue
            for i, value in enumerate(values):
                error = _try(adapter, fold, resolve_params(library, {**base, axis: value}), prepared.metric)
                if error:
                    problems.append((f"sweep.{axis}[{i}]", f"{library} rejects {axis}={value!r}: {error}"))
    if problems:
        raise SpecError(spec.source, problems)


def _try(adapter, fold: FoldData, params: dict, metric: str) -> str | None:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adapter.train(adapter.prepare(fold, params), fold, params, metric, seed=0, threads=1)
    except Exception as exc:  # noqa: BLE001 - any rejection is reported as the user's mistake
        text = " ".join(str(exc).split())
        return text[:300] or type(exc).__name__
    return None
