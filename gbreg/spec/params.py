"""gbreg's shared parameter vocabulary, translated to each registered library's own names.

Like scikit-learn's ``get_equivalent_estimator``: a spec writes ``reg_alpha``/``reg_lambda`` (and the
other shared names) and each adapter translates them. A name that is not shared is passed through as
the library's own. A shared name a library has no equivalent for (``gamma`` for LightGBM) makes an axis
that applies to the other libraries alone. What each library accepts, its defaults, the names gbreg sets
itself and its allowed values are declared by its adapter (:class:`gbreg.models.boosters.library.Library`);
the functions here read the registry, so a library registered later is known to them.
"""

from __future__ import annotations

from gbreg.catalogue import PENALTY_AXES
from gbreg.models.boosters import LIBRARIES, declaration, declarations
from gbreg.models.boosters.library import Range

__all__ = ["LIBRARIES", "Range"]


def shared_to_native() -> dict[str, dict[str, str | None]]:
    """shared name -> {library: native name or None}, over every registered library."""
    shared = dict.fromkeys(name for lib in declarations() for name in lib.native_names)
    return {name: {lib.name: lib.native_names.get(name) for lib in declarations()} for name in shared}


def reserved_why() -> dict[str, str]:
    """Names gbreg sets itself in any registered library -> why (the end of "'<name>' is set by gbreg ...").
    A spec may not set them: the adapter's native_params() would override the value, and the run would log
    one that was not used (tests/test_spec_limits.py checks every name native_params() writes)."""
    why: dict[str, str] = {}
    for lib in declarations():
        for name, reason in lib.reserved.items():
            why.setdefault(name, reason)
    return why


# The registered libraries' tables as data, derived once (for readers and tests; gbreg's own code calls
# the functions, which also see a library registered later).
SHARED_TO_NATIVE = shared_to_native()
DEFAULTS: dict[str, dict[str, float | int]] = {lib.name: dict(lib.defaults) for lib in declarations()}
NATIVE_PARAMS: dict[str, frozenset[str]] = {lib.name: lib.native_params for lib in declarations()}
RESERVED_WHY = reserved_why()
RESERVED = frozenset(RESERVED_WHY)
CHOICES: dict[tuple[str, str], tuple[tuple, str]] = {
    (lib.name, name): choice for lib in declarations() for name, choice in lib.choices.items()}


MAX_ROUNDS = 100_000
# shared name -> the values every library accepts (a library's declared ranges: where it differs)
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


def accepted_names(library: str) -> frozenset[str]:
    return declaration(library).accepted_names()


def accepts(library: str, name: str) -> bool:
    return name in accepted_names(library)


def to_native(library: str, params: dict) -> dict:
    """Translate shared names to the library's own; other names pass through unchanged."""
    return declaration(library).to_native(params)


def shared_name(library: str, native: str) -> str:
    return declaration(library).shared_name(native)


def value_problem(library: str, name: str, value) -> str | None:
    """What is wrong with ``value`` for parameter ``name`` (shared or native) of ``library``, or None."""
    lib = declaration(library)
    if name in lib.choices:
        allowed, why = lib.choices[name]
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            return f"must be {' or '.join(map(repr, allowed))}, got {value!r}: {why}"
        return None
    shared = lib.shared_name(name)
    checked = lib.ranges.get(shared) or RANGES.get(shared)
    return checked.problem(value) if checked else None


def whole_number_expected(library: str, name: str) -> bool:
    """Whether parameter ``name`` (shared or native) of ``library`` takes whole numbers only."""
    lib = declaration(library)
    if name in lib.choices:
        return False
    shared = lib.shared_name(name)
    checked = lib.ranges.get(shared) or RANGES.get(shared)
    return bool(checked and checked.integer)


def as_whole_number(value):
    """A float that is exactly a whole number as that int (``2e1``, which YAML reads as 20.0, is 20); any
    other value as it is (2.5 stays 2.5, for the range check to refuse). Beyond 2**53 a float is not
    exactly the integer it shows, so it stays a float too."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


def resolve_params(library: str, params: dict) -> dict:
    """The library's defaults in the shared vocabulary, overlaid with the spec's (native names folded)."""
    lib = declaration(library)
    resolved = dict(lib.defaults)
    for name, value in params.items():
        resolved[lib.shared_name(name)] = value
    return resolved


def trained_penalty(params: dict, penalty: str) -> float:
    """The value of ``penalty`` (reg_alpha or reg_lambda) a booster trains at, from its resolved params.

    A library without that penalty (CatBoost and HistGradientBoosting have no L1 term) trains at 0 on
    it: its points are (0, λ) for each of its reg_lambda values, matched by the pure-L2 and unpenalized
    counterparts only (docs/linear_counterparts.md).
    """
    return float(params.get(penalty, 0.0))


def penalty_values(spec) -> list[tuple[set[float], set[float]]]:
    """Per library, the reg_alpha and reg_lambda values its trials run: the swept axis (by any of its
    names), else the models value, else the library default (as :func:`gbreg.plan.booster_trials` resolves them),
    else 0 for a penalty the library does not have (:func:`trained_penalty`)."""
    axes = spec.sweep_values()
    grids = []
    for library, model_params in spec.libraries().items():
        resolved = resolve_params(library, model_params)
        values = []
        for penalty in PENALTY_AXES:
            swept = [vals for axis, vals in axes.items()
                     if accepts(library, axis) and shared_name(library, axis) == penalty]
            values.append({float(v) for v in swept[0]} if swept else {trained_penalty(resolved, penalty)})
        grids.append((values[0], values[1]))
    return grids
