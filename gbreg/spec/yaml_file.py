"""A spec file's YAML: loaded safely, every duplicate key found (with both lines), ``--set`` overrides.

Plain data only: ``yaml.SafeLoader`` never constructs Python objects. A key given twice is an error, not
"the last one wins" as YAML would silently have it. Numbers are read as YAML 1.2's core schema reads them,
not as YAML 1.1 (PyYAML's default) does: ``1e3`` is a float (1.1: text), ``010`` is 10 (1.1: octal 8),
``1:5`` is text (1.1: base 60, 65), ``0b101`` and ``1_000`` are text, ``0o10`` is 8 and ``0x10`` is 16.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from gbreg.errors import SpecError


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader (plain data only) that also notes every key repeated within one mapping,
    which YAML would otherwise resolve silently by keeping the last value."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[tuple[Any, int, int]] = []  # (key, first line, repeated line)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_nodes: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden on purpose
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = first_nodes.setdefault(key, key_node)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first is not key_node:
                    self.duplicates.append((key, first.start_mark.line + 1, key_node.start_mark.line + 1))
        return super().construct_mapping(node, deep=deep)


# Numbers as YAML 1.2's core schema (and JSON) reads them, not as YAML 1.1, which PyYAML implements:
# - 1.1 reads a float only with a dot and a signed exponent (1.0e+3), so `reg_alpha: [0, 1e3]` or
#   `learning_rate: 1e-3` would reach validation as the text '1e3' and be rejected as "not a number";
# - 1.1 reads `010` as octal 8, `1:5` (a typo for 1.5) as base 60, 65, `0b101` as binary and `1_000` as
#   1000: a number the user never wrote, trained and logged silently. In 1.2 `010` is 10, `0o10` is 8,
#   `0x10` is 16, and `1:5`, `0b101`, `1_000` are text, which validation then refuses where a number is due.
# The resolvers and the int constructor are this loader's alone (add_implicit_resolver / add_constructor
# copy the inherited tables), not yaml.SafeLoader's for every other user of PyYAML in the process. Text
# that merely resembles a number ('e3', '1e', '1.2.3') does not match and stays text.
YAML_12_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
YAML_12_FLOAT = re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?
                               |[-+]?[0-9]+[eE][-+]?[0-9]+
                               |[-+]?\.(?:inf|Inf|INF)
                               |\.(?:nan|NaN|NAN))$""", re.X)


def _yaml_12_resolvers(inherited: dict) -> dict:
    """PyYAML's implicit resolvers with its YAML 1.1 int and float forms replaced by YAML 1.2's (the int
    first: a resolver list is tried in order, and '10' must not become a float)."""
    numbers = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
    resolvers = {first: [(tag, regexp) for tag, regexp in pairs if tag not in numbers]
                 for first, pairs in inherited.items()}
    for tag, regexp, firsts in (("tag:yaml.org,2002:int", YAML_12_INT, "-+0123456789"),
                                ("tag:yaml.org,2002:float", YAML_12_FLOAT, "-+.0123456789")):
        for first in firsts:
            resolvers.setdefault(first, []).append((tag, regexp))
    return {first: pairs for first, pairs in resolvers.items() if pairs}


def _construct_yaml_12_int(loader: yaml.SafeLoader, node) -> int:
    """An int as YAML 1.2 reads it: decimal (a leading zero too), 0o octal, 0x hexadecimal (also for an
    explicit ``!!int``, which 1.1 would read in base 8, 2 or 60)."""
    text = loader.construct_scalar(node)
    if not YAML_12_INT.fullmatch(text):
        raise yaml.constructor.ConstructorError(None, None, f"expected an integer (YAML 1.2: 10, 0o12 or 0xA), "
                                                f"got {text!r}", node.start_mark)
    return int(text, 0) if text.startswith(("0o", "0x")) else int(text, 10)  # base 10: 010 is 10


UniqueKeyLoader.yaml_implicit_resolvers = _yaml_12_resolvers(yaml.SafeLoader.yaml_implicit_resolvers)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_yaml_12_int)


