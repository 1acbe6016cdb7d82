"""One literal table from gbreg's shared parameter vocabulary to each library's native names.

Like scikit-learn's ``get_equivalent_estimator``: a spec writes ``reg_alpha``/``reg_lambda`` (and the
other shared names) and each adapter translates them. A name that is not shared is passed through as
the library's own. ``None`` marks a shared name the library has no equivalent for: an axis with such a
name applies to the other library alone.

The defaults are the libraries' own (checked against their resolved configs in
``tests/test_params.py``), except ``n_estimators``: ``xgb.train``/``lgb.train`` have no number of rounds
of their own, so gbreg uses 100, as both scikit-learn wrappers do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LIBRARIES = ("xgboost", "lightgbm")

# shared name -> {library: native name or None}
SHARED_TO_NATIVE: dict[str, dict[str, str | None]] = {
    "n_estimators": {"xgboost": "num_boost_round", "lightgbm": "num_boost_round"},
    "learning_rate": {"xgboost": "eta", "lightgbm": "learning_rate"},
    "max_depth": {"xgboost": "max_depth", "lightgbm": "max_depth"},
    "reg_alpha": {"xgboost": "alpha", "lightgbm": "lambda_l1"},
    "reg_lambda": {"xgboost": "lambda", "lightgbm": "lambda_l2"},
    "min_child_weight": {"xgboost": "min_child_weight", "lightgbm": "min_sum_hessian_in_leaf"},
    "subsample": {"xgboost": "subsample", "lightgbm": "bagging_fraction"},
    "colsample_bytree": {"xgboost": "colsample_bytree", "lightgbm": "feature_fraction"},
    "max_bin": {"xgboost": "max_bin", "lightgbm": "max_bin"},
    "gamma": {"xgboost": "gamma", "lightgbm": None},
    "min_split_gain": {"xgboost": None, "lightgbm": "min_gain_to_split"},
    "num_leaves": {"xgboost": None, "lightgbm": "num_leaves"},
    "max_leaves": {"xgboost": "max_leaves", "lightgbm": None},
    "min_data_in_leaf": {"xgboost": None, "lightgbm": "min_data_in_leaf"},
}

# Resolved defaults in the shared vocabulary: logged with every trial so a study that does not sweep a
# penalty still records the value used (XGBoost's reg_lambda is 1, LightGBM's 0).
DEFAULTS: dict[str, dict[str, float | int]] = {
    "xgboost": {
        "n_estimators": 100, "learning_rate": 0.3, "max_depth": 6, "reg_alpha": 0.0, "reg_lambda": 1.0,
        "min_child_weight": 1.0, "gamma": 0.0, "subsample": 1.0, "colsample_bytree": 1.0, "max_bin": 256,
        "max_leaves": 0,
    },
    "lightgbm": {
        "n_estimators": 100, "learning_rate": 0.1, "max_depth": -1, "reg_alpha": 0.0, "reg_lambda": 0.0,
        "min_child_weight": 1e-3, "min_split_gain": 0.0, "subsample": 1.0, "colsample_bytree": 1.0,
        "max_bin": 255, "num_leaves": 31, "min_data_in_leaf": 20,
    },
}

# Native tree-booster parameters a spec may set directly (besides the shared names). Kept static so
# that `gbreg validate` needs no ML import; tests/test_params.py checks them against the libraries.
NATIVE_PARAMS: dict[str, frozenset[str]] = {
    "xgboost": frozenset({
        "eta", "gamma", "min_split_loss", "max_depth", "min_child_weight", "max_delta_step", "subsample",
        "sampling_method", "colsample_bytree", "colsample_bylevel", "colsample_bynode", "lambda", "alpha",
        "tree_method", "scale_pos_weight", "refresh_leaf", "process_type", "grow_policy", "max_leaves",
        "max_bin", "num_parallel_tree", "monotone_constraints", "interaction_constraints",
        "max_cat_to_onehot", "max_cat_threshold", "base_score", "booster", "num_boost_round",
    }),
    "lightgbm": frozenset({
        "boosting", "num_boost_round", "learning_rate", "num_leaves", "tree_learner", "max_depth",
        "min_data_in_leaf", "min_sum_hessian_in_leaf", "bagging_fraction", "pos_bagging_fraction",
        "neg_bagging_fraction", "bagging_freq", "feature_fraction", "feature_fraction_bynode",
        "extra_trees", "max_delta_step", "lambda_l1", "lambda_l2", "linear_lambda", "min_gain_to_split",
        "min_split_gain", "drop_rate", "max_drop", "skip_drop", "path_smooth", "max_bin",
        "min_data_in_bin", "min_data_per_group", "max_cat_threshold", "cat_l2", "cat_smooth",
        "max_cat_to_onehot", "monotone_constraints", "interaction_constraints",
        "top_rate", "other_rate", "use_quantized_grad", "num_grad_quant_bins",
        "feature_pre_filter", "linear_tree", "is_unbalance", "scale_pos_weight", "sigmoid",
    }),
}

# LightGBM Dataset parameters: a sweep over one of these needs one Dataset per value (issue 6 notes).
LIGHTGBM_DATASET_PARAMS = frozenset({
    "max_bin", "min_data_in_bin", "min_data_in_leaf", "feature_pre_filter", "max_cat_to_onehot",
    "max_cat_threshold", "cat_l2", "cat_smooth", "min_data_per_group", "linear_tree",
})

# Parameters gbreg sets itself, and why: a spec may not set them (each adapter's native_params() would
# override the value, and the run would log one that was not used; tests/test_spec_limits.py checks
# that every name native_params() writes is here or keeps the spec's value).
_DETERMINISM = "(threads, seeds, determinism)"
RESERVED_WHY: dict[str, str] = {  # name -> the end of "'<name>' is set by gbreg ..."
    **dict.fromkeys((
        "nthread", "n_jobs", "num_threads", "seed", "random_state", "verbosity", "verbose", "deterministic",
        "force_row_wise", "force_col_wise", "seed_per_iteration", "bagging_seed", "feature_fraction_seed",
        "data_random_seed"), _DETERMINISM),
    "objective": ("to the task's own loss (squared error, logistic or softmax), which the closed-form leaf "
                  "checks, the curves, the metrics and the linear counterparts all follow"),
    "num_class": "from the classes in the target",
    "eval_metric": "from evaluation.metric (the metric the curves record); set that instead",
    "metric": "from evaluation.metric (the metric the curves record); set that instead",
    "boost_from_average": ("to false: LightGBM's starting score is passed as init_score instead, so that every "
                           "leaf holds what the trees learned, as with XGBoost's base_score"),
    "validate_parameters": "to true, so that a parameter XGBoost does not use is an error",
}
RESERVED = frozenset(RESERVED_WHY)

# Native parameters that take only some of the library's values here, and why: gbreg reads every model's
# trees as sums of leaf weights, trains XGBoost on a QuantileDMatrix and gives LightGBM an init_score.
_DART = ("DART rescales earlier trees each time it drops them, so the leaves are no longer the penalized "
         "leaf weights gbreg measures")
CHOICES: dict[tuple[str, str], tuple[tuple, str]] = {
    ("xgboost", "booster"): (("gbtree",), f"gblinear grows no trees to read; {_DART}"),
    ("xgboost", "tree_method"): (("hist",), "gbreg trains on a QuantileDMatrix, which only 'hist' can use"),
    ("xgboost", "process_type"): (("default",), "'update' refreshes an existing model; gbreg trains new ones"),
    ("lightgbm", "boosting"): (("gbdt", "gbrt", "goss"), f"'rf' averages trees and takes no init_score; {_DART}"),
    ("lightgbm", "linear_tree"): ((False,), "linear trees add a linear model to each leaf, which the leaf "
                                  "analysis does not see"),
}


@dataclass(frozen=True)
class Range:
    """The values a numeric parameter takes: whole numbers or finite numbers, within bounds."""

    integer: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is excluded
    why_low: str = ""  # said when a value is below the bounds
    why_high: str = ""  # said when a value is above them

    def problem(self, value) -> str | None:
        """What is wrong with ``value``, as the end of "must be ...", or None."""
        bounds = " and ".join(([f"{'>' if self.low_open else '≥'} {self.low:g}"] if self.low is not None else [])
                              + ([f"≤ {self.high:g}"] if self.high is not None else []))
        expected = f"must be {'a whole number' if self.integer else 'a finite number'}{' ' + bounds if bounds else ''}"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (self.integer and not isinstance(value, int)) or not math.isfinite(value):
            return f"{expected}, got {value!r}"
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return f"{expected}, got {value!r}{'; ' + self.why_low if self.why_low else ''}"
        if self.high is not None and value > self.high:
            return f"{expected}, got {value!r}{'; ' + self.why_high if self.why_high else ''}"
        return None


MAX_ROUNDS = 100_000
# shared name -> the values both libraries accept (LIBRARY_RANGES: where one library differs)
RANGES: dict[str, Range] = {
    "n_estimators": Range(True, 1, MAX_ROUNDS, why_high=f"more than {MAX_ROUNDS} rounds per trial is almost certainly "
                          "a typo (a sweep multiplies it by every trial)"),
    "learning_rate": Range(False, 0, low_open=True, why_low="with learning_rate 0 no tree changes the prediction"),
    "max_depth": Range(True),  # LightGBM: ≤ 0 means no limit
    "reg_alpha": Range(False, 0),
    "reg_lambda": Range(False, 0),
    "min_child_weight": Range(False, 0),
    "subsample": Range(False, 0, 1, low_open=True),
    "colsample_bytree": Range(False, 0, 1, low_open=True),
    "max_bin": Range(True, 2),
    "gamma": Range(False, 0),
    "min_split_gain": Range(False, 0),
    "num_leaves": Range(True, 2, 131072),  # LightGBM's own bounds
    "max_leaves": Range(True, 0),  # 0: no limit
    "min_data_in_leaf": Range(True, 0),
}
LIBRARY_RANGES: dict[tuple[str, str], Range] = {
    ("xgboost", "max_depth"): Range(True, 0),  # 0: no limit (XGBoost rejects negative depths)
}

# Native names that are aliases of a shared parameter without being its table entry above.
NATIVE_ALIASES: dict[str, dict[str, str]] = {"xgboost": {"min_split_loss": "gamma"}, "lightgbm": {}}


def accepted_names(library: str) -> frozenset[str]:
    shared = {name for name, natives in SHARED_TO_NATIVE.items() if natives.get(library)}
    return frozenset(shared) | NATIVE_PARAMS[library]


def accepts(library: str, name: str) -> bool:
    return name in accepted_names(library)


def to_native(library: str, params: dict) -> dict:
    """Translate shared names to the library's own; other names pass through unchanged."""
    native = {}
    for name, value in params.items():
        mapped = SHARED_TO_NATIVE.get(name, {}).get(library)
        native[mapped or name] = value
    return native


def shared_name(library: str, native: str) -> str:
    for name, natives in SHARED_TO_NATIVE.items():
        if natives.get(library) == native:
            return name
    return NATIVE_ALIASES[library].get(native, native)


def value_problem(library: str, name: str, value) -> str | None:
    """What is wrong with ``value`` for parameter ``name`` (shared or native) of ``library``, or None."""
    shared = shared_name(library, name)
    if (library, name) in CHOICES:
        allowed, why = CHOICES[(library, name)]
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            return f"must be {' or '.join(map(repr, allowed))}, got {value!r}: {why}"
        return None
    checked = LIBRARY_RANGES.get((library, shared)) or RANGES.get(shared)
    return checked.problem(value) if checked else None


def resolve_params(library: str, params: dict) -> dict:
    """The library's defaults in the shared vocabulary, overlaid with the spec's (native names folded)."""
    resolved = dict(DEFAULTS[library])
    for name, value in params.items():
        resolved[shared_name(library, name)] = value
    return resolved
