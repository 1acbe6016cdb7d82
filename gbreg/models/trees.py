"""Tree size and leaf-score statistics from a common leaf table.

Each adapter reads its model dump once (XGBoost's JSON model, LightGBM's model string: no pandas on
the hot path) into a leaf table, one row per leaf of every tree, every class's trees included:

    tree   index of the tree in the model (for multiclass, class = tree % n_classes)
    klass  the class the tree scores (0 for regression and binary)
    leaf   the leaf's node id within its tree
    value  the leaf value as the model adds it (learning rate applied; no base score / init score)
    cover  the sum of hessians of the training rows in the leaf (CatBoost: of their weights; NaN where the
           model does not record it: a LightGBM tree of one leaf)
    depth  the leaf's depth (root = 0, so a stump's leaves have depth 1)

A leaf no training row reaches (cover 0) exists only in CatBoost's symmetric trees, which keep all
2^depth leaves; its value is 0 because no row is there, not because a penalty put it there. The leaf-value
statistics (``zero_leaf_fraction``, ``leaf_abs_mean``, the distribution's) are over the leaves rows reach
(:func:`reached_values`); ``n_leaves`` counts every leaf of the model and ``empty_leaf_fraction`` the others.
"""

from __future__ import annotations

import numpy as np

from gbreg.catalogue import names

LEAF_COLUMNS = ("tree", "klass", "leaf", "value", "cover", "depth")

TREE_STAT_NAMES = names("tree", "support", "mechanism", on="booster")


class LeafTableBuilder:
    """Accumulates leaves tree by tree, then hands back numpy columns."""

    def __init__(self) -> None:
        self._columns: dict[str, list] = {name: [] for name in LEAF_COLUMNS}

    def add_tree(self, tree: int, klass: int, leaf_ids, values, covers, depths) -> None:
        n = len(values)
        self._columns["tree"].extend([tree] * n)
        self._columns["klass"].extend([klass] * n)
        self._columns["leaf"].extend(leaf_ids)
        self._columns["value"].extend(values)
        self._columns["cover"].extend(covers)
        self._columns["depth"].extend(depths)

    def build(self) -> dict[str, np.ndarray]:
        return leaf_table(**self._columns)


LEAF_DTYPES = {"tree": "int32", "klass": "int16", "leaf": "int32", "value": "float64", "cover": "float64",
               "depth": "int16"}


def leaf_table(**columns) -> dict[str, np.ndarray]:
    """The leaf table from its columns (lists or arrays), each in its declared dtype."""
    return {name: np.asarray(columns[name], dtype=LEAF_DTYPES[name]) for name in LEAF_COLUMNS}


def node_depths(parents: np.ndarray, children: np.ndarray, n_nodes: int) -> np.ndarray:
    """Depth of each of ``n_nodes`` nodes (a root is 0) from the (parent, child) edges of whole trees, every
    tree of a model at once: each pass sets one more level, so it takes as many passes as the deepest
    leaf, each a few array operations, instead of a Python step per node."""
    depth = np.zeros(n_nodes, np.int64)
    while True:
        deeper = depth.copy()
        deeper[children] = depth[parents] + 1
        if np.array_equal(deeper, depth):
            return depth
        depth = deeper


def reached_values(leaves) -> np.ndarray:
    """The values of the leaves some training row reaches (cover not 0; an unknown cover counts as reached).
    ``leaves``: a leaf table, as numpy columns or a DataFrame; without a ``cover`` column every leaf counts."""
    values = np.asarray(leaves["value"], dtype=float)
    if "cover" not in leaves:
        return values.copy()
    return values[~(np.asarray(leaves["cover"], dtype=float) == 0)]


def tree_stats(leaves: dict[str, np.ndarray], n_trees: int, n_features_used: int) -> dict[str, float]:
    """Size and leaf-score statistics; ``leaf_l2`` is the Euclidean norm sqrt(sum v^2)."""
    n_leaves = len(leaves["value"])
    values = reached_values(leaves)
    if n_trees and n_leaves:
        tree_depth = np.zeros(n_trees)
        np.maximum.at(tree_depth, leaves["tree"], leaves["depth"])
        depth_mean, depth_max = float(tree_depth.mean()), float(tree_depth.max())
    else:
        depth_mean = depth_max = 0.0
    abs_values = np.abs(values)
    return {
        "n_trees": float(n_trees),
        "n_leaves": float(n_leaves),
        "leaves_per_tree": n_leaves / n_trees if n_trees else 0.0,
        "depth_mean": depth_mean,
        "depth_max": depth_max,
        "zero_leaf_fraction": float(np.mean(values == 0.0)) if len(values) else 0.0,
        "empty_leaf_fraction": 1.0 - len(values) / n_leaves if n_leaves else 0.0,
        "leaf_abs_mean": float(abs_values.mean()) if len(values) else 0.0,
        "leaf_l1": float(abs_values.sum()),
        "leaf_l2": float(np.sqrt(np.sum(values**2))),
        "n_features_used": float(n_features_used),
    }
