"""What a spec mistake reads like: key paths, did-you-mean suggestions, and pydantic's errors in words a
first-time user can act on. Shared by the spec, its hypotheses and the command line."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError


def format_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def fields_at(loc: tuple, root: type[BaseModel]) -> list[str]:
    """The valid keys of the model found by walking ``loc`` from ``root`` (for did-you-mean)."""
    annotation: Any = root
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def counted(count: int, noun: str) -> str:
    """``1 trial``, ``18 trials``, ``1,200 trials``: a count and its noun, singular for one."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def unknown_key_message(key: str, valid: list[str] | tuple[str, ...] | frozenset[str], what: str = "key",
                        list_all: bool = False) -> str:
    """"unknown key 'x'; did you mean 'y'?", else the valid keys (sorted). ``list_all``: a short vocabulary
    (the comparisons eq, ne, gt, ...) is listed in its own order even beside a did-you-mean."""
    close = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
    expected = f"expected one of {', '.join(valid if list_all else sorted(valid))}"
    if close:
        hint = f"; did you mean {close[0]!r}?" + (f" ({expected})" if list_all else "")
    else:
        hint = f"; {expected}"
    return f"unknown {what} {key!r}{hint}"


# pydantic error type -> what a first-time user should read (``{ctx}`` fields filled from the error)
TYPE_MESSAGES = {
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number", "float_type": "must be a number",
    "float_parsing": "must be a number", "bool_type": "must be true or false",
    "bool_parsing": "must be true or false", "string_type": "must be text (a string)",
    "dict_type": "must be a mapping (indented key: value lines)",
    "model_type": "must be a mapping (indented key: value lines)", "model_attributes_type":
    "must be a mapping (indented key: value lines)", "list_type": "must be a list, e.g. [a, b]",
    "tuple_type": "must be a list, e.g. [a, b]", "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)", "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "greater_than": "must be greater than {gt}", "greater_than_equal": "must be ≥ {ge}",
    "less_than": "must be less than {lt}", "less_than_equal": "must be ≤ {le}",
    "finite_number": "must be a finite number",
}
UNION_MEMBERS = {"int", "float", "bool", "str"}  # how pydantic labels the members of ``Scalar``


def pydantic_problems(exc: ValidationError, root: type[BaseModel]) -> list[tuple[str, str]]:
    """One ``(key path, message)`` per mistake in ``root`` (a pydantic model); a value no member of a scalar
    union accepts is one mistake."""
    problems = []
    seen_unions: set[tuple] = set()
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        if len(loc) > 1 and loc[-1] in UNION_MEMBERS:
            if loc[:-1] in seen_unions:
                continue
            seen_unions.add(loc[:-1])
            problems.append((format_path(loc[:-1]), f"must be a single number, true/false or text, "
                             f"got {error['input']!r}"))
            continue
        if kind == "extra_forbidden":
            message = unknown_key_message(str(loc[-1]), fields_at(loc[:-1], root))
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "literal_error":
            message = f"must be one of {error['ctx']['expected']}, got {error['input']!r}"
        elif kind in ("int_type", "int_from_float") and _whole_float(error["input"]):
            message = f"write it as an integer: {int(error['input'])} (got {error['input']!r}, a float)"
        elif kind in TYPE_MESSAGES:
            message = f"{TYPE_MESSAGES[kind].format(**error.get('ctx', {}))}, got {error['input']!r}"
        else:
            text = error["msg"].replace("Input should be", "must be", 1)
            message = f"{text[0].lower()}{text[1:]}, got {error['input']!r}"
        problems.append((format_path(loc), message))
    return _drop_missing_explained_by_typo(problems)


def _whole_float(value: Any) -> bool:
    """1e3 or 1000.0 where an integer is expected: a whole number, but a float (strict fields refuse it)."""
    return isinstance(value, float) and value.is_integer()


def _drop_missing_explained_by_typo(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``lg:`` for ``log:`` is one mistake: keep "unknown key 'lg'; did you mean 'log'?", drop "log missing"."""
    suggested = set()
    for path, message in problems:
        match = re.search(r"did you mean '([^']+)'\?$", message)
        if match:
            parent = path.rpartition(".")[0]
            suggested.add(f"{parent}.{match.group(1)}" if parent else match.group(1))
    return [(path, message) for path, message in problems
            if not (message == "required key is missing" and path in suggested)]
