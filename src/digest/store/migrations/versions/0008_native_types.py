"""PostgreSQL keeps times as ``timestamptz``, a subscriber's attributes as ``jsonb`` and
the signup flag as ``boolean`` (they were text and integers, as in SQLite); SQLite gains
the fleet's two places (``batches.owner``, ``workers``) so both databases have the same
tables.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from typing import Any

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIMES = {
    "subscribers": ("created_at", "updated_at"),
    "suppressions": ("created_at",),
    "issues": ("send_at", "lease_until", "created_at", "started_at", "finished_at"),
    "batches": ("created_at",),
    "workers": ("until",),
    "deliveries": ("next_attempt_at",),
    "events": ("occurred_at", "received_at"),
    "signups": ("requested_at", "sent_at"),
    "events_failed": ("failed_at",),
    "inbox.unsubscribes": ("received_at",),
    "inbox.seen": ("seen_at",),
    "inbox.signups": ("received_at",),
    "inbox.confirms": ("received_at",),
}


def upgrade() -> None:
    connection = op.get_bind()
    raw: Any = connection.connection.driver_connection
    if connection.dialect.name == "sqlite":
        _sqlite(raw)
        return
    for table, columns in TIMES.items():
        changes = ", ".join(
            f"ALTER COLUMN {c} TYPE timestamptz USING {c}::timestamptz" for c in columns
        )
        raw.execute(f"ALTER TABLE {table} {changes}")
    raw.execute(
        "ALTER TABLE subscribers ALTER COLUMN attributes DROP DEFAULT,"
        " ALTER COLUMN attributes TYPE jsonb USING attributes::jsonb,"
        " ALTER COLUMN attributes SET DEFAULT '{}'::jsonb"
    )
    # an issue's key is unique by an index named as SQLite's, not by a constraint
    raw.execute("ALTER TABLE issues DROP CONSTRAINT issues_key_key")
    raw.execute("CREATE UNIQUE INDEX issues_key ON issues (key)")
    raw.execute(
        "ALTER TABLE signups ALTER COLUMN due DROP DEFAULT,"
        " ALTER COLUMN due TYPE boolean USING due <> 0,"
        " ALTER COLUMN due SET DEFAULT false"
    )


def _sqlite(raw: Any) -> None:
    """In one transaction, and harmless to run twice (SQLite's DDL here is not part of
    Alembic's own transaction)."""
    raw.execute("BEGIN IMMEDIATE")
    try:
        columns = {r[1] for r in raw.execute("PRAGMA table_info(batches)")}
        if "owner" not in columns:
            raw.execute("ALTER TABLE batches ADD COLUMN owner TEXT")
        raw.execute(
            "CREATE TABLE IF NOT EXISTS workers (owner TEXT PRIMARY KEY, until TEXT NOT NULL)"
        )
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")
