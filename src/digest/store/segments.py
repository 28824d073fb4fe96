"""A segment (digest/segments.py's tree) as a clause of the store's database: built with
SQLAlchemy, which writes each dialect's JSON access (SQLite's json_extract, PostgreSQL's
->>), and compiled with every value a bound parameter. The clause reads the subscriber
row as ``s``, as the statements that pick recipients name it."""

from __future__ import annotations

import functools
from typing import Any

from digest.segments import All, Any_, Node, Not, Test

# SQLAlchemy loads only for an issue with a segment: delivery of the others, and the
# commands that start quickly, never import it.


@functools.cache
def _row() -> Any:
    import sqlalchemy as sa

    return sa.table(
        "s",
        sa.column("attributes", sa.JSON),
        sa.column("email", sa.Text),
        sa.column("name", sa.Text),
        sa.column("created_at", sa.Text),
    )


@functools.cache
def _dialect(name: str) -> Any:
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.dialects.postgresql import psycopg2

    if name == "sqlite":
        return sqlite.dialect(paramstyle="named")
    # psycopg2's flavour writes no "::type" after a parameter, which ":name" would swallow
    return psycopg2.dialect(paramstyle="named")  # type: ignore[no-untyped-call]


def _value(test: Test) -> Any:
    """The expression a test compares: a built-in column, or the attribute as its type."""
    import sqlalchemy as sa

    row = _row()
    if test.field in {"email", "name"}:
        return row.c[test.field]
    if test.field == "joined":
        return sa.func.substr(sa.cast(row.c.created_at, sa.Text), 1, 10)  # YYYY-MM-DD
    element = row.c.attributes[test.field]
    if test.kind == "number":
        return element.as_float()
    if test.kind == "boolean":
        return element.as_boolean()
    return element.as_string()


def _clause(node: Node) -> Any:
    import sqlalchemy as sa

    if isinstance(node, All):
        return sa.and_(*(_clause(item) for item in node.items))
    if isinstance(node, Any_):
        return sa.or_(*(_clause(item) for item in node.items))
    if isinstance(node, Not):
        # a subscriber without the field is in "not (region = 'Asia')": NULL is not Asia
        return sa.not_(sa.func.coalesce(_clause(node.item), sa.false()))
    value = _value(node)
    if node.op == "set":
        return value.is_not(None)
    if node.op == "unset":
        return value.is_(None)
    if node.op == "in":
        return value.in_(list(node.values))
    operators = {"=": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__",
                 ">=": "__ge__"}  # fmt: skip
    return getattr(value, operators[node.op])(node.values[0])


def segment_sql(node: Node, dialect: str) -> tuple[str, dict[str, Any]]:
    """``node`` as SQL for ``dialect`` (sqlite or postgresql) over the row ``s``, and its
    parameters, each named ``seg_…`` so as never to meet a statement's own."""
    chosen = _dialect(dialect)
    compiled = _clause(node).compile(dialect=chosen, compile_kwargs={"render_postcompile": True})
    text, params = str(compiled), dict(compiled.params)
    for name, value in params.items():  # as SQLAlchemy would bind them (a JSON path, say)
        bound = compiled.binds.get(name)
        process = None if bound is None else bound.type.dialect_impl(chosen).bind_processor(chosen)
        params[name] = process(value) if process else value
    for name in sorted(params, key=len, reverse=True):
        text = text.replace(f":{name}", f":seg_{name}")
    return text, {f"seg_{name}": value for name, value in params.items()}


def recipients_clause(stored: str | None, postgres: bool) -> tuple[str, dict[str, Any]]:
    """`` AND (…)`` for a scheduled issue's stored segment (JSON with its tree), and its
    parameters; nothing for an issue to everyone on its newsletter."""
    if not stored:
        return "", {}
    import json

    data = json.loads(stored)
    dialect = "postgresql" if postgres else "sqlite"
    made = data.get("sql", {}).get(dialect)
    if made is not None:  # compiled when scheduled: delivery never loads SQLAlchemy
        text, params = made
    else:
        from digest.segments import tree_from_data

        text, params = segment_sql(tree_from_data(data["tree"]), dialect)
    return f" AND ({text})", params


def segment_json(text: str, tree: Node) -> str:
    """What an issue keeps of its segment: the expression as written, its tree, and the
    clause SQLAlchemy made of the tree for each database (with its bound values), so
    that forming batches never loads SQLAlchemy. The clause is only ever our own
    compilation of the parsed tree: nothing a user typed is in its SQL text."""
    import json

    from digest.segments import tree_to_data

    sql = {dialect: segment_sql(tree, dialect) for dialect in ("sqlite", "postgresql")}
    return json.dumps({"text": text, "tree": tree_to_data(tree), "sql": sql}, ensure_ascii=False)
