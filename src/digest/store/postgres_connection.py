"""A pool of PostgreSQL connections that runs the SQLite store's statements: placeholders,
``INSERT OR IGNORE``, JSON lists of values and the few functions that differ are
translated once per statement (cached), rows come back as the store expects them, and
a connection the server dropped is replaced."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

# --- translating the SQLite store's statements ----------------------------------------

_VALUES = re.compile(r"VALUES (\((?:%s|'[a-z]*'|, )+\))")  # an INSERT's one row of values
MAX_PARAMETERS = 30_000  # per statement (PostgreSQL takes up to 65,535)
_INDEXED_BY = re.compile(r" INDEXED BY \w+")
_MINUTE = re.compile(r"strftime\('%Y-%m-%dT%H:%M', (\w+), 'unixepoch'\)")


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> tuple[str | None, tuple[int, ...]]:
    """The PostgreSQL form of one SQLite statement (None: nothing to run, a PRAGMA), and
    which of its parameters are JSON lists to pass as arrays."""
    text = sql.strip()
    if text.upper().startswith("PRAGMA"):
        return None, ()
    if text.upper() == "BEGIN IMMEDIATE":
        return "BEGIN", ()
    if text.startswith("INSERT OR IGNORE INTO"):
        text = "INSERT INTO" + text[len("INSERT OR IGNORE INTO") :] + " ON CONFLICT DO NOTHING"
    if text.startswith("INSERT INTO batches"):
        text += " RETURNING id"
    text = text.replace(
        "SUM(subscriber_id IS NULL)", "COUNT(*) FILTER (WHERE subscriber_id IS NULL)"
    )
    text = _INDEXED_BY.sub("", text)  # SQLite's planner hint; PostgreSQL's has statistics
    text = _MINUTE.sub(
        lambda m: (
            f"to_char(to_timestamp({m.group(1)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI')"
        ),
        text,
    )
    text = text.replace("%", "%%")
    lists: list[int] = []
    out: list[str] = []
    position = 0
    for index, match in enumerate(
        re.finditer(r"IN \(SELECT value FROM json_each\(\?\)\)|\?", text)
    ):
        out.append(text[position : match.start()])
        if match.group(0) == "?":
            out.append("%s")
        else:
            out.append("= ANY(%s)")
            lists.append(index)
        position = match.end()
    out.append(text[position:])
    return "".join(out), tuple(lists)


class Row(tuple):  # type: ignore[type-arg]
    """A row readable by position or by column name, like sqlite3.Row."""

    names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


def _row_factory(cursor: Any) -> Any:
    description = cursor.description
    if description is None:
        return None
    names = {column.name: i for i, column in enumerate(description)}
    kind = type("Row", (Row,), {"names": names})
    return lambda values: kind(values)


# The pool says on its logger when it throws a connection away or cannot make one; the
# store reports what matters itself, so these go only where an application sends logs.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())


class _Cursor:
    """A statement's outcome, read in full before its connection goes back to the pool."""

    def __init__(self, cursor: Any, returning: bool = False) -> None:
        self.rowcount = cursor.rowcount
        self._rows = list(cursor.fetchall()) if cursor.description else []
        self.lastrowid = self._rows[0][0] if returning else None

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class _Nothing(_Cursor):
    def __init__(self) -> None:
        self.rowcount = -1
        self.lastrowid = None
        self._rows = []


