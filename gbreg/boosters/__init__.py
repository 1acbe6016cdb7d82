"""One adapter per library behind :class:`~gbreg.boosters._base.BoosterAdapter`; add a library by adding
a file and a line here."""

from __future__ import annotations

from gbreg.boosters._base import BoosterAdapter, FoldData, SplitResult
from gbreg.boosters.lgbm import LightGBMAdapter
from gbreg.boosters.xgb import XGBoostAdapter

ADAPTERS: dict[str, BoosterAdapter] = {"xgboost": XGBoostAdapter(), "lightgbm": LightGBMAdapter()}

__all__ = ["ADAPTERS", "BoosterAdapter", "FoldData", "SplitResult"]
