"""Where SQLite and PostgreSQL differ, in one place.

The store's statements are written once, with named parameters (``:email``), in the
SQL both databases speak. SQLite runs them as they are; for PostgreSQL, SQLAlchemy
compiles each one once into psycopg's parameter style (store/postgres_connection.py).
The few things the two databases say differently are the pieces below, which a
statement takes from its connection's ``dialect`` where it needs one:

===================  ==========================================  ==========================
                     SQLite                                      PostgreSQL
===================  ==========================================  ==========================
a list of values     ``IN (SELECT value FROM json_each(:ids))``  ``= ANY(:ids)``
                     (one JSON text parameter)                   (one array parameter)
insert unless there  ``INSERT OR IGNORE INTO …``                 ``INSERT INTO … ON
                                                                 CONFLICT DO NOTHING``
a planner hint       ``INDEXED BY index``                        nothing (it has statistics)
count the NULLs      ``SUM(column IS NULL)``                     ``COUNT(*) FILTER (…)``
Unix time to minute  ``strftime('%Y-%m-%dT%H:%M', …)``           ``to_char(to_timestamp …)``
a writing            ``BEGIN IMMEDIATE``                         ``BEGIN`` and an advisory
transaction                                                      lock (store/postgres.py)
===================  ==========================================  ==========================

Statements that differ as a whole (bulk loading by COPY, outcomes by ``unnest``, the
fleet's batches) are written for PostgreSQL in store/postgres.py, beside the method
they replace.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str

    @property
    def postgres(self) -> bool:
        return self.name == "postgresql"

    def in_list(self, parameter: str) -> str:
        """``column`` followed by this: the column is one of the values in ``parameter``
        (pass them through ``values``)."""
        if self.postgres:
            return f"= ANY(:{parameter})"
        return f"IN (SELECT value FROM json_each(:{parameter}))"

    def values(self, items: Sequence[object]) -> object:
        """A list of values as the one parameter ``in_list`` expects."""
        return list(items) if self.postgres else json.dumps(list(items))

    def insert_ignore(self, insert: str) -> str:
        """``INSERT INTO t (…) VALUES (…)`` that does nothing where the row would break a
        unique key."""
        body = insert.removeprefix("INSERT INTO ")
        if self.postgres:
            return f"INSERT INTO {body} ON CONFLICT DO NOTHING"
        return f"INSERT OR IGNORE INTO {body}"

    def indexed_by(self, index: str) -> str:
        """SQLite's planner hint (it keeps no statistics unless told); nothing on
        PostgreSQL, whose planner has them."""
        return "" if self.postgres else f" INDEXED BY {index}"

    def count_null(self, column: str) -> str:
        if self.postgres:
            return f"COUNT(*) FILTER (WHERE {column} IS NULL)"
        return f"SUM({column} IS NULL)"

    def minute(self, unix_column: str) -> str:
        """A Unix time in seconds as its UTC minute, ``2026-01-31T09:05``."""
        if self.postgres:
            return (
                f"to_char(to_timestamp({unix_column}) AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD\"T\"HH24\\:MI')"
            )
        return f"strftime('%Y-%m-%dT%H:%M', {unix_column}, 'unixepoch')"

    @property
    def begin_write(self) -> str:
        return "BEGIN" if self.postgres else "BEGIN IMMEDIATE"


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")
