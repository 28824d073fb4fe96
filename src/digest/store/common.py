"""What the SQLite store's parts share: how times are written, the statements and
limits several parts use, how an SQLite error is told to a person, and the guard that
turns every public method's database error into one StoreError line."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from digest.errors import StoreError
from digest.store.dialects import SQLITE, Dialect

T = TypeVar("T")

ISSUE_SELECT = (
    "SELECT i.slug, i.path, i.source_hash, i.send_at, i.status, r.rendered, i.error,"
    " i.lease_owner, i.version, i.newsletter, i.segment"
    " FROM issues i JOIN renders r ON r.slug = i.slug"
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


CONFIRM_EVERY = dt.timedelta(hours=1)  # at most one confirmation mail per address per hour
CONFIRM_ATTEMPTS = 3  # tries to send one confirmation before giving up
EVENTS_PER_APPLY = 5000
# Every event is stored through this one statement, once by its fingerprint.
EVENT_COLUMNS = (
    "fingerprint", "provider", "kind", "email", "subscriber_id", "issue", "message_id",
    "detail", "occurred_at", "received_at",
)  # fmt: skip


def insert_event(dialect: Dialect) -> str:
    """The statement that stores an event once (by its fingerprint); its parameters are
    named as EVENT_COLUMNS (``event_row`` makes them)."""
    return dialect.insert_ignore(
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)})"
        f" VALUES ({', '.join(':' + c for c in EVENT_COLUMNS)})"
    )


def event_row(*values: object) -> dict[str, object]:
    """An event's values, in EVENT_COLUMNS order, as insert_event's parameters."""
    return dict(zip(EVENT_COLUMNS, values, strict=True))


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
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        with self.lock:
            try:
                return method(self, *args, **kwargs)
            except self.database_errors as err:
                raise StoreError(f"{self.where}: {self.describe(err)}") from None

    return wrapper


def _public_methods_guarded(cls: type[T]) -> type[T]:
    """Guard the class's own public methods, and those of the store's parts that it
    would otherwise inherit unguarded (a method a subclass overrides stays its own)."""
    own = dict(vars(cls))

    def public(name: str, value: object) -> bool:
        return callable(value) and not name.startswith("_") and name not in _UNGUARDED

    for klass in cls.__mro__[1:]:
        if not vars(klass).get("_store_part"):
            continue
        for name, value in vars(klass).items():
            resolved = next(k for k in cls.__mro__ if name in vars(k))
            if public(name, value) and name not in own and resolved is klass:
                setattr(cls, name, _guarded(value))
    for name, value in own.items():
        if public(name, value):
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


def loaded_attributes(stored: Any) -> dict[str, object]:
    """A subscriber's attributes as read: JSON text (SQLite) or a mapping (PostgreSQL)."""
    if isinstance(stored, str):
        return dict(json.loads(stored or "{}"))
    return dict(stored or {})


def suppression_hash(email: str) -> str:
    return hashlib.sha256(f"digest-suppression:{email.lower()}".encode()).hexdigest()


class Cursor(Protocol):
    """What a statement leaves: its rows, and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...
    @property
    def lastrowid(self) -> int | None: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    """A connection the store's parts run statements on, SQLite's or PostgreSQL's
    (store/postgres_connection.py), and the dialect its statements are written in."""

    @property
    def dialect(self) -> Dialect: ...
    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Any, /) -> Cursor: ...
    def close(self) -> None: ...


class SQLiteConnection(sqlite3.Connection):
    """An SQLite connection that says which dialect its statements speak."""

    dialect = SQLITE


def _connect(path: Path, busy_seconds: float) -> SQLiteConnection:
    db = sqlite3.connect(
        str(path),
        isolation_level=None,
        timeout=busy_seconds,
        check_same_thread=False,
        factory=SQLiteConnection,
    )
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
    return db


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
