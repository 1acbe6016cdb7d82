"""The booster registry: one adapter per library behind :class:`~gbreg.models.boosters.adapter.BoosterAdapter`, each
declaring its library (:class:`~gbreg.models.boosters.library.Library`). Add a library by adding its adapter
file and one ``register`` line here: the spec's ``models:``, :mod:`gbreg.spec.params`, the curve names, the
workers' imports and the version tags read the registry. Registration order is the order of ``LIBRARIES``
(and of each study's trials)."""

from __future__ import annotations

from gbreg.models.boosters.adapter import BoosterAdapter, DeclaredAdapter, FoldData, SplitResult
from gbreg.models.boosters.catboost_adapter import CatBoostAdapter
from gbreg.models.boosters.lgbm import LightGBMAdapter
from gbreg.models.boosters.library import Library
from gbreg.models.boosters.sklearn_hgb import SklearnHGBAdapter
from gbreg.models.boosters.xgb import XGBoostAdapter

ADAPTERS: dict[str, BoosterAdapter] = {}
LIBRARIES = ADAPTERS.keys()  # a live view: a library registered later is in it


def register(adapter: BoosterAdapter) -> None:
    ADAPTERS[adapter.declaration.name] = adapter


def unregister(name: str) -> None:
    del ADAPTERS[name]


def declaration(library: str) -> Library:
    return ADAPTERS[library].declaration


def declarations() -> list[Library]:
    return [adapter.declaration for adapter in ADAPTERS.values()]


def library_packages() -> tuple[str, ...]:
    """The distributions of the registered libraries, for version tags and the workers' check."""
    return tuple(dict.fromkeys(adapter.declaration.package for adapter in ADAPTERS.values()))


register(XGBoostAdapter())
register(LightGBMAdapter())
register(CatBoostAdapter())
register(SklearnHGBAdapter())

__all__ = ["ADAPTERS", "LIBRARIES", "BoosterAdapter", "DeclaredAdapter", "FoldData", "Library", "SplitResult", "declaration",
           "declarations", "library_packages", "register", "unregister"]
