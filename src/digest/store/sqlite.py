"""The SQLite store (WAL mode): every SQL statement digest runs lives here.

Writes that must be atomic run in ``BEGIN IMMEDIATE`` transactions, so a crash leaves
either the whole change or none of it. The schema is versioned with ``user_version``
and migrated on open. Every SQLite error leaves as a one-line :class:`StoreError` that
names the file and what to do; one store may be shared by threads (calls take turns).

Unsubscribe requests from the public web app go to a small second database beside the
main one, the *inbox*, which no long write ever holds: a one-click unsubscribe is
recorded durably at once even while an import or a delivery holds the main database,
and is applied as soon as the lock frees, and before any later batch is formed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from digest.errors import StoreError
from digest.events import SOFT_BOUNCE, SUPPRESSING, Event
from digest.store import (
    ACTIVE,
    BatchRecipient,
    ClaimedBatch,
    IssueChanged,
    Published,
    Result,
    ScheduledIssue,
    Signup,
    StoredEvent,
    Subscriber,
    SubscriberRow,
    UpsertReport,
)
from digest.store.failed_events import FailedEvents, set_aside
from digest.store.keys import SigningKeyRecord
from digest.store.suppressions import Suppressions

T = TypeVar("T")

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
    # 2: subscriber ids never reused and a random uid per subscriber (what unsubscribe
    #    tokens name); the list's own identity; an issue version that changes with every
    #    scheduling; the 'incomplete' issue status
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value) VALUES ('list_id', lower(hex(randomblob(16))));
    CREATE TABLE subscribers_v2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL UNIQUE,
        name TEXT,
        status TEXT NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
        attributes TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    INSERT INTO subscribers_v2 (id, uid, email, name, status, attributes, created_at, updated_at)
        SELECT id, lower(hex(randomblob(12))), email, name, status, attributes, created_at, updated_at
        FROM subscribers;
    DROP TABLE subscribers;
    ALTER TABLE subscribers_v2 RENAME TO subscribers;
    CREATE INDEX subscribers_status ON subscribers (status, id);
    INSERT INTO sqlite_sequence (name, seq) SELECT 'subscribers', 0
        WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'subscribers');
    UPDATE sqlite_sequence SET seq = max(seq,
        (SELECT coalesce(max(subscriber_id), 0) FROM deliveries)) WHERE name = 'subscribers';
    CREATE TABLE issues_v2 (
        slug TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        send_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('scheduled', 'sending', 'sent', 'incomplete', 'stopped', 'cancelled')),
        rendered TEXT NOT NULL,
        error TEXT,
        cursor INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until TEXT,
        version INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    );
    INSERT INTO issues_v2 (slug, path, source_hash, send_at, status, rendered, error, cursor,
            lease_owner, lease_until, created_at, started_at, finished_at)
        SELECT slug, path, source_hash, send_at, status, rendered, error, cursor,
            lease_owner, lease_until, created_at, started_at, finished_at FROM issues;
    DROP TABLE issues;
    ALTER TABLE issues_v2 RENAME TO issues
    """,
    # 3: the frozen render (tens of kilobytes) in its own table, so the small writes to
    #    an issue on every batch (its cursor, its lease) no longer rewrite it
    """
    CREATE TABLE renders (
        slug TEXT PRIMARY KEY REFERENCES issues (slug),
        rendered TEXT NOT NULL
    );
    INSERT INTO renders (slug, rendered) SELECT slug, rendered FROM issues;
    UPDATE issues SET rendered = ''
    """,
    # 4: what happened to mail after it was handed over: bounces, complaints, provider
    #    unsubscribes, deliveries; each stored once (by its fingerprint)
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE,
        provider TEXT NOT NULL,
        kind TEXT NOT NULL,
        email TEXT NOT NULL,
        subscriber_id INTEGER,
        issue TEXT,
        message_id TEXT,
        detail TEXT NOT NULL DEFAULT '',
        occurred_at TEXT NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE INDEX events_issue ON events (issue, kind);
    CREATE INDEX events_email ON events (email, occurred_at)
    """,
    # 5: signups waiting for their confirmation (double opt-in), kept apart from the
    #    list; the web version of each scheduled issue, frozen beside its render
    """
    CREATE TABLE signups (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        email TEXT NOT NULL UNIQUE,
        name TEXT,
        requested_at TEXT NOT NULL,
        due INTEGER NOT NULL DEFAULT 0,
        sent_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE INDEX signups_due ON signups (due, id);
    ALTER TABLE renders ADD COLUMN web TEXT NOT NULL DEFAULT ''
    """,
    # 6: the delivery ledger names its issue by a small integer key instead of the slug
    #    (repeated in every row and in both of its indexes) and keeps settle times as Unix
    #    seconds: a row of a million-recipient issue went from about 335 bytes to under 150.
    #    Its status check is a chain of ORs: SQLite evaluates an IN list in a CHECK by
    #    building a small table per row, which cost 4.5 µs of every insert. The index on
    #    batch_id goes: a batch's rows are found through (issue, status = 'inflight').
    #    The status index ends with the settle time, so "accepted in the last minute"
    #    (`digest status`) is a seek, not a million look-ups.
    """
    ALTER TABLE issues ADD COLUMN key INTEGER;
    UPDATE issues SET key = (SELECT COUNT(*) FROM issues older WHERE older.rowid <= issues.rowid);
    CREATE UNIQUE INDEX issues_key ON issues (key);
    CREATE TABLE deliveries_v2 (
        issue INTEGER NOT NULL,
        subscriber_id INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status = 'pending' OR status = 'inflight'
            OR status = 'accepted' OR status = 'rejected' OR status = 'failed'
            OR status = 'unknown' OR status = 'skipped'),
        batch_id INTEGER,
        message_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (issue, subscriber_id)
    ) WITHOUT ROWID;
    INSERT INTO deliveries_v2 (issue, subscriber_id, status, batch_id, message_id, attempts,
            last_error, next_attempt_at, updated_at)
        SELECT i.key, d.subscriber_id, d.status, d.batch_id, d.message_id, d.attempts,
            d.last_error, d.next_attempt_at, CAST(strftime('%s', d.updated_at) AS INTEGER)
        FROM deliveries d JOIN issues i ON i.slug = d.issue;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_v2 RENAME TO deliveries;
    CREATE INDEX deliveries_status ON deliveries (issue, status, updated_at)
    """,
    # 7: provider events that could not be applied, set aside with the reason, so one
    #    bad event never holds back the ones after it (digest events failed lists them)
    """
    CREATE TABLE events_failed (
        id INTEGER PRIMARY KEY,
        event TEXT NOT NULL,
        reason TEXT NOT NULL,
        failed_at TEXT NOT NULL
    )
    """,
]

ISSUE_SELECT = (
    "SELECT i.slug, i.path, i.source_hash, i.send_at, i.status, r.rendered, i.error,"
    " i.lease_owner, i.version FROM issues i JOIN renders r ON r.slug = i.slug"
)

IMPORT_CACHE_KIB = 48 * 1024
UPSERT_CHUNK = 1000


def _chunks(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


INBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS unsubscribes (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,
    received_at TEXT NOT NULL,
    channel TEXT NOT NULL DEFAULT 'link'
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    key TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signups (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS confirms (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"""
CONFIRM_EVERY = dt.timedelta(hours=1)  # at most one confirmation mail per address per hour
CONFIRM_ATTEMPTS = 3  # tries to send one confirmation before giving up
EVENTS_PER_APPLY = 5000
# Every event is stored through this one statement, once by its fingerprint.
INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (fingerprint, provider, kind, email, subscriber_id, issue,"
    " message_id, detail, occurred_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _filesystem_state(path: Path) -> str | None:
    """'full' or 'read-only' when the database's filesystem is, else None."""
    try:
        info = os.statvfs(path.parent if str(path.parent) else ".")
    except OSError:
        return None
    if info.f_flag & os.ST_RDONLY:
        return "read-only"
    if info.f_bavail == 0:
        return "full"
    return None


def describe(err: sqlite3.Error, busy_seconds: float, path: Path | None = None) -> str:
    """What an SQLite error means for the person at the keyboard."""
    text = str(err).lower()
    state = _filesystem_state(path) if path is not None else None
    if state == "full":
        text = "disk full"
    elif state == "read-only" and "locked" not in text:
        text = "readonly"
    if "locked" in text or "busy" in text:
        return (
            f"the database is locked by another process (waited {busy_seconds:g} s); "
            "try again when it has finished"
        )
    if "full" in text:
        return (
            "the disk is full: free some space and run the command again (nothing was half-written)"
        )
    if "readonly" in text or "read-only" in text:
        return "the database is read-only: check the permissions of the file and its folder"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return f"not a digest database, or damaged ({err}); restore it from a backup"
    if "unable to open" in text:
        return "cannot open the database file (does its folder exist, and may digest write there?)"
    if "disk i/o" in text:
        return "the disk could not be read or written (disk I/O error)"
    return f"database error ({err})"


def not_writable(folder: Path) -> str:
    """What to do when this process may not write in ``folder`` (a host folder mounted
    into a container that runs as another user, say)."""
    uid = os.getuid()
    return (
        f"digest runs as user {uid} and may not write in {folder}: give it the folder "
        f"(chown {uid} {folder}), run it as the folder's owner (docker run --user "
        "$(id -u):$(id -g) …), or keep the database on a named volume"
    )


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Take the store's lock for the call and turn SQLite errors into StoreError."""

    @functools.wraps(method)
    def wrapper(self: SQLiteStore, *args: Any, **kwargs: Any) -> T:
        with self.lock:
            try:
                return method(self, *args, **kwargs)
            except self.database_errors as err:
                raise StoreError(f"{self.where}: {self.describe(err)}") from None

    return wrapper


def _public_methods_guarded(cls: type[T]) -> type[T]:
    """Guard the class's own public methods and those of the store's parts it takes in."""
    parts = [k for k in reversed(cls.__mro__) if k is cls or vars(k).get("_store_part")]
    for klass in parts:
        for name, value in list(vars(klass).items()):
            if callable(value) and not name.startswith("_") and name not in _UNGUARDED:
                setattr(cls, name, _guarded(value))
    return cls


_UNGUARDED = frozenset({"transaction", "iter_subscribers"})


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def unix(moment: dt.datetime) -> int:
    """A delivery row's settle time: whole seconds, as small as a time gets in SQLite."""
    return int(moment.timestamp())


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def suppression_hash(email: str) -> str:
    return hashlib.sha256(f"digest-suppression:{email.lower()}".encode()).hexdigest()


def _connect(path: Path, busy_seconds: float) -> sqlite3.Connection:
    db = sqlite3.connect(
        str(path), isolation_level=None, timeout=busy_seconds, check_same_thread=False
    )
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
    return db


@_public_methods_guarded
class SQLiteStore(Suppressions, FailedEvents, SigningKeyRecord):
    # what the engine raises, and how a message names the database (PostgresStore differs)
    database_errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    @property
    def where(self) -> str:
        return str(self.path)

    def describe(self, err: Exception) -> str:
        assert isinstance(err, sqlite3.Error)
        return describe(err, self.busy_seconds, self.path)

    def __init__(self, path: Path | str, *, busy_seconds: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_seconds = busy_seconds
        self.lock = threading.RLock()
        self.inbox_path = self.path.with_name(self.path.name + "-inbox")
        self._inbox: sqlite3.Connection | None = None
        self._list_id: str | None = None
        self._keys: dict[str, int] = {}
        new = not self.path.is_file() or self.path.stat().st_size == 0
        if new and not self.path.parent.is_dir():
            # a mistyped path makes no folders and no empty list: say what is missing
            raise StoreError(
                f"{self.path}: the folder {self.path.parent} does not exist (check "
                "delivery.database, or create the folder for a new list)"
            )
        # a new list is made under a lock beside it: processes started together (serve
        # workers, deliver) wait for the first to make it, rather than finding it half-made
        with self._creating() if new else contextlib.nullcontext():
            if self.path.is_file() and self.path.stat().st_size == 0 and not self._wal_has_data():
                raise StoreError(
                    f"{self.path}: an empty file, not a digest database (delete it to start a new list)"
                )
            try:
                self.db = _connect(self.path, busy_seconds)
                self._migrate()
                self.db.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as err:
                raise StoreError(f"{self.path}: {describe(err, busy_seconds, self.path)}") from None

    @contextlib.contextmanager
    def _creating(self) -> Iterator[None]:
        import fcntl

        lock_path = self.path.with_name(self.path.name + "-lock")
        try:
            handle = open(lock_path, "a")  # noqa: SIM115 - held for the block below
        except PermissionError as err:
            raise StoreError(
                f"{lock_path}: cannot create ({err.strerror}); {not_writable(self.path.parent)}"
            ) from None
        except OSError as err:
            raise StoreError(f"{lock_path}: cannot create ({err.strerror})") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _wal_has_data(self) -> bool:
        wal = self.path.with_name(self.path.name + "-wal")
        return wal.is_file() and wal.stat().st_size > 0

    def close(self) -> None:
        self.db.close()
        if self._inbox is not None:
            self._inbox.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
                raise
            else:
                try:
                    self.db.execute("COMMIT")
                except sqlite3.Error:
                    with contextlib.suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                    raise

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: made by a newer digest (schema {version}); upgrade digest"
            )
        if version == len(MIGRATIONS):
            return
        self.db.execute("PRAGMA foreign_keys=OFF")  # tables are rebuilt in place
        for number in range(version, len(MIGRATIONS)):
            with self.transaction() as db:
                # read again under the write lock: another process opening the same new
                # database at the same moment may have applied this step already
                if db.execute("PRAGMA user_version").fetchone()[0] > number:
                    continue
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def list_identity(self) -> str:
        """This list's random identity, part of everything its tokens sign."""
        if self._list_id is None:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'list_id'").fetchone()
            self._list_id = str(row["value"])
        return self._list_id

    def _key(self, slug: str) -> int:
        """The issue's small integer key in the delivery ledger (-1 for an unknown slug,
        which matches no row). Keys never change, so they are kept once found."""
        key = self._keys.get(slug)
        if key is None:
            row = self.db.execute("SELECT key FROM issues WHERE slug = ?", (slug,)).fetchone()
            if row is None:
                return -1
            key = self._keys[slug] = int(row["key"])
        return key

    # --- subscribers -------------------------------------------------------------------

    @staticmethod
    def _subscriber(row: sqlite3.Row) -> Subscriber:
        return Subscriber(
            row["id"], row["uid"], row["email"], row["name"], row["status"],
            json.loads(row["attributes"] or "{}"), row["created_at"], row["updated_at"],
        )  # fmt: skip

    def upsert_subscribers(
        self, rows: Iterable[SubscriberRow], *, resubscribe: bool
    ) -> UpsertReport:
        """Add or update subscribers in one transaction, reading ``rows`` as a stream.

        A row may carry its number in the source (a fourth element), for the report. An
        address seen twice in the same call is merged into its first row: the first name
        given wins, attributes are combined, and it is counted once."""
        report = UpsertReport()
        now = stamp(now_utc())
        # a large list touches every page of three indexes: a bigger page cache for the
        # length of the import keeps that off the disk (BENCHMARKS.md)
        self.db.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        self.db.execute(f"PRAGMA temp.cache_size = -{IMPORT_CACHE_KIB // 2}")
        try:
            return self._upsert(rows, resubscribe, report, now)
        finally:
            self.db.execute("PRAGMA cache_size = -2000")
            self.db.execute("PRAGMA temp.cache_size = -2000")

    def _upsert(
        self, rows: Iterable[SubscriberRow], resubscribe: bool, report: UpsertReport, now: str
    ) -> UpsertReport:
        with self.transaction() as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS upsert_seen (email TEXT PRIMARY KEY)")
            db.execute("DELETE FROM upsert_seen")
            suppressions = db.execute("SELECT EXISTS (SELECT 1 FROM suppressions)").fetchone()[0]
            for chunk in _chunks(rows, UPSERT_CHUNK):
                self._upsert_chunk(db, chunk, resubscribe, bool(suppressions), report, now)
            db.execute("DELETE FROM upsert_seen")
        return report

    def _upsert_chunk(
        self,
        db: sqlite3.Connection,
        chunk: list[SubscriberRow],
        resubscribe: bool,
        suppressions: bool,
        report: UpsertReport,
        now: str,
    ) -> None:
        """A chunk of rows in a handful of statements: the addresses looked up together,
        then inserts and updates with executemany."""
        fresh: dict[str, tuple[str | None, dict[str, str], int]] = {}
        later: list[tuple[str, str | None, dict[str, str]]] = []  # seen in an earlier row
        earlier = self._known(db, "upsert_seen", "email", [r[0] for r in chunk])
        for row in chunk:
            email, name, attributes = row[0], row[1], row[2]
            if email in earlier or email in fresh:
                later.append((email, name, attributes))
            else:
                fresh[email] = (name, attributes, row[3] if len(row) == 4 else 0)
        db.executemany("INSERT INTO upsert_seen (email) VALUES (?)", ((e,) for e in fresh))
        if suppressions:
            hashes = {suppression_hash(email): email for email in fresh}
            for hashed in self._known(db, "suppressions", "hash", list(hashes)):
                email = hashes[hashed]
                if not resubscribe:
                    report.suppressed.append((fresh.pop(email)[2], email))
                    continue
                db.execute("DELETE FROM suppressions WHERE hash = ?", (hashed,))
        existing = {
            r["email"]: r
            for r in db.execute(
                "SELECT id, email, name, status, attributes FROM subscribers"
                " WHERE email IN (SELECT value FROM json_each(?))",
                (json.dumps(list(fresh)),),
            )
        }
        inserts: list[tuple[str | None, ...]] = []
        updates: list[tuple[object, ...]] = []
        for email, (name, attributes, _) in fresh.items():
            found = existing.get(email)
            if found is None:
                attrs = json.dumps(attributes, sort_keys=True, ensure_ascii=False)
                inserts.append((new_uid(), email, name or None, attrs, now, now))
                continue
            if found["status"] != ACTIVE and not resubscribe:
                report.kept += 1
                continue
            new_name = name if name else found["name"]
            merged = json.loads(found["attributes"] or "{}") | attributes
            new_attrs = json.dumps(merged, sort_keys=True, ensure_ascii=False)
            if (new_name, new_attrs, ACTIVE) == (
                found["name"],
                found["attributes"],
                found["status"],
            ):
                report.unchanged += 1
                continue
            updates.append((new_name, new_attrs, now, found["id"]))
        db.executemany(
            "INSERT INTO subscribers (uid, email, name, status, attributes, created_at, updated_at)"
            " VALUES (?, ?, ?, 'active', ?, ?, ?)",
            inserts,
        )
        db.executemany(
            "UPDATE subscribers SET name = ?, attributes = ?, status = 'active', updated_at = ?"
            " WHERE id = ?",
            updates,
        )
        report.added += len(inserts)
        report.updated += len(updates)
        for email, name, attributes in later:
            self._merge_duplicate(db, report, email, name, attributes, now)

    @staticmethod
    def _known(db: sqlite3.Connection, table: str, column: str, values: list[str]) -> set[str]:
        """Which of ``values`` are in ``table.column``."""
        query = f"SELECT {column} FROM {table} WHERE {column} IN (SELECT value FROM json_each(?))"
        return {row[0] for row in db.execute(query, (json.dumps(values),))}

    @staticmethod
    def _merge_duplicate(
        db: sqlite3.Connection,
        report: UpsertReport,
        email: str,
        name: str | None,
        attributes: dict[str, str],
        now: str,
    ) -> None:
        """A second row for an address already handled in this call. Its first row left
        it active (added, updated or unchanged) or not (kept, or forgotten: no row);
        only an active one takes the merge."""
        row = db.execute(
            "SELECT id, name, status, attributes, updated_at FROM subscribers WHERE email = ?",
            (email,),
        ).fetchone()
        if row is None or row["status"] != ACTIVE:
            return
        new_name = row["name"] or name
        new_attrs = json.dumps(
            json.loads(row["attributes"] or "{}") | attributes, sort_keys=True, ensure_ascii=False
        )
        if (new_name, new_attrs) == (row["name"], row["attributes"]):
            return
        db.execute(
            "UPDATE subscribers SET name = ?, attributes = ?, updated_at = ? WHERE id = ?",
            (new_name, new_attrs, now, row["id"]),
        )
        if row["updated_at"] != now:  # its first row had left it unchanged
            report.unchanged -= 1
            report.updated += 1

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

    def unsubscribe_uid(self, uid: str) -> bool:
        """Active -> unsubscribed; any other status (bounced, complained) stays."""
        with self.transaction() as db:
            return self._unsubscribe(db, [(uid, "manual")]) > 0

    @staticmethod
    def _unsubscribe(db: sqlite3.Connection, requests: list[tuple[str, str]]) -> int:
        """Unsubscribe each (uid, channel) still active, with an event saying how."""
        when = stamp(now_utc())
        channels = dict(requests)
        rows = db.execute(
            "SELECT id, uid, email FROM subscribers"
            " WHERE status = 'active' AND uid IN (SELECT value FROM json_each(?))",
            (json.dumps(list(channels)),),
        ).fetchall()
        if not rows:
            return 0
        db.executemany(
            INSERT_EVENT,
            [
                (f"unsubscribe:{r['uid']}:{when}", channels[r["uid"]], "unsubscribe", r["email"],
                 r["id"], None, None, f"by {channels[r['uid']]}", when, when)
                for r in rows
            ],
        )  # fmt: skip
        return db.execute(
            "UPDATE subscribers SET status = 'unsubscribed', updated_at = ?"
            " WHERE status = 'active' AND id IN (SELECT value FROM json_each(?))",
            (when, json.dumps([r["id"] for r in rows])),
        ).rowcount

    # --- the inbox: unsubscribe requests that never wait on the main database ---------------

    def _inbox_db(self) -> sqlite3.Connection:
        if self._inbox is None:
            self._inbox = _connect(self.inbox_path, 5.0)
            self._inbox.executescript(INBOX_SCHEMA)
            with contextlib.suppress(sqlite3.OperationalError):  # an inbox from before channels
                self._inbox.execute(
                    "ALTER TABLE unsubscribes ADD COLUMN channel TEXT NOT NULL DEFAULT 'link'"
                )
        return self._inbox

    def request_unsubscribe(self, uid: str, channel: str = "link") -> None:
        """Record an unsubscribe durably in the inbox; applied by apply_inbox. ``channel``
        says how it came: one-click, link (the page's button), mailto."""
        inbox = self._inbox_db()
        inbox.execute(
            "INSERT INTO unsubscribes (uid, received_at, channel) VALUES (?, ?, ?)",
            (uid, stamp(now_utc()), channel),
        )

    def _inbox_pending(self) -> tuple[int, list[tuple[str, str]]]:
        """(the last request's id, the (uid, channel) asked for) or (0, []) when none waits."""
        if self._inbox is None and not self.inbox_path.is_file():
            return 0, []
        rows = (
            self._inbox_db()
            .execute("SELECT id, uid, channel FROM unsubscribes ORDER BY id")
            .fetchall()
        )
        return (rows[-1]["id"], [(r["uid"], r["channel"]) for r in rows]) if rows else (0, [])

    def _inbox_done(self, last: int) -> None:
        if last:
            self._inbox_db().execute("DELETE FROM unsubscribes WHERE id <= ?", (last,))

    def receive_events(self, events: list[Event], replay_key: str | None = None) -> bool:
        """Record provider events durably in the inbox, with the request's replay key in
        the same transaction; False (and nothing recorded) when the key was seen before."""
        inbox = self._inbox_db()
        with self.lock:
            inbox.execute("BEGIN IMMEDIATE")
            try:
                if replay_key is not None:
                    inbox.execute(
                        "INSERT INTO seen (key, seen_at) VALUES (?, ?)",
                        (replay_key, stamp(now_utc())),
                    )
                inbox.executemany(
                    "INSERT INTO events (event) VALUES (?)", [(e.to_json(),) for e in events]
                )
            except sqlite3.IntegrityError:
                inbox.execute("ROLLBACK")
                return False
            except BaseException:
                inbox.execute("ROLLBACK")
                raise
            inbox.execute("COMMIT")
        return True

    def _inbox_events(self) -> tuple[int, list[Event]]:
        if self._inbox is None and not self.inbox_path.is_file():
            return 0, []
        rows = (
            self._inbox_db()
            .execute("SELECT id, event FROM events ORDER BY id LIMIT ?", (EVENTS_PER_APPLY,))
            .fetchall()
        )
        return (rows[-1]["id"], [Event.from_json(r["event"]) for r in rows]) if rows else (0, [])

    def apply_inbox(self, soft_limit: int = 3, soft_days: float = 30) -> int:
        """Apply waiting unsubscribe requests and provider events to the subscriber list;
        the number of subscribers changed. A crash between the two steps applies them
        again next time, harmlessly (events are stored once, by fingerprint)."""
        changed = 0
        while True:  # a chunk per transaction, so a backlog never holds the lock for long
            last, uids = self._inbox_pending()
            last_event, events = self._inbox_events()
            last_signup, signups = self._inbox_rows("signups", "email, name")
            last_confirm, confirms = self._inbox_rows("confirms", "uid")
            if not uids and not events and not signups and not confirms:
                return changed
            with self.transaction() as db:
                changed += self._unsubscribe(db, uids) if uids else 0
                changed += self._apply_events(db, events, soft_limit, soft_days)
                self._apply_signups(db, signups)
                changed += self._apply_confirms(db, [row["uid"] for row in confirms])
            self._inbox_done(last)
            for table, done in (
                ("events", last_event),
                ("signups", last_signup),
                ("confirms", last_confirm),
            ):
                if done:
                    self._inbox_db().execute(f"DELETE FROM {table} WHERE id <= ?", (done,))

    def _inbox_rows(self, table: str, columns: str) -> tuple[int, list[sqlite3.Row]]:
        """(the last row's id, the rows) waiting in one of the inbox's tables."""
        if self._inbox is None and not self.inbox_path.is_file():
            return 0, []
        rows = (
            self._inbox_db()
            .execute(f"SELECT id, {columns} FROM {table} ORDER BY id LIMIT ?", (EVENTS_PER_APPLY,))
            .fetchall()
        )
        return (rows[-1]["id"], rows) if rows else (0, [])

    @staticmethod
    def _apply_events(
        db: sqlite3.Connection, events: list[Event], soft_limit: int, soft_days: float
    ) -> int:
        """Store each event once; suppress on hard bounces, complaints and provider
        unsubscribes, and on the soft_limit-th soft bounce within soft_days."""
        changed = 0
        received = stamp(now_utc())
        for event in events:
            # each event in a savepoint: one that fails is set aside, the rest go on
            db.execute("SAVEPOINT event")
            try:
                changed += SQLiteStore._apply_event(db, event, received, soft_limit, soft_days)
            except Exception as err:
                db.execute("ROLLBACK TO SAVEPOINT event")
                set_aside(db, event, err, received)
            db.execute("RELEASE SAVEPOINT event")
        return changed

    @staticmethod
    def _apply_event(
        db: sqlite3.Connection, event: Event, received: str, soft_limit: int, soft_days: float
    ) -> int:
        """Store one event once, and change its subscriber's status as it says."""
        subscriber = db.execute(
            "SELECT id, status FROM subscribers WHERE email = ?", (event.email,)
        ).fetchone()
        issue = event.issue
        if issue is None and subscriber is not None and event.message_id:
            found = db.execute(
                "SELECT i.slug FROM deliveries d JOIN issues i ON i.key = d.issue"
                " WHERE d.subscriber_id = ? AND d.message_id IN (?, ?)",
                (subscriber["id"], event.message_id, f"<{event.message_id.strip('<>')}>"),
            ).fetchone()
            issue = found["slug"] if found else None
        stored = db.execute(
            INSERT_EVENT,
            (event.fingerprint, event.provider, event.kind, event.email,
             subscriber["id"] if subscriber else None, issue, event.message_id,
             event.detail[:500], stamp(event.occurred_at), received),
        ).rowcount  # fmt: skip
        if not stored or subscriber is None:
            return 0  # seen before, or nobody on the list: kept, never an error
        status = subscriber["status"]
        new = SUPPRESSING.get(event.kind)
        if event.kind == SOFT_BOUNCE and status == ACTIVE:
            since = stamp(event.occurred_at - dt.timedelta(days=soft_days))
            count = db.execute(
                "SELECT COUNT(*) FROM events WHERE email = ? AND kind = 'soft_bounce'"
                " AND occurred_at >= ?",
                (event.email, since),
            ).fetchone()[0]
            new = "bounced" if count >= soft_limit else None
        if new is None or status == new or (status != ACTIVE and new != "complained"):
            return 0  # a complaint outranks any other state; the rest only end 'active'
        db.execute(
            "UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ?",
            (new, received, subscriber["id"]),
        )
        return 1

    # --- signups: double opt-in ---------------------------------------------------------

    def request_signup(self, email: str, name: str | None) -> None:
        """Record a signup from the site in the inbox; apply_inbox decides what it means."""
        self._inbox_db().execute(
            "INSERT INTO signups (email, name, received_at) VALUES (?, ?, ?)",
            (email, name, stamp(now_utc())),
        )

    def request_confirm(self, uid: str) -> None:
        """Record a confirmation (its token already verified) in the inbox."""
        self._inbox_db().execute(
            "INSERT INTO confirms (uid, received_at) VALUES (?, ?)", (uid, stamp(now_utc()))
        )

    @staticmethod
    def _apply_signups(db: sqlite3.Connection, rows: list[sqlite3.Row]) -> None:
        """A confirmation becomes due for each new address, or for one that asked before
        but was not mailed within the hour. Active subscribers get nothing (they are
        subscribed already), nor does anyone who complained: no mail at all to them."""
        now = now_utc()
        for row in rows:
            found = db.execute(
                "SELECT status FROM subscribers WHERE email = ?", (row["email"],)
            ).fetchone()
            if found is not None and found["status"] in (ACTIVE, "complained"):
                continue
            mailed_since = stamp(now - CONFIRM_EVERY)
            db.execute(
                "INSERT INTO signups (uid, email, name, requested_at, due) VALUES (?, ?, ?, ?, 1)"
                " ON CONFLICT (email) DO UPDATE SET name = coalesce(excluded.name, signups.name),"
                " requested_at = excluded.requested_at,"
                " attempts = CASE WHEN signups.due = 1 THEN signups.attempts ELSE 0 END,"
                " due = CASE WHEN signups.sent_at IS NULL OR signups.sent_at < ? THEN 1"
                " ELSE signups.due END",
                (new_uid(), row["email"], row["name"], stamp(now), mailed_since),
            )

    @staticmethod
    def _apply_confirms(db: sqlite3.Connection, uids: list[str]) -> int:
        """Each confirmed signup joins the list as active: confirming is the explicit act
        that resubscribes someone who had unsubscribed or bounced (or was forgotten);
        someone who complained stays as they are."""
        changed = 0
        now = stamp(now_utc())
        for uid in uids:
            signup = db.execute("SELECT email, name FROM signups WHERE uid = ?", (uid,)).fetchone()
            if signup is None:
                continue  # confirmed already, or purged: nothing to do
            db.execute("DELETE FROM signups WHERE uid = ?", (uid,))
            email = signup["email"]
            found = db.execute(
                "SELECT status FROM subscribers WHERE email = ?", (email,)
            ).fetchone()
            if found is not None and found["status"] == "complained":
                continue
            if found is None:
                db.execute(
                    "INSERT INTO subscribers (uid, email, name, status, attributes, created_at,"
                    " updated_at) VALUES (?, ?, ?, 'active', '{}', ?, ?)",
                    (new_uid(), email, signup["name"], now, now),
                )
            else:
                db.execute(
                    "UPDATE subscribers SET status = 'active', name = coalesce(?, name),"
                    " updated_at = ? WHERE email = ?",
                    (signup["name"], now, email),
                )
            db.execute("DELETE FROM suppressions WHERE hash = ?", (suppression_hash(email),))
            changed += 1
        return changed

    @staticmethod
    def _signup(row: sqlite3.Row) -> Signup:
        sent = row["sent_at"]
        return Signup(
            row["uid"], row["email"], row["name"], parse_stamp(row["requested_at"]),
            parse_stamp(sent) if sent else None,
        )  # fmt: skip

    def claim_confirmations(self, now: dt.datetime, limit: int) -> list[Signup]:
        """Signups whose confirmation mail is due, marked sent in the same transaction (so
        two app processes never mail one person twice)."""
        if not self.confirmations_due():
            return []  # the usual case: no write, no lock taken
        with self.transaction() as db:
            rows = db.execute(
                "SELECT * FROM signups WHERE due = 1 ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
            db.executemany(
                "UPDATE signups SET due = 0, sent_at = ?, attempts = attempts + 1 WHERE uid = ?",
                [(stamp(now), row["uid"]) for row in rows],
            )
        return [replace(self._signup(row), sent_at=now) for row in rows]

    def confirmations_due(self) -> bool:
        return self.db.execute("SELECT 1 FROM signups WHERE due = 1 LIMIT 1").fetchone() is not None

    def confirmation_failed(self, uid: str, error: str, retry: bool) -> None:
        """A confirmation mail that did not go: due again (up to CONFIRM_ATTEMPTS tries)
        when ``retry``, and never counted against the hourly limit."""
        with self.transaction() as db:
            db.execute(
                "UPDATE signups SET last_error = ?, sent_at = NULL,"
                " due = CASE WHEN ? AND attempts < ? THEN 1 ELSE 0 END WHERE uid = ?",
                (error[:500], retry, CONFIRM_ATTEMPTS, uid),
            )

    def signups(self) -> list[Signup]:
        return [self._signup(r) for r in self.db.execute("SELECT * FROM signups ORDER BY id")]

    def purge_signups(self, before: dt.datetime) -> int:
        """Forget signups last asked for before ``before`` (their links have expired)."""
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM signups WHERE requested_at < ?", (stamp(before),)
            ).rowcount

    def inbox_waiting(self) -> int:
        return len(self._inbox_pending()[1]) + len(self._inbox_events()[1])

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
            found = self.subscriber_page(status, last, page)
            if not found:
                return
            yield from found
            last = found[-1].id

    def subscriber_page(self, status: str | None, after: int, size: int) -> list[Subscriber]:
        if status:
            rows = self.db.execute(
                "SELECT * FROM subscribers WHERE status = ? AND id > ? ORDER BY id LIMIT ?",
                (status, after, size),
            ).fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM subscribers WHERE id > ? ORDER BY id LIMIT ?", (after, size)
            ).fetchall()
        return [self._subscriber(row) for row in rows]

    def count_subscribers(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status"
            " UNION ALL SELECT 'pending', COUNT(*) FROM signups HAVING COUNT(*) > 0"
        ).fetchall()
        return {row["status"]: row["n"] for row in rows}

    # --- schedule ----------------------------------------------------------------------

    @staticmethod
    def _issue(row: sqlite3.Row) -> ScheduledIssue:
        return ScheduledIssue(
            row["slug"], row["path"], row["source_hash"], parse_stamp(row["send_at"]), row["status"],
            row["rendered"], row["error"], row["lease_owner"], row["version"],
        )  # fmt: skip

    def save_schedule(self, issue: ScheduledIssue) -> None:
        """Insert, or replace the frozen render and time of an issue (keeping its ledger);
        either way the issue gets a new version, so a delivery under way notices."""
        now = stamp(now_utc())
        with self.transaction() as db:
            db.execute(
                "INSERT INTO issues (slug, path, source_hash, send_at, status, rendered, error,"
                " created_at, key) VALUES (?, ?, ?, ?, ?, '', NULL, ?,"
                " (SELECT coalesce(max(key), 0) + 1 FROM issues))"
                " ON CONFLICT (slug) DO UPDATE SET path = excluded.path, source_hash = excluded.source_hash,"
                " send_at = excluded.send_at, status = excluded.status, error = NULL,"
                " version = issues.version + 1",
                (
                    issue.slug,
                    issue.path,
                    issue.source_hash,
                    stamp(issue.send_at),
                    issue.status,
                    now,
                ),
            )
            db.execute(
                "INSERT INTO renders (slug, rendered, web) VALUES (?, ?, ?)"
                " ON CONFLICT (slug) DO UPDATE SET rendered = excluded.rendered, web = excluded.web",
                (issue.slug, issue.rendered_json, issue.web_json),
            )

    def get_schedule(self, slug: str) -> ScheduledIssue | None:
        row = self.db.execute(f"{ISSUE_SELECT} WHERE i.slug = ?", (slug,)).fetchone()
        return self._issue(row) if row else None

    def list_schedules(self) -> list[ScheduledIssue]:
        return [
            self._issue(r) for r in self.db.execute(f"{ISSUE_SELECT} ORDER BY i.send_at, i.slug")
        ]

    def cancel_schedule(self, slug: str) -> bool:
        """Cancel an issue that is not yet sent, even one being delivered right now: the
        process delivering it stops before its next batch."""
        with self.transaction() as db:
            return (
                db.execute(
                    "UPDATE issues SET status = 'cancelled', version = version + 1 WHERE slug = ?"
                    " AND status IN ('scheduled', 'sending', 'stopped', 'incomplete')",
                    (slug,),
                ).rowcount
                > 0
            )

    def has_started(self, slug: str) -> bool:
        row = self.db.execute("SELECT started_at FROM issues WHERE slug = ?", (slug,)).fetchone()
        return bool(row and row["started_at"])

    def _published(
        self, where: str, args: tuple[object, ...], scheduled_too: bool
    ) -> list[Published]:
        rows = self.db.execute(
            "SELECT i.slug, r.web, coalesce(i.started_at, i.send_at) AS at"
            " FROM issues i JOIN renders r ON r.slug = i.slug WHERE r.web != ''"
            " AND (i.started_at IS NOT NULL OR (? AND i.status = 'scheduled'))"
            f" {where} ORDER BY at DESC, i.slug DESC",
            (scheduled_too, *args),
        )
        return [Published(r["slug"], r["web"], parse_stamp(r["at"])) for r in rows]

    def published_issues(self, *, scheduled_too: bool) -> list[Published]:
        """The archive, newest first: every issue whose sending has begun (or that is
        scheduled, with ``scheduled_too``), and that has a web version."""
        return self._published("", (), scheduled_too)

    def published_issue(self, slug: str, *, scheduled_too: bool) -> Published | None:
        found = self._published("AND i.slug = ?", (slug,), scheduled_too)
        return found[0] if found else None

    def due_issues(self, now: dt.datetime) -> list[ScheduledIssue]:
        rows = self.db.execute(
            f"{ISSUE_SELECT} WHERE i.status IN ('scheduled', 'sending') AND i.send_at <= ?"
            " ORDER BY i.send_at",
            (stamp(now),),
        )
        return [self._issue(r) for r in rows]

    def set_issue_status(
        self, slug: str, status: str, error: str | None = None, *, version: int | None = None
    ) -> bool:
        """Set an issue's status; with ``version``, only if it is still that version and
        being sent (a delivery never overrides what the operator did meanwhile)."""
        finished = stamp(now_utc()) if status in ("sent", "stopped", "incomplete") else None
        guard = " AND version = ? AND status = 'sending'" if version is not None else ""
        values: tuple[object, ...] = (status, error, finished, slug)
        if version is not None:
            values += (version,)
        with self.transaction() as db:
            return (
                db.execute(
                    "UPDATE issues SET status = ?, error = ?, finished_at = COALESCE(?, finished_at)"
                    " WHERE slug = ?" + guard,
                    values,
                ).rowcount
                > 0
            )

    # --- delivery ----------------------------------------------------------------------

    @staticmethod
    def _still_due(row: sqlite3.Row | None, version: int, now: dt.datetime) -> str | None:
        """Why an issue row may not be sent now, or None when it may."""
        if row is None:
            return "it is no longer scheduled"
        if row["status"] not in ("scheduled", "sending"):
            return f"it was {row['status']} meanwhile"
        if row["version"] != version:
            return "it was scheduled again meanwhile"
        if parse_stamp(row["send_at"]) > now:
            return "it is not due yet"
        return None

    def claim_issue(
        self, slug: str, owner: str, now: dt.datetime, lease: dt.timedelta, version: int
    ) -> str | None:
        """Take the issue for ``owner`` if it is still due at ``version`` and no other live
        owner holds it; returns why not, or None when claimed."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT lease_owner, lease_until, status, version, send_at FROM issues WHERE slug = ?",
                (slug,),
            ).fetchone()
            reason = self._still_due(row, version, now)
            if reason is not None:
                return reason
            holder, until = row["lease_owner"], row["lease_until"]
            if holder and holder != owner:
                if until and parse_stamp(until) > now and owner_alive(holder):
                    return f"already being delivered by {holder}"
                if owner_running(holder):  # its lease ran out, but it is still at work
                    return f"already being delivered by {holder} (that process is running)"
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

    def _batch_recipients(self, key: int, batch_id: int) -> tuple[BatchRecipient, ...]:
        rows = self.db.execute(
            "SELECT d.subscriber_id, s.uid, s.email, s.name, d.attempts FROM deliveries d"
            " JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.issue = ? AND d.status = 'inflight' AND d.batch_id = ?"
            " ORDER BY d.subscriber_id",
            (key, batch_id),
        ).fetchall()
        return tuple(
            BatchRecipient(r["subscriber_id"], r["uid"], r["email"], r["name"], r["attempts"])
            for r in rows
        )

    def _stranded(self, slug: str) -> list[int]:
        """In-flight batches nobody is answering for: with one process per issue (the
        lease), every one that is left when a process takes the issue."""
        return [
            r["id"]
            for r in self.db.execute(
                "SELECT id FROM batches WHERE issue = ? AND status = 'inflight' ORDER BY id",
                (slug,),
            )
        ]

    def inflight_batches(self, slug: str) -> list[ClaimedBatch]:
        ids = self._stranded(slug)
        key = self._key(slug)
        return [
            ClaimedBatch(i, self.batch_key(slug, i), self._batch_recipients(key, i)) for i in ids
        ]

    def batch_key(self, slug: str, batch_id: int) -> str:
        """The idempotency key of a batch: the same batch always gets the same key, and
        no other list's batch ever does."""
        return f"digest:{self.list_identity()[:12]}:{slug}:batch-{batch_id}"

    def mark_unknown(self, batch_ids: list[int], *, sequential: bool = False) -> int:
        """Settle batches stranded in flight: their recipients may or may not have been
        sent, so they become ``unknown``. With ``sequential`` (a provider that sends a
        batch one message at a time, in subscriber order, recording each answer before
        the next message), only the first recipient still in flight can have been sent;
        the ones after it never were, and go back to pending."""
        changed = 0
        now = now_utc()
        when, seconds = stamp(now), unix(now)
        with self.transaction() as db:
            for batch_id in batch_ids:
                found = db.execute(
                    "SELECT i.key FROM batches b JOIN issues i ON i.slug = b.issue WHERE b.id = ?",
                    (batch_id,),
                ).fetchone()
                key = found["key"] if found else -1
                if sequential:
                    first = db.execute(
                        "SELECT min(subscriber_id) FROM deliveries"
                        " WHERE issue = ? AND status = 'inflight' AND batch_id = ?",
                        (key, batch_id),
                    ).fetchone()[0]
                    db.execute(
                        "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?"
                        " WHERE issue = ? AND status = 'inflight' AND batch_id = ? AND subscriber_id > ?",
                        (when, seconds, key, batch_id, first if first is not None else -1),
                    )
                changed += db.execute(
                    "UPDATE deliveries SET status = 'unknown', updated_at = ?,"
                    " last_error = 'sent when digest stopped; the answer was lost'"
                    " WHERE issue = ? AND status = 'inflight' AND batch_id = ?",
                    (seconds, key, batch_id),
                ).rowcount
                db.execute("UPDATE batches SET status = 'done' WHERE id = ?", (batch_id,))
        return changed

    def _reopen(self, slug: str, now: dt.datetime, status: str, reset: str) -> int:
        """Recipients in ``status`` go back to pending (``reset``: more columns to set),
        and a finished issue becomes one being sent again."""
        with self.transaction() as db:
            changed = db.execute(
                f"UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?{reset}"
                " WHERE issue = ? AND status = ?",
                (stamp(now), unix(now), self._key(slug), status),
            ).rowcount
            if changed:
                db.execute(
                    "UPDATE issues SET status = 'sending', error = NULL WHERE slug = ?"
                    " AND status IN ('sent', 'stopped', 'incomplete')",
                    (slug,),
                )
            return changed

    def reopen_unknown(self, slug: str, now: dt.datetime) -> int:
        """Recipients whose outcome was lost are sent again (the operator's choice)."""
        return self._reopen(slug, now, "unknown", "")

    def reopen_failed(self, slug: str, now: dt.datetime) -> int:
        """Recipients whose attempts ran out get a fresh set of attempts."""
        return self._reopen(slug, now, "failed", ", attempts = 0")

    def next_batch(
        self, slug: str, size: int, now: dt.datetime, version: int
    ) -> ClaimedBatch | None:
        """Form the next batch and mark it in flight, atomically: due retries first, then
        the next active subscribers after the issue's cursor. Unsubscribe requests waiting
        in the inbox are applied first and subscribers who are no longer active are
        skipped, so an unsubscribe counts for every later batch. Raises IssueChanged when
        the issue was unscheduled or rescheduled since ``version``."""
        when, seconds, key = stamp(now), unix(now), self._key(slug)
        last, uids = self._inbox_pending()
        with self.transaction() as db:
            row = db.execute(
                "SELECT status, version, send_at FROM issues WHERE slug = ?", (slug,)
            ).fetchone()
            reason = self._still_due(row, version, now)
            if reason is not None:
                raise IssueChanged(reason)
            if uids:
                self._unsubscribe(db, uids)
            db.execute(
                "UPDATE deliveries SET status = 'skipped', updated_at = ? WHERE issue = ? AND status = 'pending'"
                " AND NOT EXISTS (SELECT 1 FROM subscribers s"
                " WHERE s.id = deliveries.subscriber_id AND s.status = 'active')",
                (seconds, key),
            )
            retries = db.execute(
                # by the status index: the planner, without statistics, would read the
                # issue's whole ledger by its key for every batch
                "SELECT d.subscriber_id, s.uid, s.email, s.name, d.attempts"
                " FROM deliveries d INDEXED BY deliveries_status"
                " JOIN subscribers s ON s.id = d.subscriber_id"
                " WHERE d.issue = ? AND d.status = 'pending' AND d.next_attempt_at <= ?"
                " ORDER BY d.next_attempt_at, d.subscriber_id LIMIT ?",
                (key, when, size),
            ).fetchall()
            chosen = [
                BatchRecipient(r["subscriber_id"], r["uid"], r["email"], r["name"], r["attempts"])
                for r in retries
            ]
            fresh: list[BatchRecipient] = []
            if len(chosen) < size:
                cursor = db.execute("SELECT cursor FROM issues WHERE slug = ?", (slug,)).fetchone()[
                    "cursor"
                ]
                rows = db.execute(
                    "SELECT id, uid, email, name FROM subscribers WHERE status = 'active' AND id > ? ORDER BY id LIMIT ?",
                    (cursor, size - len(chosen)),
                ).fetchall()
                fresh = [BatchRecipient(r["id"], r["uid"], r["email"], r["name"], 0) for r in rows]
                if rows:
                    db.execute(
                        "UPDATE issues SET cursor = ? WHERE slug = ?", (rows[-1]["id"], slug)
                    )
            if not chosen and not fresh:
                batch = None
            else:
                batch = self._open_batch(db, slug, key, now, chosen, fresh)
        self._inbox_done(last)
        return batch

    def _new_batch(self, db: Any, slug: str, now: dt.datetime) -> int:
        batch_id = db.execute(
            "INSERT INTO batches (issue, status, created_at) VALUES (?, 'inflight', ?)",
            (slug, stamp(now)),
        ).lastrowid
        assert batch_id is not None
        return int(batch_id)

    def _open_batch(
        self,
        db: sqlite3.Connection,
        slug: str,
        key: int,
        now: dt.datetime,
        chosen: list[BatchRecipient],
        fresh: list[BatchRecipient],
    ) -> ClaimedBatch:
        batch_id = self._new_batch(db, slug, now)
        seconds = unix(now)
        if chosen:  # due retries: rows that exist already
            db.execute(
                "UPDATE deliveries SET status = 'inflight', batch_id = ?, updated_at = ?"
                " WHERE issue = ? AND subscriber_id IN (SELECT value FROM json_each(?))",
                (batch_id, seconds, key, json.dumps([r.subscriber_id for r in chosen])),
            )
        db.executemany(
            "INSERT INTO deliveries (issue, subscriber_id, status, batch_id, updated_at) VALUES (?, ?, 'inflight', ?, ?)",
            [(key, r.subscriber_id, batch_id, seconds) for r in fresh],
        )
        members = tuple(sorted(chosen + fresh, key=lambda r: r.subscriber_id))
        return ClaimedBatch(batch_id, self.batch_key(slug, batch_id), members)

    def record(
        self,
        slug: str,
        batch_id: int,
        results: list[Result],
        owner: str,
        lease_until: dt.datetime,
        *,
        close: bool = True,
        provider: str = "",
    ) -> None:
        """Write each recipient's outcome and (with ``close``) close the batch, in one
        transaction. A recipient the provider ``rejected`` for good (a 5xx, an inactive or
        invalid address) is a hard bounce: suppressed at once, with an event saying why. Only recipients still in flight are written: an outcome recorded
        earlier (SMTP records each message as it is answered) is never counted twice.

        Recipients with the same outcome (a whole Mailgun batch shares one message id)
        are written with one statement; the rest one row each."""
        now = now_utc()
        when, seconds, key = stamp(now), unix(now), self._key(slug)
        groups: dict[tuple[str, str | None, str | None, str | None], list[int]] = {}
        for r in results:
            retry = stamp(r.next_attempt_at) if r.next_attempt_at else None
            groups.setdefault((r.status, r.message_id, r.error, retry), []).append(r.subscriber_id)
        single: list[tuple[object, ...]] = []
        rejected = {r.subscriber_id: r.error or "" for r in results if r.status == "rejected"}
        with self._outcomes_transaction(suppressing=bool(rejected)) as db:
            for (status, message_id, error, retry), ids in groups.items():
                if len(ids) == 1:
                    single.append(
                        (status, message_id, error, retry, seconds, key, ids[0], batch_id)
                    )
                    continue
                db.execute(
                    "UPDATE deliveries SET status = ?, message_id = COALESCE(?, message_id), last_error = ?,"
                    " attempts = attempts + 1, next_attempt_at = ?, updated_at = ?"
                    " WHERE issue = ? AND batch_id = ? AND status = 'inflight'"
                    " AND subscriber_id IN (SELECT value FROM json_each(?))",
                    (status, message_id, error, retry, seconds, key, batch_id, json.dumps(ids)),
                )
            if single:
                self._record_each(db, single)
            if rejected:
                self._hard_bounce(db, slug, provider, rejected, when)
            if not close:
                return
            db.execute("UPDATE batches SET status = 'done' WHERE id = ?", (batch_id,))
            self._renew_lease(db, slug, owner, lease_until)

    def _outcomes_transaction(self, suppressing: bool) -> contextlib.AbstractContextManager[Any]:
        """The transaction a batch's outcomes are written in: the store's usual one."""
        return self.transaction()

    def renew_lease(self, slug: str, owner: str, lease_until: dt.datetime) -> None:
        """The owner is alive and still delivering ``slug`` (its heartbeat)."""
        with self._outcomes_transaction(suppressing=False) as db:
            self._renew_lease(db, slug, owner, lease_until)

    @staticmethod
    def _renew_lease(db: Any, slug: str, owner: str, lease_until: dt.datetime) -> None:
        """The owner is still at work: its lease on the issue runs on."""
        db.execute(
            "UPDATE issues SET lease_until = ? WHERE slug = ? AND lease_owner = ?",
            (stamp(lease_until), slug, owner),
        )

    @staticmethod
    def _record_each(db: Any, rows: list[tuple[object, ...]]) -> None:
        """Outcomes one recipient each: (status, message id, error, retry at, settled,
        issue key, subscriber id, batch id)."""
        db.executemany(
            "UPDATE deliveries SET status = ?, message_id = COALESCE(?, message_id), last_error = ?,"
            " attempts = attempts + 1, next_attempt_at = ?, updated_at = ?"
            " WHERE issue = ? AND subscriber_id = ? AND batch_id = ? AND status = 'inflight'",
            rows,
        )

    @staticmethod
    def _hard_bounce(
        db: sqlite3.Connection, slug: str, provider: str, reasons: dict[int, str], when: str
    ) -> None:
        rows = db.execute(
            "SELECT id, email FROM subscribers WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(reasons)),),
        ).fetchall()
        db.executemany(
            INSERT_EVENT,
            [
                (f"sync:{slug}:{r['id']}", provider or "provider", "hard_bounce", r["email"],
                 r["id"], slug, None, reasons[r["id"]], when, when)
                for r in rows
            ],
        )  # fmt: skip
        db.execute(
            "UPDATE subscribers SET status = 'bounced', updated_at = ?"
            " WHERE status = 'active' AND id IN (SELECT value FROM json_each(?))",
            (when, json.dumps(list(reasons))),
        )

    def issue_event_counts(self, slug: str, issue_id: str | None = None) -> dict[str, int]:
        """Events recorded for an issue, by kind (``issue_id``: the ASCII id providers echo),
        and how many of them named an address not on the list ("not_on_the_list")."""
        rows = self.db.execute(
            "SELECT kind, COUNT(*) AS n, SUM(subscriber_id IS NULL) AS strangers FROM events"
            " WHERE issue IN (?, ?) GROUP BY kind",
            (slug, issue_id or slug),
        ).fetchall()
        counts = {r["kind"]: r["n"] for r in rows}
        strangers = sum(r["strangers"] or 0 for r in rows)
        return counts | ({"not_on_the_list": strangers} if strangers else {})

    def issue_events(
        self, slug: str, issue_id: str | None, kinds: tuple[str, ...]
    ) -> list[StoredEvent]:
        """The issue's events of the given kinds, oldest first."""
        rows = self.db.execute(
            "SELECT provider, kind, email, issue, message_id, detail, occurred_at FROM events"
            " WHERE issue IN (?, ?) AND kind IN (SELECT value FROM json_each(?))"
            " ORDER BY occurred_at, id",
            (slug, issue_id or slug, json.dumps(list(kinds))),
        ).fetchall()
        return [self._event(r) for r in rows]

    @staticmethod
    def _event(r: sqlite3.Row) -> StoredEvent:
        return StoredEvent(r["provider"], r["kind"], r["email"], r["issue"], r["message_id"],
                           r["detail"], parse_stamp(r["occurred_at"]))  # fmt: skip

    def engagement(self, slug: str, issue_id: str | None) -> tuple[int, list[tuple[str, int]]]:
        """Unique openers, and unique clickers per link, of an issue (tracking on)."""
        issues = (slug, issue_id or slug)
        opened = self.db.execute(
            "SELECT COUNT(DISTINCT email) FROM events WHERE issue IN (?, ?) AND kind = 'open'",
            issues,
        ).fetchone()[0]
        clicks = self.db.execute(
            "SELECT detail, COUNT(DISTINCT email) AS n FROM events"
            " WHERE issue IN (?, ?) AND kind = 'click' GROUP BY detail ORDER BY n DESC",
            issues,
        ).fetchall()
        return int(opened), [(r["detail"], r["n"]) for r in clicks]

    def issue_window(self, slug: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        """When the issue started going out, and when the next issue did (or None)."""
        row = self.db.execute("SELECT started_at FROM issues WHERE slug = ?", (slug,)).fetchone()
        if row is None or row["started_at"] is None:
            return None, None
        later = self.db.execute(
            "SELECT MIN(started_at) AS t FROM issues WHERE started_at > ? AND slug != ?",
            (row["started_at"], slug),
        ).fetchone()
        return parse_stamp(row["started_at"]), parse_stamp(later["t"]) if later["t"] else None

    def unsubscribes_between(self, start: dt.datetime, end: dt.datetime | None) -> dict[str, int]:
        """Unsubscribes through digest's own links and mailto, by channel, in a window."""
        rows = self.db.execute(
            "SELECT provider, COUNT(*) AS n FROM events WHERE kind = 'unsubscribe'"
            " AND issue IS NULL AND occurred_at >= ? AND occurred_at < ? GROUP BY provider",
            (stamp(start), stamp(end) if end else "9999"),
        )
        return {r["provider"]: r["n"] for r in rows}

    def delivery_timeline(self, slug: str) -> list[tuple[str, str, int]]:
        """(minute, status, count) of the issue's recipients, by when they were settled."""
        rows = self.db.execute(
            "SELECT strftime('%Y-%m-%dT%H:%M', updated_at, 'unixepoch') AS minute, status,"
            " COUNT(*) AS n FROM deliveries WHERE issue = ? GROUP BY minute, status ORDER BY minute",
            (self._key(slug),),
        )
        return [(r["minute"], r["status"], r["n"]) for r in rows]

    def events_for(self, email: str) -> list[StoredEvent]:
        """Everything recorded about one address, oldest first."""
        rows = self.db.execute(
            "SELECT provider, kind, email, issue, message_id, detail, occurred_at FROM events"
            " WHERE email = ? ORDER BY occurred_at, id",
            (email,),
        ).fetchall()
        return [self._event(r) for r in rows]

    def send_slot(self, count: int, rate: float, now: float) -> float | None:
        """When a batch of ``count`` may go so that every process on this store together
        stays under ``rate`` messages a second (Unix time); None when the process paces
        itself: on SQLite one process delivers an issue, and its own limiter suffices."""
        return None

    def next_retry_at(self, slug: str) -> dt.datetime | None:
        row = self.db.execute(
            "SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE issue = ? AND status = 'pending'",
            (self._key(slug),),
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
            (self._key(slug),),
        ).fetchone()[0]
        return int(ahead + open_rows)

    def delivery_counts(self, slug: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE issue = ? GROUP BY status",
            (self._key(slug),),
        )
        return {r["status"]: r["n"] for r in rows}

    def unknown_recipients(self, slug: str) -> list[str]:
        rows = self.db.execute(
            "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.issue = ? AND d.status = 'unknown' ORDER BY s.email",
            (self._key(slug),),
        )
        return [r["email"] for r in rows]

    def accepted_since(self, slug: str, since: dt.datetime) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE issue = ? AND status = 'accepted' AND updated_at >= ?",
            (self._key(slug), unix(since)),
        ).fetchone()
        return int(row[0])


def new_uid() -> str:
    """A subscriber's random identifier: 96 bits, URL-safe."""
    return secrets.token_urlsafe(12)


def owner_running(owner: str) -> bool:
    """Whether the lease's holder is a `digest` process running on this host now: then
    its lease is never taken over, however late its last renewal."""
    import socket

    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        command = Path(f"/proc/{pid_text}/cmdline").read_bytes()
    except OSError:
        return False  # gone (or no /proc here: the lease time decides)
    return b"digest" in command


def owner_alive(owner: str) -> bool:
    """Whether the process holding a lease still runs (known only on this host)."""
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
