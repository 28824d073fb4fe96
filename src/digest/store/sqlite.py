"""The SQLite store (WAL mode): every SQL statement digest runs lives here.

Writes that must be atomic run in ``BEGIN IMMEDIATE`` transactions, so a crash leaves
either the whole change or none of it. The schema is versioned with ``user_version``
and migrated on open.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from digest.errors import ConfigError, DigestError
from digest.store import (
    ACTIVE,
    BatchRecipient,
    ClaimedBatch,
    Result,
    ScheduledIssue,
    Subscriber,
)

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT,
        status TEXT NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
        attributes TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX subscribers_status ON subscribers (status, id);
    CREATE TABLE suppressions (
        hash TEXT PRIMARY KEY,
        created_at TEXT NOT NULL
    );
    CREATE TABLE issues (
        slug TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        send_at TEXT NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('scheduled', 'sending', 'sent', 'stopped', 'cancelled')),
        rendered TEXT NOT NULL,
        error TEXT,
        cursor INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    );
    CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL REFERENCES issues (slug),
        status TEXT NOT NULL CHECK (status IN ('inflight', 'done')),
        created_at TEXT NOT NULL
    );
    CREATE INDEX batches_inflight ON batches (issue, status);
    CREATE TABLE deliveries (
        issue TEXT NOT NULL REFERENCES issues (slug),
        subscriber_id INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('pending', 'inflight', 'accepted', 'rejected', 'failed', 'unknown', 'skipped')),
        batch_id INTEGER,
        message_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (issue, subscriber_id)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_batch ON deliveries (batch_id);
    CREATE INDEX deliveries_status ON deliveries (issue, status, next_attempt_at);
    """,
]


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def suppression_hash(email: str) -> str:
    return hashlib.sha256(f"digest-suppression:{email.lower()}".encode()).hexdigest()


class SQLiteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                str(self.path), isolation_level=None, timeout=30, check_same_thread=False
            )
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.DatabaseError as err:
            raise ConfigError(f"{self.path}: cannot open the database ({err})") from None

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise DigestError(
                f"{self.path}: made by a newer digest (schema {version}); upgrade digest"
            )
        for number in range(version, len(MIGRATIONS)):
            with self.transaction() as db:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    # --- subscribers -------------------------------------------------------------------

    @staticmethod
    def _subscriber(row: sqlite3.Row) -> Subscriber:
        return Subscriber(
            row["id"], row["email"], row["name"], row["status"],
            json.loads(row["attributes"] or "{}"), row["created_at"], row["updated_at"],
        )  # fmt: skip

    def upsert_subscribers(
        self, rows: Iterable[tuple[str, str | None, dict[str, str]]], *, resubscribe: bool
    ) -> dict[str, list[str]]:
        """Add or update subscribers in one transaction; returns emails by outcome:
        added, updated, unchanged, kept (not re-activated), suppressed."""
        report: dict[str, list[str]] = {
            k: [] for k in ("added", "updated", "unchanged", "kept", "suppressed")
        }
        now = stamp(now_utc())
        with self.transaction() as db:
            for email, name, attributes in rows:
                hashed = suppression_hash(email)
                if db.execute("SELECT 1 FROM suppressions WHERE hash = ?", (hashed,)).fetchone():
                    if not resubscribe:
                        report["suppressed"].append(email)
                        continue
                    db.execute("DELETE FROM suppressions WHERE hash = ?", (hashed,))
                row = db.execute("SELECT * FROM subscribers WHERE email = ?", (email,)).fetchone()
                attrs = json.dumps(attributes, sort_keys=True, ensure_ascii=False)
                if row is None:
                    db.execute(
                        "INSERT INTO subscribers (email, name, status, attributes, created_at, updated_at)"
                        " VALUES (?, ?, 'active', ?, ?, ?)",
                        (email, name, attrs, now, now),
                    )
                    report["added"].append(email)
                    continue
                status = row["status"]
                if status != ACTIVE and not resubscribe:
                    report["kept"].append(email)
                    continue
                new_name = name if name else row["name"]
                merged = json.loads(row["attributes"] or "{}") | attributes
                new_attrs = json.dumps(merged, sort_keys=True, ensure_ascii=False)
                if (new_name, new_attrs, ACTIVE) == (row["name"], row["attributes"], status):
                    report["unchanged"].append(email)
                    continue
                db.execute(
                    "UPDATE subscribers SET name = ?, attributes = ?, status = 'active', updated_at = ? WHERE id = ?",
                    (new_name, new_attrs, now, row["id"]),
                )
                report["updated"].append(email)
        return report

    def get_subscriber(self, email: str) -> Subscriber | None:
        row = self.db.execute("SELECT * FROM subscribers WHERE email = ?", (email,)).fetchone()
        return self._subscriber(row) if row else None

    def set_status(self, email: str, status: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE subscribers SET status = ?, updated_at = ? WHERE email = ?",
                (status, stamp(now_utc()), email),
            )
            return cursor.rowcount > 0

    def unsubscribe_id(self, subscriber_id: int) -> bool:
        """Active -> unsubscribed; any other status (bounced, complained) stays."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE subscribers SET status = 'unsubscribed', updated_at = ? WHERE id = ? AND status = 'active'",
                (stamp(now_utc()), subscriber_id),
            )
            return cursor.rowcount > 0

    def forget(self, email: str) -> bool:
        """Delete the subscriber's personal data; keep a hash so imports skip them."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO suppressions (hash, created_at) VALUES (?, ?)",
                (suppression_hash(email), stamp(now_utc())),
            )
            return db.execute("DELETE FROM subscribers WHERE email = ?", (email,)).rowcount > 0

    def is_suppressed(self, email: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM suppressions WHERE hash = ?", (suppression_hash(email),)
        ).fetchone()
        return row is not None

    def iter_subscribers(self, status: str | None = None, page: int = 1000) -> Iterator[Subscriber]:
        """Every subscriber in id order, read a page at a time."""
        last = 0
        while True:
            if status:
                rows = self.db.execute(
                    "SELECT * FROM subscribers WHERE status = ? AND id > ? ORDER BY id LIMIT ?",
                    (status, last, page),
                ).fetchall()
            else:
                rows = self.db.execute(
                    "SELECT * FROM subscribers WHERE id > ? ORDER BY id LIMIT ?", (last, page)
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield self._subscriber(row)
            last = rows[-1]["id"]

    def count_subscribers(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status"
        ).fetchall()
        return {row["status"]: row["n"] for row in rows}

    # --- schedule ----------------------------------------------------------------------

    @staticmethod
    def _issue(row: sqlite3.Row) -> ScheduledIssue:
        return ScheduledIssue(
            row["slug"], row["path"], row["source_hash"], parse_stamp(row["send_at"]), row["status"],
            row["rendered"], row["error"], row["lease_owner"],
        )  # fmt: skip

    def save_schedule(self, issue: ScheduledIssue) -> None:
        """Insert, or replace the frozen render and time of an issue (keeping its ledger)."""
        now = stamp(now_utc())
        with self.transaction() as db:
            db.execute(
                "INSERT INTO issues (slug, path, source_hash, send_at, status, rendered, error, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL, ?)"
                " ON CONFLICT (slug) DO UPDATE SET path = excluded.path, source_hash = excluded.source_hash,"
                " send_at = excluded.send_at, status = excluded.status, rendered = excluded.rendered, error = NULL",
                (
                    issue.slug,
                    issue.path,
                    issue.source_hash,
                    stamp(issue.send_at),
                    issue.status,
                    issue.rendered_json,
                    now,
                ),
            )

    def get_schedule(self, slug: str) -> ScheduledIssue | None:
        row = self.db.execute("SELECT * FROM issues WHERE slug = ?", (slug,)).fetchone()
        return self._issue(row) if row else None

    def list_schedules(self) -> list[ScheduledIssue]:
        return [
            self._issue(r) for r in self.db.execute("SELECT * FROM issues ORDER BY send_at, slug")
        ]

    def cancel_schedule(self, slug: str) -> bool:
        with self.transaction() as db:
            return (
                db.execute(
                    "UPDATE issues SET status = 'cancelled' WHERE slug = ? AND status = 'scheduled'",
                    (slug,),
                ).rowcount
                > 0
            )

    def due_issues(self, now: dt.datetime) -> list[ScheduledIssue]:
        rows = self.db.execute(
            "SELECT * FROM issues WHERE status IN ('scheduled', 'sending') AND send_at <= ? ORDER BY send_at",
            (stamp(now),),
        )
        return [self._issue(r) for r in rows]

    def set_issue_status(self, slug: str, status: str, error: str | None = None) -> None:
        finished = stamp(now_utc()) if status in ("sent", "stopped") else None
        with self.transaction() as db:
            db.execute(
                "UPDATE issues SET status = ?, error = ?, finished_at = COALESCE(?, finished_at) WHERE slug = ?",
                (status, error, finished, slug),
            )

    # --- delivery ----------------------------------------------------------------------

    def claim_issue(
        self, slug: str, owner: str, now: dt.datetime, lease: dt.timedelta
    ) -> str | None:
        """Take the issue for ``owner`` unless another live owner holds it; returns the
        holder that stands in the way, or None when claimed."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT lease_owner, lease_until FROM issues WHERE slug = ?", (slug,)
            ).fetchone()
            if row is None:
                return "(no such issue)"
            holder, until = row["lease_owner"], row["lease_until"]
            if (
                holder
                and holder != owner
                and until
                and parse_stamp(until) > now
                and owner_alive(holder)
            ):
                return str(holder)
            db.execute(
                "UPDATE issues SET lease_owner = ?, lease_until = ?, status = 'sending',"
                " started_at = COALESCE(started_at, ?) WHERE slug = ?",
                (owner, stamp(now + lease), stamp(now), slug),
            )
            return None

    def release_issue(self, slug: str, owner: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE issues SET lease_owner = NULL, lease_until = NULL WHERE slug = ? AND lease_owner = ?",
                (slug, owner),
            )

    def _batch_recipients(self, batch_id: int) -> tuple[BatchRecipient, ...]:
        rows = self.db.execute(
            "SELECT d.subscriber_id, s.email, s.name, d.attempts FROM deliveries d"
            " JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.batch_id = ? AND d.status = 'inflight' ORDER BY d.subscriber_id",
            (batch_id,),
        ).fetchall()
        return tuple(
            BatchRecipient(r["subscriber_id"], r["email"], r["name"], r["attempts"]) for r in rows
        )

    def inflight_batches(self, slug: str) -> list[ClaimedBatch]:
        ids = [
            r["id"]
            for r in self.db.execute(
                "SELECT id FROM batches WHERE issue = ? AND status = 'inflight' ORDER BY id",
                (slug,),
            )
        ]
        return [ClaimedBatch(i, batch_key(slug, i), self._batch_recipients(i)) for i in ids]

    def mark_unknown(self, batch_ids: list[int]) -> int:
        changed = 0
        with self.transaction() as db:
            for batch_id in batch_ids:
                changed += db.execute(
                    "UPDATE deliveries SET status = 'unknown', updated_at = ?,"
                    " last_error = 'sent when digest stopped; the answer was lost' WHERE batch_id = ? AND status = 'inflight'",
                    (stamp(now_utc()), batch_id),
                ).rowcount
                db.execute("UPDATE batches SET status = 'done' WHERE id = ?", (batch_id,))
        return changed

    def reopen_unknown(self, slug: str, now: dt.datetime) -> int:
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?"
                " WHERE issue = ? AND status = 'unknown'",
                (stamp(now), stamp(now), slug),
            ).rowcount
            if changed:
                db.execute(
                    "UPDATE issues SET status = 'sending' WHERE slug = ? AND status IN ('sent', 'stopped')",
                    (slug,),
                )
            return changed

    def next_batch(
        self, slug: str, size: int, now: dt.datetime, max_attempts: int
    ) -> ClaimedBatch | None:
        """Form the next batch and mark it in flight, atomically: due retries first, then
        the next active subscribers after the issue's cursor. Subscribers who are no
        longer active are skipped here, so an unsubscribe counts for every later batch."""
        when = stamp(now)
        with self.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = 'skipped', updated_at = ? WHERE issue = ? AND status = 'pending'"
                " AND NOT EXISTS (SELECT 1 FROM subscribers s"
                " WHERE s.id = deliveries.subscriber_id AND s.status = 'active')",
                (when, slug),
            )
            retries = db.execute(
                "SELECT d.subscriber_id, s.email, s.name, d.attempts FROM deliveries d"
                " JOIN subscribers s ON s.id = d.subscriber_id"
                " WHERE d.issue = ? AND d.status = 'pending' AND d.next_attempt_at <= ?"
                " ORDER BY d.next_attempt_at, d.subscriber_id LIMIT ?",
                (slug, when, size),
            ).fetchall()
            chosen = [
                BatchRecipient(r["subscriber_id"], r["email"], r["name"], r["attempts"])
                for r in retries
            ]
            fresh: list[BatchRecipient] = []
            if len(chosen) < size:
                cursor = db.execute("SELECT cursor FROM issues WHERE slug = ?", (slug,)).fetchone()[
                    "cursor"
                ]
                rows = db.execute(
                    "SELECT id, email, name FROM subscribers WHERE status = 'active' AND id > ? ORDER BY id LIMIT ?",
                    (cursor, size - len(chosen)),
                ).fetchall()
                fresh = [BatchRecipient(r["id"], r["email"], r["name"], 0) for r in rows]
                if rows:
                    db.execute(
                        "UPDATE issues SET cursor = ? WHERE slug = ?", (rows[-1]["id"], slug)
                    )
            if not chosen and not fresh:
                return None
            batch_id = db.execute(
                "INSERT INTO batches (issue, status, created_at) VALUES (?, 'inflight', ?)",
                (slug, when),
            ).lastrowid
            assert batch_id is not None
            db.executemany(
                "UPDATE deliveries SET status = 'inflight', batch_id = ?, updated_at = ? WHERE issue = ? AND subscriber_id = ?",
                [(batch_id, when, slug, r.subscriber_id) for r in chosen],
            )
            db.executemany(
                "INSERT INTO deliveries (issue, subscriber_id, status, batch_id, updated_at) VALUES (?, ?, 'inflight', ?, ?)",
                [(slug, r.subscriber_id, batch_id, when) for r in fresh],
            )
            return ClaimedBatch(batch_id, batch_key(slug, batch_id), tuple(chosen + fresh))

    def record(
        self, slug: str, batch_id: int, results: list[Result], owner: str, lease_until: dt.datetime
    ) -> None:
        """Write each recipient's outcome and close the batch, in one transaction.

        Recipients with the same outcome (a whole Mailgun batch shares one message id)
        are written with one statement; the rest one row each."""
        when = stamp(now_utc())
        groups: dict[tuple[str, str | None, str | None, str | None], list[int]] = {}
        for r in results:
            retry = stamp(r.next_attempt_at) if r.next_attempt_at else None
            groups.setdefault((r.status, r.message_id, r.error, retry), []).append(r.subscriber_id)
        single: list[tuple[object, ...]] = []
        with self.transaction() as db:
            for (status, message_id, error, retry), ids in groups.items():
                if len(ids) == 1:
                    single.append((status, message_id, error, retry, when, slug, ids[0], batch_id))
                    continue
                db.execute(
                    "UPDATE deliveries SET status = ?, message_id = COALESCE(?, message_id), last_error = ?,"
                    " attempts = attempts + 1, next_attempt_at = ?, updated_at = ?"
                    " WHERE issue = ? AND batch_id = ? AND subscriber_id IN (SELECT value FROM json_each(?))",
                    (status, message_id, error, retry, when, slug, batch_id, json.dumps(ids)),
                )
            db.executemany(
                "UPDATE deliveries SET status = ?, message_id = COALESCE(?, message_id), last_error = ?,"
                " attempts = attempts + 1, next_attempt_at = ?, updated_at = ?"
                " WHERE issue = ? AND subscriber_id = ? AND batch_id = ?",
                single,
            )
            db.execute("UPDATE batches SET status = 'done' WHERE id = ?", (batch_id,))
            db.execute(
                "UPDATE issues SET lease_until = ? WHERE slug = ? AND lease_owner = ?",
                (stamp(lease_until), slug, owner),
            )

    def next_retry_at(self, slug: str) -> dt.datetime | None:
        row = self.db.execute(
            "SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE issue = ? AND status = 'pending'",
            (slug,),
        ).fetchone()
        return parse_stamp(row["t"]) if row and row["t"] else None

    def remaining(self, slug: str) -> int:
        """Recipients not yet settled: pending, in flight, or not reached by the cursor."""
        cursor = self.db.execute("SELECT cursor FROM issues WHERE slug = ?", (slug,)).fetchone()
        ahead = self.db.execute(
            "SELECT COUNT(*) FROM subscribers WHERE status = 'active' AND id > ?",
            (cursor["cursor"] if cursor else 0,),
        ).fetchone()[0]
        open_rows = self.db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE issue = ? AND status IN ('pending', 'inflight')",
            (slug,),
        ).fetchone()[0]
        return int(ahead + open_rows)

    def delivery_counts(self, slug: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE issue = ? GROUP BY status", (slug,)
        )
        return {r["status"]: r["n"] for r in rows}

    def unknown_recipients(self, slug: str) -> list[str]:
        rows = self.db.execute(
            "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.issue = ? AND d.status = 'unknown' ORDER BY s.email",
            (slug,),
        )
        return [r["email"] for r in rows]

    def accepted_since(self, slug: str, since: dt.datetime) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE issue = ? AND status = 'accepted' AND updated_at >= ?",
            (slug, stamp(since)),
        ).fetchone()
        return int(row[0])


def batch_key(slug: str, batch_id: int) -> str:
    """The idempotency key of a batch: the same batch always gets the same key."""
    return f"digest:{slug}:batch-{batch_id}"


def owner_alive(owner: str) -> bool:
    """Whether the process holding a lease still runs (known only on this host)."""
    import os
    import socket

    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine: trust the lease time
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