class Connection:
    """The SQLite store's statements on a pool of PostgreSQL connections (psycopg_pool).

    A transaction (``BEGIN`` … ``COMMIT`` or ``ROLLBACK``) keeps one connection for the
    thread that began it; any other statement borrows one for itself. A connection the
    server dropped (a restart, a failover, an idle timeout) is thrown away and replaced,
    so a long-running ``digest serve`` or ``deliver --watch`` carries on: a transaction
    whose ``BEGIN`` meets a dropped connection, and a read that does, are tried once more
    on a fresh one; anything caught half-way fails with the store's one-line error."""

    def __init__(
        self,
        url: str,
        *,
        search_path: str | None = None,
        size: int = 4,
        wait: float = 30.0,
        probe: bool = True,
        checked: bool = False,
    ) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        if probe:
            # one connection first, here: a refusal (wrong password, no such database) is
            # reported as the server gave it, where the pool would only time out
            psycopg.connect(url, connect_timeout=10).close()

        def configure(connection: Any) -> None:
            connection.row_factory = _row_factory
            if search_path:
                connection.execute(f"SET search_path TO {search_path}")

        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=size,
            kwargs={"autocommit": True, "connect_timeout": 10},
            configure=configure,
            timeout=wait,
            # checked: each connection is tried (one empty query) before it is lent, for
            # statements that could not safely be sent twice
            check=ConnectionPool.check_connection if checked else None,
            name=f"digest-{search_path or 'main'}",
            open=True,
        )
        self._held = threading.local()

    @property
    def raw(self) -> Any:
        """The psycopg connection of the transaction this thread is in."""
        held = getattr(self._held, "connection", None)
        if held is None:
            raise RuntimeError("not in a transaction")
        return held

    @staticmethod
    def _params(params: Sequence[Any], lists: tuple[int, ...]) -> list[Any]:
        values = list(params)
        for index in lists:
            values[index] = json.loads(values[index])
        return values

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        statement, lists = translate(sql)
        if statement is None:
            return _Nothing()
        values = self._params(params, lists)
        held = getattr(self._held, "connection", None)
        if held is None and statement == "BEGIN":
            return self._begin()
        if held is not None:
            try:
                return self._run(held, statement, values)
            finally:
                if statement in ("COMMIT", "ROLLBACK"):
                    self._release()
        return self._lone(statement, values)

    @staticmethod
    def _run(connection: Any, statement: str, values: list[Any]) -> _Cursor:
        import psycopg

        try:
            cursor = connection.execute(statement, values)
        except psycopg.errors.IntegrityError as err:  # what the shared code catches
            raise sqlite3.IntegrityError(str(err)) from err
        return _Cursor(cursor, returning=statement.endswith("RETURNING id"))

    def _begin(self) -> _Cursor:
        """Keep a connection for this thread's transaction; one the server had dropped
        is replaced once (nothing was done on it yet)."""
        import psycopg

        for attempt in (1, 2):
            connection = self.pool.getconn()
            try:
                connection.execute("BEGIN")
            except psycopg.OperationalError:
                self.pool.putconn(connection)
                if attempt == 2 or not connection.broken:
                    raise
                self.pool.check()  # its idle fellows were likely dropped with it
                continue
            self._held.connection = connection
            break
        return _Nothing()

    def _release(self) -> None:
        connection, self._held.connection = self._held.connection, None
        self.pool.putconn(connection)

    def _lone(self, statement: str, values: list[Any]) -> _Cursor:
        """A statement outside a transaction, on a connection of its own; a read that met
        a dropped connection is read again on a fresh one."""
        import psycopg

        reading = statement.startswith("SELECT")
        for attempt in (1, 2):
            with self.pool.connection() as connection:
                try:
                    return self._run(connection, statement, values)
                except psycopg.OperationalError:
                    if attempt == 2 or not reading or not connection.broken:
                        raise
            self.pool.check()  # its idle fellows were likely dropped with it
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        held = getattr(self._held, "connection", None)
        if held is not None:
            yield held
            return
        with self.pool.connection() as connection:
            yield connection

    def executemany(self, sql: str, rows: Any) -> _Cursor:
        statement, lists = translate(sql)
        if statement is None:
            return _Nothing()
        with self._connection() as connection:
            return self._many(connection.cursor(), statement, lists, rows)

    def _many(self, cursor: Any, statement: str, lists: tuple[int, ...], rows: Any) -> _Cursor:
        values = _VALUES.search(statement)
        if values is None or lists:
            cursor.executemany(statement, (self._params(r, lists) for r in rows))
            return _Counted(cursor.rowcount)
        head, one, tail = statement[: values.start()], values.group(1), statement[values.end() :]
        if not tail.strip():  # a plain INSERT: COPY, the way PostgreSQL takes rows in bulk
            self._copy_rows(cursor, head, one, rows)
            return _Counted(cursor.rowcount)
        # an INSERT … ON CONFLICT: many rows to a statement (one round trip a chunk)
        width = one.count("%s")
        per_statement = max(1, MAX_PARAMETERS // max(width, 1))
        chunk: list[Any] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == per_statement:
                self._insert_rows(cursor, head, one, tail, chunk)
                chunk = []
        if chunk:
            self._insert_rows(cursor, head, one, tail, chunk)
        return _Counted(cursor.rowcount)

    @staticmethod
    def _copy_rows(cursor: Any, head: str, one: str, rows: Any) -> None:
        """``INSERT INTO t (a, b, c) VALUES (%s, 'x', %s)`` rows as one COPY: the
        literals of the statement are written into each row."""
        target = head.strip().removeprefix("INSERT INTO").strip()
        items = [item.strip() for item in one.strip("()").split(",")]
        literals = {i: item.strip("'") for i, item in enumerate(items) if item != "%s"}
        with cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for row in rows:
                given = iter(row)
                copy.write_row(
                    [literals[i] if i in literals else next(given) for i in range(len(items))]
                )

    @staticmethod
    def _insert_rows(cursor: Any, head: str, one: str, tail: str, rows: list[Any]) -> None:
        sql = f"{head}VALUES {', '.join([one] * len(rows))}{tail}"
        cursor.execute(sql, [value for row in rows for value in row])

    def close(self) -> None:
        self.pool.close()


class _Counted(_Nothing):
    def __init__(self, rowcount: int) -> None:
        super().__init__()
        self.rowcount = rowcount
