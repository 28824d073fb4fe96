"""Segments: a small expression over subscriber fields that picks who gets an issue,
``region = 'Asia' and joined >= 2025-01-01``.

The text is parsed here into a tree and checked against the declared fields (their
names, types and choices); the store turns the tree into a clause of its database's
dialect with every value a bound parameter (store/segments.py). Nothing typed by a user
ever becomes SQL text.

    expression := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expression ")" | test
    test       := FIELD OP value | FIELD "in" "(" value ("," value)* ")"
                | FIELD "is" ["not"] "set"
    OP         := = | != | < | <= | > | >=
    value      := 'text' (a quote doubled inside) | number | YYYY-MM-DD | true | false
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from digest.errors import DigestError

MAX_LENGTH = 2000
MAX_TESTS = 50
MAX_DEPTH = 20
BUILT_IN = {"email": "text", "name": "text", "joined": "date"}  # every subscriber has these


class SegmentError(DigestError):
    """A segment that does not parse, or names a field or value that cannot be."""


@dataclass(frozen=True)
class Test:
    field: str
    kind: str  # the field's type: text, number, date, boolean, choice
    op: str  # = != < <= > >= in set unset
    values: tuple[object, ...] = ()


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Node, ...]


Node = Test | Not | All | Any_

_TOKEN = re.compile(
    r"\s*(?:(?P<date>\d{4}-\d{2}-\d{2})(?![\w.])|(?P<number>-?\d+(?:\.\d+)?)(?![\w-])"
    r"|(?P<string>'(?:[^']|'')*')|(?P<op><=|>=|!=|=|<|>)|(?P<punct>[(),])"
    r"|(?P<word>[A-Za-z_][\w.-]*))"
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    found, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            where = len(text[:at]) + len(text[at:]) - len(text[at:].lstrip())
            raise SegmentError(
                f"segment: cannot read {text[where : where + 12]!r} (character {where + 1}); "
                "values are 'text', numbers, dates like 2025-01-01, true or false"
            )
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind), match.start(kind)))
        at = match.end()
    return found


class _Parser:
    def __init__(self, text: str, fields: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.fields = fields
        self.tests = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def word(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].lower() in words:
            self.at += 1
            return True
        return False

    def punct(self, mark: str) -> bool:
        token = self.peek()
        if token and token[0] == "punct" and token[1] == mark:
            self.at += 1
            return True
        return False

    def fail(self, expected: str) -> SegmentError:
        token = self.peek()
        where = f"at {token[1]!r} (character {token[2] + 1})" if token else "at its end"
        return SegmentError(f"segment: {where}: expected {expected}")

    def expression(self, depth: int = 0) -> Node:
        if depth > MAX_DEPTH:
            raise SegmentError(f"segment: more than {MAX_DEPTH} levels of parentheses")
        items = [self.term(depth)]
        while self.word("or"):
            items.append(self.term(depth))
        return items[0] if len(items) == 1 else Any_(tuple(items))

    def term(self, depth: int) -> Node:
        items = [self.factor(depth)]
        while self.word("and"):
            items.append(self.factor(depth))
        return items[0] if len(items) == 1 else All(tuple(items))

    def factor(self, depth: int) -> Node:
        if self.word("not"):
            return Not(self.factor(depth + 1))
        if self.punct("("):
            inner = self.expression(depth + 1)
            if not self.punct(")"):
                raise self.fail("')'")
            return inner
        return self.test()

    def test(self) -> Test:
        token = self.peek()
        if token is None or token[0] != "word" or token[1].lower() in {"and", "or", "not"}:
            raise self.fail("a field name, as in region = 'Asia'")
        self.at += 1
        name = token[1]
        if name not in self.fields:
            known = ", ".join(sorted(self.fields))
            raise SegmentError(f"segment: no field {name!r} (fields: {known})")
        self.tests += 1
        if self.tests > MAX_TESTS:
            raise SegmentError(f"segment: more than {MAX_TESTS} tests")
        kind, choices = self.fields[name]
        if self.word("is"):
            negated = self.word("not")
            if not self.word("set"):
                raise self.fail("'set', as in region is set")
            return Test(name, kind, "unset" if negated else "set")
        if self.word("in"):
            if not self.punct("("):
                raise self.fail("'(' after in")
            values = [self.value(name, kind, choices)]
            while self.punct(","):
                values.append(self.value(name, kind, choices))
            if not self.punct(")"):
                raise self.fail("')' to close the list")
            return Test(name, kind, "in", tuple(values))
        token = self.peek()
        if token is None or token[0] != "op":
            raise self.fail(f"=, !=, <, <=, >, >=, in or is after {name}")
        self.at += 1
        op = token[1]
        if op not in {"=", "!="} and kind in {"boolean", "choice"}:
            raise SegmentError(f"segment: {name} is a {kind} field: compare it with = or !=")
        return Test(name, kind, op, (self.value(name, kind, choices),))

    def value(self, name: str, kind: str, choices: tuple[str, ...]) -> object:
        token = self.peek()
        if token is None:
            raise self.fail(f"a value for {name}")
        self.at += 1
        sort, text = token[0], token[1]
        if kind in {"text", "choice"} and sort == "string":
            value = text[1:-1].replace("''", "'")
            if kind == "choice" and value not in choices:
                raise SegmentError(
                    f"segment: {value!r} is not one of {name}'s choices ({', '.join(choices)})"
                )
            return value
        if kind == "number" and sort == "number":
            return float(text)
        if kind == "date" and sort in {"date", "string"}:
            raw = text.strip("'")
            try:
                return dt.date.fromisoformat(raw).isoformat()
            except ValueError:
                raise SegmentError(f"segment: {raw!r} is not a date (YYYY-MM-DD)") from None
        if kind == "boolean" and sort == "word" and text.lower() in {"true", "false"}:
            return text.lower() == "true"
        example = {"text": "'Asia'", "choice": "'Asia'", "number": "3", "date": "2025-01-01",
                   "boolean": "true"}[kind]  # fmt: skip
        raise SegmentError(f"segment: {name} is a {kind} field: write its value like {example}")


def parse_segment(text: str, fields: dict[str, tuple[str, tuple[str, ...]]]) -> Node:
    """The tree of ``text``, its fields checked against ``fields`` (name -> (type,
    choices)) and the built-in email, name and joined."""
    if not text.strip():
        raise SegmentError("segment: empty; write a test such as region = 'Asia'")
    if len(text) > MAX_LENGTH:
        raise SegmentError(f"segment: longer than {MAX_LENGTH} characters")
    known = {name: (kind, ()) for name, kind in BUILT_IN.items()} | fields
    parser = _Parser(text, known)
    tree = parser.expression()
    if parser.peek() is not None:
        raise parser.fail("'and', 'or' or the end")
    return tree


def tree_to_data(node: Node) -> object:
    """The tree as plain data (JSON), to keep with a scheduled issue."""
    if isinstance(node, Test):
        return {"field": node.field, "kind": node.kind, "op": node.op, "values": list(node.values)}
    if isinstance(node, Not):
        return {"not": tree_to_data(node.item)}
    key = "all" if isinstance(node, All) else "any"
    return {key: [tree_to_data(item) for item in node.items]}


def tree_from_data(data: object) -> Node:
    """The tree back from :func:`tree_to_data`'s data."""
    if not isinstance(data, dict):
        raise SegmentError("segment: a stored segment is not a mapping")
    if "not" in data:
        return Not(tree_from_data(data["not"]))
    if "all" in data:
        return All(tuple(tree_from_data(item) for item in data["all"]))
    if "any" in data:
        return Any_(tuple(tree_from_data(item) for item in data["any"]))
    return Test(str(data["field"]), str(data["kind"]), str(data["op"]), tuple(data["values"]))
