"""The store: subscribers, scheduled issues and the delivery ledger.

Delivery logic talks to the :class:`Store` protocol only (store/records.py, with the
records it takes and hands back); the SQL lives in one module per concern behind it, for
SQLite and PostgreSQL alike (store/sqlite.py says which holds what).
"""

from __future__ import annotations

from digest.store.records import (
    ACTIVE,
    BOUNCED,
    COMPLAINED,
    DELIVERY_STATUSES,
    ISSUE_STATUSES,
    PENDING,
    SUBSCRIBER_STATUSES,
    UNSUBSCRIBED,
    BatchRecipient,
    ClaimedBatch,
    IssueChanged,
    Published,
    Result,
    ScheduledIssue,
    Signup,
    Store,
    StoredEvent,
    Subscriber,
    SubscriberRow,
    UpsertReport,
)

__all__ = [
    "ACTIVE",
    "BOUNCED",
    "COMPLAINED",
    "DELIVERY_STATUSES",
    "ISSUE_STATUSES",
    "PENDING",
    "SUBSCRIBER_STATUSES",
    "UNSUBSCRIBED",
    "BatchRecipient",
    "ClaimedBatch",
    "IssueChanged",
    "Published",
    "Result",
    "ScheduledIssue",
    "Signup",
    "Store",
    "StoredEvent",
    "Subscriber",
    "SubscriberRow",
    "UpsertReport",
    "open_database",
]


def open_database(
    database: str, *, password_env: str | None = None, busy_seconds: float = 30.0
) -> Store:
    """The store for ``delivery.database``: a PostgreSQL URL, or an SQLite file."""
    from digest.store.postgres_urls import is_postgres, password_url

    if is_postgres(database):
        from digest.store.postgres import PostgresStore

        return PostgresStore(password_url(database, password_env), busy_seconds=busy_seconds)
    from pathlib import Path

    from digest.store.sqlite import SQLiteStore

    return SQLiteStore(Path(database), busy_seconds=busy_seconds)
