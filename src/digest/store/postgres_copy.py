"""`digest db copy`: a list and its whole history from SQLite into PostgreSQL."""

from __future__ import annotations

from typing import Any

from digest.errors import StoreError
from digest.store.postgres import PostgresStore
from digest.store.sqlite import SQLiteStore

# Tables in the order their references need, with the columns both schemas share.
COPIED = (
    "meta", "subscribers", "suppressions", "issues", "renders", "batches", "deliveries",
    "events", "signups", "events_failed",
)  # fmt: skip
IDENTITY = ("subscribers", "batches", "events", "signups", "events_failed")
COPY_CHUNK = 5000


def copy_sqlite_to_postgres(source: SQLiteStore, target: PostgresStore) -> dict[str, int]:
    """Move a list and its whole history from SQLite into an empty PostgreSQL database
    with the current schema, in one transaction: every table, the list's identity (which
    every unsubscribe link is signed with), ids as they were. Waiting unsubscribes and
    events are applied first. Rows copied per table."""
    source.apply_inbox()
    if target.count_subscribers() or target.list_schedules():
        raise StoreError(f"{target.where}: not empty; copy only into a new database")
    try:
        return _copy(source, target)
    except target.database_errors as err:
        raise StoreError(f"{target.where}: {target.describe(err)}; nothing was copied") from None


def _copy(source: SQLiteStore, target: PostgresStore) -> dict[str, int]:
    copied: dict[str, int] = {}
    with target.transaction() as db:
        db.execute("DELETE FROM meta WHERE key = 'list_id'")
        for table in COPIED:
            columns = [r["name"] for r in source.db.execute(f"PRAGMA table_info({table})")]
            rows: Any
            if table == "meta":
                rows = source.db.execute("SELECT key, value FROM meta WHERE key = 'list_id'")
                columns = ["key", "value"]
            else:
                rows = source.db.execute(f"SELECT {', '.join(columns)} FROM {table}")
            count = 0
            while chunk := rows.fetchmany(COPY_CHUNK):
                db.copy_rows(table, columns, [tuple(r) for r in chunk])
                count += len(chunk)
            copied[table] = count
        # ids are never reused, not even those of subscribers forgotten since: the next
        # id comes after the highest SQLite ever gave
        given = dict(source.db.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
        for table in IDENTITY:
            db.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" greatest(:given, (SELECT coalesce(max(id), 0) FROM {table})) + 1, false)",
                {"given": int(given.get(table, 0))},
            )
    return copied