def load_yaml(text: str) -> tuple[Any, list[tuple[Any, int, int]]]:
    """The data (as ``yaml.safe_load`` gives it) and every repeated key, with both line numbers."""
    loader = UniqueKeyLoader(text)
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


def _duplicate_problems(duplicates: list[tuple[Any, int, int]], where: str = "") -> list[tuple[str, str]]:
    return [(where, f"line {line}: duplicate key {key!r} (first at line {first}); YAML would silently keep "
                    "only the last value: remove one or merge them")
            for key, first, line in sorted(duplicates, key=lambda duplicate: duplicate[2])]


def parse_yaml(text: str, source: str) -> dict:
    try:
        raw, duplicates = load_yaml(text)  # never constructs Python objects
    except yaml.constructor.ConstructorError as exc:
        if "constructor for the tag" not in (exc.problem or ""):
            raise SpecError(source, [("", f"malformed YAML: {_where(exc)}{exc.problem}")]) from exc
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        tag = re.search(r"tag '([^']*)'", str(exc))
        raise SpecError(source, [("", f"{where}the YAML tag {tag.group(1) if tag else ''!r} is not allowed: a spec "
                                  "is plain data (mappings, lists, numbers, text); remove the '!!' tag")]) from exc
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, [("", f"malformed YAML: {_where(exc)}{problem}{_tab_hint(exc, text)}")]) from exc
    if duplicates:
        raise SpecError(source, _duplicate_problems(duplicates))
    if raw is None:
        raise SpecError(source, [("", "the spec is empty; expected a mapping with name, data, models, sweep")])
    if not isinstance(raw, dict):
        raise SpecError(source, [("", f"expected a mapping at the top level, got {type(raw).__name__}")])
    return raw


