"""Parameters that can have no effect given the spec's other settings: a spec error, not a silent no-op.

A library declares, per parameter, what must hold for it to take effect (:class:`gbreg.models.boosters.library.Needs`:
LightGBM's subsample needs a bagging frequency, top_rate needs goss, drop_rate needs DART, which gbreg
refuses; XGBoost's scale_pos_weight needs a binary task). A parameter set under ``models`` or swept,
whose every value that asks for something meets only settings (``models``, sweep, or what gbreg trains
when the spec sets none) under which the library ignores it, would train trials identical to its default's
and log a value that was not used: the grid would show an axis that does nothing.

A fact not known at validation (the task of a file whose target is not read yet, whether the data has a
categorical column) allows the parameter there; the one-round check on the loaded data
(:mod:`gbreg.run.param_check`) applies the same table with the facts known.
"""

from __future__ import annotations

from gbreg.models.boosters import declaration
from gbreg.models.boosters.library import CATEGORICAL, TASK
from gbreg.spec.params import accepts


def effect_problems(spec) -> list[tuple[str, str]]:
    """(key path, message) for each parameter a library would ignore in every trial that sets it, with
    the facts known before the data is loaded (the task, when the spec or the data source tells it)."""
    return ignored_parameters(spec.libraries(), spec.sweep_values(skip_invalid=True), {TASK: spec.known_task()})


def ignored_parameters(libraries: dict[str, dict], axes: dict[str, list], facts: dict) -> list[tuple[str, str]]:
    """The same for ``libraries`` (models.<library> as written) and the sweep ``axes`` (axis -> values);
    ``facts``: :data:`TASK` and :data:`CATEGORICAL` where known (absent or None: not known)."""
    problems = []
    for library, model_params in libraries.items():
        lib = declaration(library)
        if not lib.needs:
            continue
        # shared (else native) name -> where the spec sets it and the value(s) there
        settings: dict[str, list[tuple[str, object]]] = {}
        for name, value in model_params.items():
            settings[lib.shared_name(name)] = [(f"models.{library}.{name}", value)]
        for axis, values in axes.items():
            if accepts(library, axis):
                settings[lib.shared_name(axis)] = [(f"sweep.{axis}[{i}]", v) for i, v in enumerate(values)]
        found = []
        for name, needs in lib.needs.items():
            for need in needs:
                asking = [(path, value) for path, value in settings.get(name, []) if not _idle(value, need.idle)]
                if not asking:
                    break
                gate = _gate(need, settings, facts)
                if gate is None or any(need.allows(value) for _, value in gate):
                    continue
                path, value = asking[0]
                written = path.rsplit(".", 1)[-1].split("[")[0]  # as the spec names it (bagging_fraction)
                found.append((path, f"{written} {_shown(value)} has no effect in {library} {_describe(need, gate)}: "
                                    f"it takes effect only {need.why}"))
                break
        order = list(settings)  # as the spec writes them: models, then the sweep
        problems += sorted(found, key=lambda problem: order.index(_setting_of(problem[0], lib)))
    return problems


def _setting_of(path: str, lib) -> str:
    return lib.shared_name(path.rsplit(".", 1)[-1].split("[")[0])


def _idle(value, idle: tuple) -> bool:
    """Whether ``value`` asks for nothing; true is not 1 here (is_unbalance: false is idle, 0 is not a bool)."""
    return any(value == other and isinstance(value, bool) == isinstance(other, bool) for other in idle)


def _gate(need, settings: dict, facts: dict) -> list[tuple[str, object]] | None:
    """Where the setting a parameter needs is given and its value(s); None: not known here."""
    if need.setting in (TASK, CATEGORICAL):
        known = facts.get(need.setting)
        return None if known is None else [(need.setting, known)]
    return settings.get(need.setting) or [("", need.absent)]


def _describe(need, gate: list[tuple[str, object]]) -> str:
    if need.setting == TASK:
        return f"on a {gate[0][1]} task"
    if need.setting == CATEGORICAL:
        return "on data without a categorical column"
    if gate == [("", need.absent)]:
        return f"with {need.setting} left at {_shown(need.absent)}"
    if len(gate) == 1:
        path, value = gate[0]
        return f"with {need.setting} {_shown(value)} ({path})"
    return f"with {need.setting} {', '.join(_shown(value) for _, value in gate)} ({gate[0][0].split('[')[0]})"


def _shown(value) -> str:
    """As the spec writes it: false, not False."""
    return str(value).lower() if isinstance(value, bool) else repr(value)
