"""A pool of PostgreSQL connections that runs the store's statements: each statement,
written once with named parameters, is compiled for psycopg by SQLAlchemy (once, then
cached); rows come back as the store expects them (times and JSON as the text the
SQLite store keeps); a connection the server dropped is replaced."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from digest.store.dialects import POSTGRES


@functools.lru_cache(maxsize=1024)
def compiled(sql: str) -> str:
    """The statement in psycopg's parameter style (``:email`` becomes ``%(email)s``, a
    literal ``%`` is doubled), as SQLAlchemy's PostgreSQL dialect writes it."""
    from sqlalchemy import text
    from sqlalchemy.dialects.postgresql.psycopg import dialect

    return str(text(sql).compile(dialect=_dialect(dialect)))


@functools.cache
def _dialect(kind: Any) -> Any:
    return kind()


def _stamp_loader(base: Any) -> Any:
    """timestamptz values as the store writes times everywhere (ISO 8601, UTC, ms)."""

    class StampLoader(base):  # type: ignore[misc]
        def load(self, data: Any) -> str:
            moment: dt.datetime = super().load(data)
            return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")

    return StampLoader


def _json_loader(base: Any) -> Any:
    """jsonb values as the JSON text the store writes (keys sorted, not escaped)."""

    class JsonText(base):  # type: ignore[misc]
        def load(self, data: Any) -> str:
            return json.dumps(json.loads(bytes(data)), sort_keys=True, ensure_ascii=False)

    return JsonText


def configure_types(connection: Any) -> None:
    """Read native PostgreSQL values as the store's shared code expects them."""
    from psycopg.types.datetime import TimestamptzLoader
    from psycopg.types.string import TextLoader

    connection.adapters.register_loader("timestamptz", _stamp_loader(TimestamptzLoader))
    connection.adapters.register_loader("jsonb", _json_loader(TextLoader))


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

    lastrowid = None  # PostgreSQL says RETURNING id instead

    def __init__(self, cursor: Any) -> None:
        self.rowcount = cursor.rowcount
        self._rows = list(cursor.fetchall()) if cursor.description else []

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class _Nothing(_Cursor):
    def __init__(self) -> None:
        self.rowcount = -1
        self._rows = []


class Connection:
    """The store's statements on a pool of PostgreSQL connections (psycopg_pool).

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
            configure_types(connection)
            connection.execute("SET TIME ZONE 'UTC'")
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

    dialect = POSTGRES

    @property
    def raw(self) -> Any:
        """The psycopg connection of the transaction this thread is in."""
        held = getattr(self._held, "connection", None)
        if held is None:
            raise RuntimeError("not in a transaction")
        return held

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> _Cursor:
        statement = compiled(sql)
        values = dict(params or {})
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
    def _run(connection: Any, statement: str, values: Mapping[str, Any]) -> _Cursor:
        import psycopg

        try:
            cursor = connection.execute(statement, values)
        except psycopg.errors.IntegrityError as err:  # what the shared code catches
            raise sqlite3.IntegrityError(str(err)) from err
        return _Cursor(cursor)

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

    def _lone(self, statement: str, values: Mapping[str, Any]) -> _Cursor:
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
        """One statement for many rows of named parameters (psycopg sends them in one
        pipeline, not a round trip each)."""
        with self._connection() as connection:
            cursor = connection.cursor()
            cursor.executemany(compiled(sql), rows)
            return _Counted(cursor.rowcount)

    def copy_rows(self, table: str, columns: Sequence[str], rows: Any) -> int:
        """Rows (tuples in the order of ``columns``) into ``table`` by COPY, PostgreSQL's
        way of taking rows in bulk."""
        with self._connection() as connection:
            cursor = connection.cursor()
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return int(cursor.rowcount)

    def close(self) -> None:
        self.pool.close()


class _Counted(_Nothing):
    def __init__(self, rowcount: int) -> None:
        super().__init__()
        self.rowcount = rowcount