def read_yaml_file(path, overrides: list[str] | None, what: str, root: type | None = None) -> dict:
    """A spec or suite file read, parsed safely and with ``key.path=YAML`` overrides applied; ``what``
    names it in the errors ("spec", "suite"); ``root``: the pydantic model of the file's keys (a study's
    :class:`~gbreg.spec.schema.Spec`), for an override naming a key it lacks.
    Raises :class:`SpecError`."""
    source = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise SpecError(source, [("", f"no such {what} file")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(source, [("", f"cannot read the {what} file: {exc}")]) from exc
    raw = parse_yaml(text, source)
    _refuse_the_other_kind(raw, what, source)
    for override in overrides or []:
        apply_override(raw, override, source, root)
    return raw


# Keys only a study spec has at its top, and only a suite has: a file with some of one kind's and none of the
# other's was given to the wrong command (its unknown keys alone would say "did you mean 'datasets'?").
KINDS = {"spec": ("a study spec", ("data", "models", "sweep"), "`gbreg run` or `gbreg validate`"),
         "suite": ("a suite", ("study", "datasets"), "`gbreg suite run` or `gbreg suite validate`")}


def _refuse_the_other_kind(raw: dict, what: str, source: str) -> None:
    if what not in KINDS or any(key in raw for key in KINDS[what][1]):
        return
    for other, (name, keys, commands) in KINDS.items():
        found = [key for key in keys if key in raw]
        if other != what and found:
            raise SpecError(source, [("", f"this is {name} (it has {', '.join(found)}), not {KINDS[what][0]}: use "
                                          f"{commands} on it")])


def _tab_hint(exc: yaml.YAMLError, text: str) -> str:
    """YAML refuses a tab in indentation, in words ("found character '\\t' that cannot start any token") that
    do not say so: when the line it stopped at is indented with a tab, say what to do."""
    mark = getattr(exc, "problem_mark", None)
    lines = text.splitlines()
    if mark is None or mark.line >= len(lines):
        return ""
    line = lines[mark.line]
    indent = line[:len(line) - len(line.lstrip())]
    return "; indent with spaces: YAML does not allow tabs in indentation" if "\t" in indent else ""


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""


def apply_override(raw: dict, override: str, source: str, root: type | None = None) -> None:
    """``sweep.reg_alpha=[0, 1, 10]``: a dotted key path and a YAML value; a list item by its index, written
    as the error messages write it (``datasets[2].name``) or dotted (``datasets.2.name``). Errors name the
    path as the messages do (``expect[9]``), and an index outside the list names the valid ones; an index
    into a key the file does not set is an unknown key of ``root`` (a pydantic model), or a list to set whole."""
    key, sep, value_text = override.partition("=")
    if not sep or not key.strip():
        raise SpecError(source, [("--set", f"expected KEY.PATH=VALUE, got {override!r}")])
    try:
        value, duplicates = load_yaml(value_text)
    except yaml.YAMLError as exc:
        raise SpecError(source, [(f"--set {key}", f"value is not valid YAML: {value_text!r}")]) from exc
    if duplicates:
        raise SpecError(source, _duplicate_problems(duplicates, f"--set {key}"))
    parts = _key_parts(key.strip(), source)
    node: Any = raw
    here = ""  # the path walked so far, as the error messages write it
    loc: tuple = ()  # the same path as pydantic's loc, for the keys valid there
    for depth, (part, bracketed) in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            index = _list_index(part, node, here, source)
            here, loc = f"{here}[{index}]", (*loc, index)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict) and not bracketed:
            here, loc = (f"{here}.{part}" if here else part), (*loc, part)
            if last:
                node[part] = value
            elif part not in node and parts[depth + 1][1]:
                raise SpecError(source, [_absent_list_problem(parts[depth + 1][0], here, loc, root)])
            else:
                node = node.setdefault(part, {})
        else:
            what = "a mapping, not a list" if isinstance(node, dict) else "not a mapping or list"
            where = f"{here}[{part}]" if bracketed else f"{here}.{part}"
            hint = f"; name one of its keys: {here}.KEY" if isinstance(node, dict) else ""
            raise SpecError(source, [(f"--set {where}", f"{here} is {what}{hint}")])


def _absent_list_problem(index: str, here: str, loc: tuple, root: type | None) -> tuple[str, str]:
    """``--set datasets[0].name=x`` on a file without ``datasets``: a key on the way that ``root`` does not
    have is unknown (with the closest valid one); one it has but the file does not set has no item to set."""
    from gbreg.spec.messages import fields_at, format_path, unknown_key_message

    for depth, step in enumerate(loc if root is not None else ()):
        valid = fields_at(loc[:depth], root)
        if valid and step not in valid:
            return f"--set {format_path(loc[:depth + 1])}", unknown_key_message(step, valid)
    return (f"--set {here}[{index}]",
            f"{here} is not set in the file, so it has no item {index} to set; set the whole list ({here}=[...])")


def _key_parts(key: str, source: str) -> list[tuple[str, bool]]:
    """The steps of a --set key: ``datasets[2].name`` -> [("datasets", False), ("2", True), ("name", False)]
    (True: written as a list index)."""
    parts: list[tuple[str, bool]] = []
    for piece in key.split("."):
        match = re.fullmatch(r"([^\[\]]*)((?:\[[^\[\]]*\])*)", piece)
        if match is None or not (match.group(1) or match.group(2)):
            raise SpecError(source, [(f"--set {key}", "expected a key path such as sweep.reg_alpha or "
                                                      "expect[0].where (a list item by its index)")])
        if match.group(1):
            parts.append((match.group(1), False))
        parts += [(index.strip(), True) for index in re.findall(r"\[([^\[\]]*)\]", match.group(2))]
    return parts


def _list_index(part: str, node: list, here: str, source: str) -> int:
    if part.isdigit() and part.isascii() and int(part) < len(node):
        return int(part)
    if not node:
        message = f"{here} is an empty list: it has no item {part} to set; set the whole list ({here}=[...])"
    else:
        n = len(node)
        valid = "index 0" if n == 1 else "indexes 0 or 1" if n == 2 else f"indexes 0 to {n - 1}"
        shown = part if re.fullmatch(r"-?[0-9]+", part) else repr(part)
        message = (f"expected a list index below {n} ({here} has {n} item{'s' if n > 1 else ''}: {valid}), "
                   f"got {shown}")
        if re.fullmatch(r"-[0-9]+", part) and 0 <= len(node) + int(part) < len(node):
            message += f"; counting from the end is not supported: {here}[{part}] is {here}[{len(node) + int(part)}]"
    raise SpecError(source, [(f"--set {here}[{part}]", message)])
