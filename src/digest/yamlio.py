"""Reading YAML files into validated models, with errors that name file, key and line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
)

from digest.errors import DigestError

if TYPE_CHECKING:  # pydantic is imported when a model is validated: reading costs less
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


def line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest part that exists)."""
    node = data
    line: int | None = None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            # a missing key: point at the mapping that should hold it
            if line is None and isinstance(node, (CommentedMap, CommentedSeq)):
                line = node.lc.line + 1
            break
    return line


def screen(
    text: str,
    path: Path,
    error: type[DigestError],
    max_depth: int,
    max_nodes: int | None = None,
    limit_name: str = "limits.yaml_nodes",
) -> None:
    """Walk the YAML events (no objects built, no recursion) and refuse anchors, aliases,
    nesting deeper than ``max_depth`` and more than ``max_nodes`` values: a few hundred
    bytes of aliases can expand to gigabytes, deep nesting exhausts the parser's stack,
    and a hundred thousand small keys take seconds and hundreds of MB to build."""
    depth = 0
    nodes = 0
    for event in YAML(typ="rt").parse(text):
        if max_nodes is not None and isinstance(event, NodeEvent):
            nodes += 1
            if nodes > max_nodes:
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise error(
                    f"{path}:{line}: more than {max_nodes:,} keys and values ({limit_name})"
                )
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, AliasEvent) or (
            isinstance(event, NodeEvent) and getattr(event, "anchor", None)
        ):
            hint = quoting_hint(text, [event.start_mark])
            raise error(
                f"{path}:{line}: YAML anchors and aliases (&, *) are not allowed here{hint}"
            )
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > max_depth:
                raise error(
                    f"{path}:{line}: nested more than {max_depth} levels deep (limits.yaml_depth)"
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def read_yaml(
    path: Path,
    error: type[DigestError],
    *,
    missing: str = "file not found",
    max_bytes: int | None = None,
    max_depth: int | None = None,
    max_nodes: int | None = None,
    limits_name: str = "limits",
) -> Any:
    """Parse ``path`` with comments and line numbers kept; raise ``error`` on any problem.
    With ``max_bytes``/``max_depth``, a file over those is refused before it is built,
    and so are anchors and aliases."""
    if not path.is_file():
        raise error(f"{path}: {missing}")
    try:
        size = path.stat().st_size
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror})") from None
    if max_bytes is not None and size > max_bytes:
        raise error(f"{path}: {size:,} bytes, over the {max_bytes:,}-byte limit ({limits_name})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror})") from None
    try:
        if max_depth is not None:
            screen(text, path, error, max_depth, max_nodes)
        return YAML(typ="rt").load(text)
    except RecursionError:
        raise error(f"{path}: nested too deeply to read") from None
    except ValueError as err:  # a date YAML recognises but the calendar has not (2024-02-30)
        raise error(f"{path}: a date that is not on the calendar ({err})") from None
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        hint = quoting_hint(text, [getattr(err, "context_mark", None), mark])
        raise error(f"{path}{where}: {problem}{hint}") from None


_SPECIAL_START = re.compile(r"^\s*(?:-\s+)?([\w.-]+):\s+([\[{*&!|>@`%])")


def quoting_hint(text: str, marks: list[Any]) -> str:
    """When a line near the error gives a key a value that starts with a character YAML
    reads as syntax ([Weekly] …, *New*, @name), say to put the value in quotes."""
    lines = text.splitlines()
    for mark in marks:
        if mark is None:
            continue
        for number in (mark.line, mark.line - 1):
            if 0 <= number < len(lines):
                found = _SPECIAL_START.match(lines[number])
                if found:
                    key, char = found.groups()
                    return (
                        f" (line {number + 1}: a value starting with {char} must be quoted, "
                        f'e.g. {key}: "{char}…")'
                    )
    return ""


def plain(value: Any) -> Any:
    """ruamel's commented containers -> plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def validate(model: type[M], data: Any, path: Path, error: type[DigestError]) -> M:
    """``model`` from ``data``; the first problem is reported as ``path:LINE: key: reason``."""
    from pydantic import ValidationError

    try:
        return model.model_validate(plain(data))
    except ValidationError as err:
        # An unknown key is reported first: it often explains a "missing" one (a typo).
        first = min(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
        loc = tuple(first["loc"])
        key = ".".join(str(p) for p in loc) or "(top)"
        line = line_of(data, loc)
        where = f":{line}" if line else ""
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "required key is missing"
        raise error(f"{path}{where}: {key}: {message}") from None
