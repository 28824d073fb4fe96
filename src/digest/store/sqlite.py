"""The SQLite store (WAL mode): the one class the rest of digest reaches SQL through.

Writes that must be atomic run in ``BEGIN IMMEDIATE`` transactions, so a crash leaves
either the whole change or none of it. The schema (store/tables.py) is migrated on open
by Alembic (store/migrate.py) when ``user_version`` says it is behind. Every SQLite error leaves as a one-line :class:`StoreError` that
names the file and what to do; one store may be shared by threads (calls take turns).

Unsubscribe requests from the public web app go to a small second database beside the
main one, the *inbox*, which no long write ever holds: a one-click unsubscribe is
recorded durably at once even while an import or a delivery holds the main database,
and is applied as soon as the lock frees, and before any later batch is formed.

The statements live in one module per concern, each a part of this class, in the order
the data flows: ``core`` (the database and its transactions), ``subscribers``,
``unsubscribes`` (every way a reader leaves), ``signups``, ``inbox``, ``issues``
(scheduled issues and their lease), ``ledger`` (batches and outcomes) and ``reports``;
beside them the small
parts that undo suppressions (``suppressions``), keep events that could not be applied
(``failed_events``) and remember which key signed the links (``keys``); the editors'
desk has its users, sessions and audit log in ``desk`` and the schedules waiting for a
second person in ``approvals``. ``common`` holds what they share.
"""

from __future__ import annotations

from digest.store.api_reads import ApiReads
from digest.store.api_tokens import ApiTokens
from digest.store.approvals import Approvals
from digest.store.common import (
    UPSERT_CHUNK,
    _public_methods_guarded,
    new_uid,
    now_utc,
    owner_alive,
    owner_running,
    parse_stamp,
    stamp,
    suppression_hash,
    unix,
)
from digest.store.desk import DeskRecords
from digest.store.failed_events import FailedEvents
from digest.store.keys import SigningKeyRecord
from digest.store.schema import INBOX_SCHEMA, MIGRATIONS
from digest.store.suppressions import Suppressions


@_public_methods_guarded
class SQLiteStore(
    ApiReads, Suppressions, FailedEvents, SigningKeyRecord, DeskRecords, Approvals, ApiTokens
):
    """Subscribers, signups, the inbox, scheduled issues, the delivery ledger, what
    happened after sending and the editors' desk, in one SQLite file (and the inbox
    beside it)."""


__all__ = [
    "INBOX_SCHEMA",
    "MIGRATIONS",
    "UPSERT_CHUNK",
    "SQLiteStore",
    "_public_methods_guarded",
    "new_uid",
    "now_utc",
    "owner_alive",
    "owner_running",
    "parse_stamp",
    "stamp",
    "suppression_hash",
    "unix",
]
