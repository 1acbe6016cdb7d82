"""Parameters that can have no effect given the spec's other settings: a spec error, not a silent no-op.

A library declares, per parameter, what must hold for it to take effect (:class:`gbreg.models.boosters.library.Needs`:
LightGBM's subsample needs a bagging frequency). A parameter set under ``models`` or swept, whose every
value that asks for something meets only settings (``models``, sweep, or what gbreg trains when the spec
sets none) under which the library ignores it, would train trials identical to its default's and log a
value that was not used: the grid would show an axis that does nothing. A setting whose value is not known
at validation (the task of a file whose target is not read yet) is taken to allow it.
"""

from __future__ import annotations

from gbreg.models.boosters import declaration
from gbreg.spec.params import accepts


def effect_problems(spec) -> list[tuple[str, str]]:
    """(key path, message) for each parameter a library would ignore in every trial that sets it."""
    axes = spec.sweep_values(skip_invalid=True)
    task = spec.known_task()
    problems = []
    for library, model_params in spec.libraries().items():
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
        for name, needs in lib.needs.items():
            for need in needs:
                asking = [(path, value) for path, value in settings.get(name, []) if value not in need.idle]
                if not asking:
                    break
                gate = _gate(need, settings, task)
                if gate is None or any(need.allows(value) for _, value in gate):
                    continue
                path, value = asking[0]
                written = path.rsplit(".", 1)[-1].split("[")[0]  # as the spec names it (bagging_fraction)
                problems.append((path, f"{written} {value!r} has no effect in {library} {_describe(need, gate)}: "
                                       f"it takes effect only {need.why}"))
                break
    return problems


def _gate(need, settings: dict, task: str | None) -> list[tuple[str, object]] | None:
    """Where the setting a parameter needs is given and its value(s); None: not known at validation."""
    if need.setting == "task":
        return None if task is None else [("task", task)]
    return settings.get(need.setting) or [("", need.absent)]


def _describe(need, gate: list[tuple[str, object]]) -> str:
    if need.setting == "task":
        return f"on a {gate[0][1]} task"
    if gate == [("", need.absent)]:
        return f"with {need.setting} left at {need.absent!r}"
    if len(gate) == 1:
        path, value = gate[0]
        return f"with {need.setting} {value!r} ({path})"
    return f"with {need.setting} {', '.join(repr(value) for _, value in gate)} ({gate[0][0].split('[')[0]})"
