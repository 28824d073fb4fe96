"""The PostgreSQL store: the same store, on a database several machines share.

``delivery.database: postgresql://user@host/db`` selects it. The tables are the ones
store/tables.py defines (with PostgreSQL's native types), made and upgraded by the
Alembic migrations; the statements are the store's parts', written once for both
databases (store/dialects.py names where they differ), so the two stores cannot drift
apart. The methods below are the ones PostgreSQL does its own way. What
SQLite gets from ``BEGIN IMMEDIATE`` (one writer at a time) PostgreSQL gets from a
transaction-wide advisory lock taken first in every writing transaction: the invariants
the delivery code relies on (one batch formed at a time per list, a lease taken by one
process) hold across every process and host on the database.

The inbox (unsubscribes, provider events and signups waiting to be applied) lives in
the schema ``inbox`` of the same database, on a connection of its own.

The schema is created and upgraded by ``digest db migrate``; every other command refuses
to run on a database without it, or on an older one, with a one-line error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from digest.defaultkey import DEFAULT_KEY
from digest.errors import StoreError
from digest.store.migrate import SCHEMA_VERSION, WRITE_LOCK, upgrade_postgres
from digest.store.postgres_connection import Connection
from digest.store.postgres_import import upsert
from digest.store.postgres_urls import is_postgres, password_url, redacted
from digest.store.records import SubscriberRow, UpsertReport
from digest.store.sqlite import SQLiteStore, _public_methods_guarded, now_utc, stamp


@_public_methods_guarded
class PostgresStore(SQLiteStore):
    """The store on PostgreSQL (see the module's docstring)."""

    def __init__(self, url: str, *, busy_seconds: float = 30.0, migrate: bool = False) -> None:
        import psycopg

        self.database_errors = (psycopg.Error, sqlite3.Error)
        self.url = url
        self.busy_seconds = busy_seconds
        self.lock = threading.RLock()
        self._list_id = None
        self._keys = {}
        self._owner: str | None = None
        self._formed = 0  # batches this process formed (for _new_batch's ANALYZE)
        self._inbox = None
        try:
            self.db = Connection(url, wait=busy_seconds)
            if migrate:
                self.migrate()
            self._check_schema()
            # the inbox takes lone writes (an unsubscribe, a signup), which are not tried
            # twice: its connections are checked before each use instead
            self._inbox = Connection(
                url, search_path="inbox", wait=busy_seconds, probe=False, checked=True
            )
        except psycopg.Error as err:
            self.close()
            raise StoreError(f"{self.where}: {self.describe(err)}") from None
        except StoreError:  # no schema, or another version's: its pool goes too
            self.close()
            raise

    @property
    def where(self) -> str:
        return redacted(self.url)

    def describe(self, err: Exception) -> str:
        text = " ".join(str(err).split())
        if "connection" in text.lower() and ("refused" in text.lower() or "failed" in text.lower()):
            return f"cannot connect to PostgreSQL ({text})"
        if "couldn't get a connection" in text.lower():
            return f"PostgreSQL did not give a connection within {self.busy_seconds:g} s ({text})"
        if "password authentication failed" in text.lower():
            return "PostgreSQL refused the password (set it in the environment variable named by delivery.password_env, or in ~/.pgpass)"
        return f"database error ({text})"

    def _version(self) -> int:
        """The schema's version: Alembic's revision, or (from before Alembic) the one
        in ``meta``; 0 for a database without digest's schema."""
        if self._has("alembic_version"):
            row = self.db.execute("SELECT version_num FROM alembic_version").fetchone()
            if row is not None:
                return int(row[0]) if str(row[0]).isdigit() else SCHEMA_VERSION + 1
        if self._has("meta"):
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            return int(row[0]) if row else 0
        return 0

    def _has(self, table: str) -> bool:
        row = self.db.execute(
            "SELECT to_regclass(:name) IS NOT NULL", {"name": f"public.{table}"}
        ).fetchone()
        return bool(row and row[0])

    def _check_schema(self) -> None:
        version = self._version()
        if version == 0:
            raise StoreError(f"{self.where}: no digest schema here yet; run `digest db migrate`")
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{self.where}: schema {version} is older than this digest's ({SCHEMA_VERSION}); "
                "run `digest db migrate`"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.where}: made by a newer digest (schema {version}); upgrade digest"
            )

    def migrate(self) -> int:
        """Create the schema, or upgrade it (Alembic, store/migrate.py); the version it
        is at afterwards."""
        import psycopg

        version = self._version()
        if version > SCHEMA_VERSION:
            self._check_schema()
        if version < SCHEMA_VERSION:
            upgrade_postgres(lambda: psycopg.connect(self.url, connect_timeout=10))
        return self._version()

    def schema_version(self) -> int:
        return self._version()

    def _migrate(self) -> None:  # SQLite migrates on open; PostgreSQL with `digest db migrate`
        return

    @contextlib.contextmanager
    def transaction(self, locked: bool = True) -> Iterator[Any]:
        with self.lock:
            self.db.execute("BEGIN")
            try:
                if locked:
                    self.db.execute("SELECT pg_advisory_xact_lock(:lock)", {"lock": WRITE_LOCK})
                yield self.db
            except BaseException:
                with contextlib.suppress(Exception):
                    self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")

    def _inbox_db(self) -> Any:
        return self._inbox

    def token_reader(self) -> None:
        """No read-only side connection here: API tokens are looked up as usual."""
        return None

    def _outcomes_transaction(self, suppressing: bool) -> contextlib.AbstractContextManager[Any]:
        """A batch's outcomes change only its own ledger rows (a recipient is in one batch
        at a time, and each update names the row's batch and requires it in flight), its
        batch row and its worker's heartbeat: row locks keep that right, so workers write
        outcomes while another forms its next batch. Suppressing someone changes rows
        other transactions change too: that waits for the write lock as usual."""
        return self.transaction(locked=suppressing)

    def upsert_subscribers(
        self,
        rows: Iterable[SubscriberRow],
        *,
        resubscribe: bool,
        newsletters: tuple[str, ...] = (DEFAULT_KEY,),
        leaving: dict[str, str] | None = None,
        joined: dict[str, str] | None = None,
    ) -> UpsertReport:
        """As the SQLite store's, done as a set: COPY, then a few statements
        (store/postgres_import.py)."""
        return upsert(
            self,
            rows,
            resubscribe=resubscribe,
            newsletters=newsletters,
            leaving={} if leaving is None else leaving,
            joined={} if joined is None else joined,
        )

    # --- a fleet of workers shares each issue and one rate limit ----------------------------
    #
    # On PostgreSQL any number of `digest deliver` processes, on any hosts, deliver the same
    # issue at once: each takes the next batch in turn (batches are formed one at a time,
    # under the write lock, from the issue's cursor), so they never overlap. Each worker
    # says it is alive in `workers` when it takes the issue and with every batch it
    # records; the batches in flight of a worker silent for longer than its lease
    # (delivery.lease_seconds) are settled by the next worker to take the issue, by the
    # usual rules (resent under the same key where the provider honours keys, otherwise
    # unknown). The issue is done when the last worker finds nothing left.

    def claim_issue(
        self, slug: str, owner: str, now: dt.datetime, lease: dt.timedelta, version: int
    ) -> str | None:
        with self.transaction() as db:
            row = db.execute(
                "SELECT status, version, send_at FROM issues WHERE slug = :slug", {"slug": slug}
            ).fetchone()
            reason = self._still_due(row, version, now)
            if reason is not None:
                return reason
            db.execute(
                "INSERT INTO workers (owner, until) VALUES (:owner, :until)"
                " ON CONFLICT (owner) DO UPDATE SET until = excluded.until",
                {"owner": owner, "until": stamp(now + lease)},
            )
            db.execute(
                "UPDATE issues SET status = 'sending', started_at = COALESCE(started_at, :now)"
                " WHERE slug = :slug",
                {"now": stamp(now), "slug": slug},
            )
        self._owner = owner
        return None

    def release_issue(self, slug: str, owner: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM workers WHERE owner = :owner", {"owner": owner})

    def _new_batch(self, db: Any, slug: str, now: dt.datetime) -> int:
        """A batch row that names its worker. Now and then the ledger's statistics are
        brought up to date first: a new issue's rows are in none until autovacuum comes
        round, and without them the planner reads outcomes through the wrong index."""
        self._formed += 1
        if self._formed in (10, 100) or self._formed % 1000 == 0:
            db.execute("ANALYZE deliveries")
        return int(
            db.execute(
                "INSERT INTO batches (issue, status, created_at, owner)"
                " VALUES (:slug, 'inflight', :now, :owner) RETURNING id",
                {"slug": slug, "now": stamp(now), "owner": self._owner},
            ).fetchone()[0]
        )

    @staticmethod
    def _insert_inflight(db: Any, key: int, batch_id: int, seconds: int, ids: list[int]) -> None:
        """The ledger rows of subscribers in a batch for the first time, by COPY."""
        db.copy_rows(
            "deliveries",
            ("issue", "subscriber_id", "status", "batch_id", "updated_at"),
            ((key, i, "inflight", batch_id, seconds) for i in ids),
        )

    @staticmethod
    def _record_group(db: Any, outcome: tuple[object, ...], ids: list[int]) -> None:
        """One outcome for many recipients, found by the primary key (see _record_each)."""
        status, message_id, error, retry, seconds, key, batch_id = outcome
        db.execute(
            "UPDATE deliveries SET status = :status,"
            " message_id = COALESCE(:message_id, message_id), last_error = :error,"
            " attempts = attempts + 1, next_attempt_at = :retry, updated_at = :seconds"
            " WHERE issue = :key AND subscriber_id = ANY(:ids) AND batch_id = :batch"
            " AND status IS NOT DISTINCT FROM 'inflight'",
            {"status": status, "message_id": message_id, "error": error, "retry": retry,
             "seconds": seconds, "key": key, "batch": batch_id, "ids": ids},
        )  # fmt: skip

    @staticmethod
    def _record_each(db: Any, rows: list[tuple[object, ...]]) -> None:
        """One statement for all of them (a row each would be a round trip each). They
        share the issue and the batch, given once, and the rows are found by the primary
        key (issue, subscriber): the status is compared so that no index can serve it.
        An issue's ledger index holds an entry for every row that was ever in flight
        until VACUUM clears it (each outcome writes a new row version), so a plan that
        found the rows in flight through it read the whole issue's past for every batch
        (15 ms a batch at 300,000 recipients, growing as the issue went on)."""
        status, message_id, error, retry, settled, issues, subscriber, batches = (
            list(c) for c in zip(*rows, strict=True)
        )
        if len(set(issues)) != 1 or len(set(batches)) != 1:
            raise ValueError("outcomes of one batch only")
        # the recipients' rows by the key, then matched to their outcomes by a hash: a
        # nested loop would compare every row with every outcome (a million a batch)
        db.raw.execute("SET LOCAL enable_nestloop = off")
        db.raw.execute(
            "UPDATE deliveries d SET status = u.status,"
            " message_id = COALESCE(u.message_id, d.message_id), last_error = u.error,"
            " attempts = d.attempts + 1, next_attempt_at = u.retry, updated_at = u.settled"
            " FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::bigint[],"
            " %s::bigint[]) AS u(status, message_id, error, retry, settled, subscriber_id)"
            " WHERE d.issue = %s AND d.subscriber_id = ANY(%s)"
            " AND d.subscriber_id = u.subscriber_id AND d.batch_id = %s"
            " AND d.status IS NOT DISTINCT FROM 'inflight'",
            [
                status,
                message_id,
                error,
                retry,
                settled,
                subscriber,
                issues[0],
                subscriber,
                batches[0],
            ],
        )

    @staticmethod
    def _renew_lease(db: Any, slug: str, owner: str, lease_until: dt.datetime) -> None:
        """The worker is alive, said in the same transaction as its batch's outcomes."""
        db.execute(
            "UPDATE workers SET until = :until WHERE owner = :owner",
            {"until": stamp(lease_until), "owner": owner},
        )

    def send_slot(self, count: int, rate: float, now: float) -> float | None:
        """The fleet's one rate limit: a shared "next free moment" every worker books its
        batches against, so delivery.rate_limit holds for all of them together."""
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'send_next'").fetchone()
            start = max(now, float(row["value"]) if row else 0.0)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('send_next', :value)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                {"value": repr(start + count / rate)},
            )
        return start

    def _stranded(self, slug: str) -> list[int]:
        """In-flight batches of workers that stopped saying they are alive."""
        return [
            r["id"]
            for r in self.db.execute(
                "SELECT b.id FROM batches b LEFT JOIN workers w ON w.owner = b.owner"
                " WHERE b.issue = :slug AND b.status = 'inflight'"
                " AND (w.owner IS NULL OR w.until < :now) ORDER BY b.id",
                {"slug": slug, "now": stamp(now_utc())},
            )
        ]

    def close(self) -> None:
        for connection in (getattr(self, "db", None), self._inbox):
            if connection is not None:
                connection.close()


__all__ = [
    "SCHEMA_VERSION",
    "PostgresStore",
    "is_postgres",
    "password_url",
    "redacted",
]
