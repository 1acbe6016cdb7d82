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
        "objective", "eval_metric", "validate_parameters",
    }),
    "lightgbm": frozenset({
        "boosting", "num_boost_round", "learning_rate", "num_leaves", "tree_learner", "max_depth",
        "min_data_in_leaf", "min_sum_hessian_in_leaf", "bagging_fraction", "pos_bagging_fraction",
        "neg_bagging_fraction", "bagging_freq", "feature_fraction", "feature_fraction_bynode",
        "extra_trees", "max_delta_step", "lambda_l1", "lambda_l2", "linear_lambda", "min_gain_to_split",
        "min_split_gain", "drop_rate", "max_drop", "skip_drop", "path_smooth", "max_bin",
        "min_data_in_bin", "min_data_per_group", "max_cat_threshold", "cat_l2", "cat_smooth",
        "max_cat_to_onehot", "monotone_constraints", "interaction_constraints", "boost_from_average",
        "objective", "metric", "top_rate", "other_rate", "use_quantized_grad", "num_grad_quant_bins",
        "feature_pre_filter", "linear_tree", "is_unbalance", "scale_pos_weight", "sigmoid",
    }),
}

# LightGBM Dataset parameters: a sweep over one of these needs one Dataset per value (issue 6 notes).
LIGHTGBM_DATASET_PARAMS = frozenset({
    "max_bin", "min_data_in_bin", "min_data_in_leaf", "feature_pre_filter", "max_cat_to_onehot",
    "max_cat_threshold", "cat_l2", "cat_smooth", "min_data_per_group", "linear_tree",
})

# Parameters gbreg sets itself (threads, seeds, determinism, verbosity); a spec may not override them.
RESERVED = frozenset({
    "nthread", "n_jobs", "num_threads", "seed", "random_state", "verbosity", "verbose", "deterministic",
    "force_row_wise", "force_col_wise", "num_class", "seed_per_iteration", "bagging_seed",
    "feature_fraction_seed", "data_random_seed",
})


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
    return native


def resolve_params(library: str, params: dict) -> dict:
    """The library's defaults in the shared vocabulary, overlaid with the spec's (native names folded)."""
    resolved = dict(DEFAULTS[library])
    for name, value in params.items():
        resolved[shared_name(library, name)] = value
    return resolved
