"""The SQLite store's core: the connection, its transactions and migrations."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digest.errors import StoreError
from digest.store.common import (
    Database,
    _connect,
    describe,
    not_writable,
)
from digest.store.migrate import SCHEMA_VERSION, upgrade_sqlite
from digest.store.schema import INBOX_QUEUES, INBOX_SCHEMA


class StoreCore:
    """The SQLite database itself: opening (and making) it, migrating it, transactions,
    the list's identity and the inbox beside it. The store's other parts build on it."""

    _store_part = True
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
        self._inbox: Database | None = None
        self._list_id: str | None = None
        self._keys: dict[str, int] = {}
        new = not self.path.is_file() or self.path.stat().st_size == 0
        if new and not self.path.parent.is_dir():
            # a mistyped path makes no folders and no empty list: say what is missing
            raise StoreError(
                f"{self.path}: the folder {self.path.parent} does not exist (check "
                "delivery.database, or create the folder for a new list)"
            )
        # a list is made or upgraded under a lock beside it: processes started together
        # (serve workers, deliver) wait for the first, and never find it half-made
        with self._migration_lock() if new else contextlib.nullcontext():
            if self.path.is_file() and self.path.stat().st_size == 0 and not self._wal_has_data():
                raise StoreError(
                    f"{self.path}: an empty file, not a digest database (delete it to start a new list)"
                )
            try:
                if not self.path.is_file():  # still new, under the lock
                    self._create()
                self.db: Database = _connect(self.path, busy_seconds)
                if self._behind():
                    with contextlib.nullcontext() if new else self._migration_lock():
                        upgrade_sqlite(lambda: _connect(self.path, busy_seconds))
                    self._behind()
                self.db.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as err:
                raise StoreError(f"{self.path}: {describe(err, busy_seconds, self.path)}") from None

    def _create(self) -> None:
        """Make a new list beside its place and move it there whole: a process stopped
        while the schema is being built (a `digest serve` terminated as it starts) leaves
        no half-made or empty database where the next command looks."""
        import os

        partial = self.path.with_name(self.path.name + "-new")
        for leftover in ("", "-wal", "-shm", "-journal"):
            Path(f"{partial}{leftover}").unlink(missing_ok=True)
        upgrade_sqlite(lambda: _connect(partial, self.busy_seconds))
        os.replace(partial, self.path)  # its last connection closed: no WAL left beside it

    def _behind(self) -> bool:
        """Whether the database needs upgrading (a newer digest's is refused)."""
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: made by a newer digest (schema {version}); upgrade digest"
            )
        return version < SCHEMA_VERSION

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
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
    def transaction(self) -> Iterator[Database]:
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
            row = self.db.execute(
                "SELECT key FROM issues WHERE slug = :slug", {"slug": slug}
            ).fetchone()
            if row is None:
                return -1
            key = self._keys[slug] = int(row["key"])
        return key

    # --- subscribers -------------------------------------------------------------------

    # --- the inbox: unsubscribe requests that never wait on the main database ---------------

    # --- signups: double opt-in ---------------------------------------------------------

    # --- schedule ----------------------------------------------------------------------

    # --- delivery ----------------------------------------------------------------------

    def _outcomes_transaction(self, suppressing: bool) -> contextlib.AbstractContextManager[Any]:
        """The transaction a batch's outcomes are written in: the store's usual one."""
        return self.transaction()

    def _inbox_db(self) -> Database:
        if self._inbox is None:
            self._inbox = _connect(self.inbox_path, 5.0)
            self._inbox.executescript(INBOX_SCHEMA)
            never_reuse_ids(self._inbox)
            for table, column in (  # an inbox from before channels, or before newsletters
                ("unsubscribes", "channel TEXT NOT NULL DEFAULT 'link'"),
                ("unsubscribes", "newsletter TEXT"),
                ("signups", "newsletters TEXT"),
            ):
                with contextlib.suppress(sqlite3.OperationalError):
                    self._inbox.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        return self._inbox


def never_reuse_ids(inbox: Database) -> None:
    """An inbox made before its ids were AUTOINCREMENT gets its queues rebuilt so, rows
    and ids kept, in one transaction (another process doing it too finds it done)."""

    def old_queues() -> list[str]:
        rows = inbox.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        return [
            row["name"]
            for row in rows.fetchall()
            if row["name"] in INBOX_QUEUES and "AUTOINCREMENT" not in row["sql"].upper()
        ]

    if not old_queues():
        return
    inbox.execute(inbox.dialect.begin_write)
    try:
        for table in old_queues():
            sql = inbox.execute(
                "SELECT sql FROM sqlite_master WHERE name = :name", {"name": table}
            ).fetchone()["sql"]
            inbox.execute(f"ALTER TABLE {table} RENAME TO {table}_before")
            inbox.execute(
                sql.replace("INTEGER PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT", 1)
            )
            inbox.execute(f"INSERT INTO {table} SELECT * FROM {table}_before")
            inbox.execute(f"DROP TABLE {table}_before")
        inbox.execute("COMMIT")
    except BaseException:
        inbox.execute("ROLLBACK")
        raise
