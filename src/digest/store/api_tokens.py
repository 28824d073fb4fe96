"""The HTTP API's tokens: each stored as a SHA-256 hash (a token is 32 random bytes, so
a fast hash is enough; the token itself is shown once, when made), with a name, a scope
(read or write) and when it was revoked."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from digest.store.common import Database, now_utc, stamp

PREFIX = "dgt_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ApiToken:
    name: str
    scope: str  # read or write
    created_at: str
    revoked_at: str | None


class ApiTokens:
    """A part of the store: who may call the HTTP API, and with what scope."""

    _store_part = True
    if TYPE_CHECKING:

        def transaction(self) -> Any: ...

        db: Database

    def add_api_token(self, name: str, scope: str) -> str:
        """A new token for ``name`` (unique among tokens not revoked), returned once."""
        from digest.errors import StoreError

        token = PREFIX + secrets.token_urlsafe(32)
        with self.transaction() as db:
            taken = db.execute(
                "SELECT 1 FROM api_tokens WHERE name = :name AND revoked_at IS NULL",
                {"name": name},
            ).fetchone()
            if taken is not None:
                raise StoreError(f"an API token named {name!r} exists; revoke it first")
            db.execute(
                "INSERT INTO api_tokens (name, scope, token_hash, created_at)"
                " VALUES (:name, :scope, :hash, :now)",
                {"name": name, "scope": scope, "hash": token_hash(token), "now": stamp(now_utc())},
            )
        return token

    def api_token(self, token: str) -> ApiToken | None:
        """The live token ``token`` is, or None (unknown or revoked)."""
        row = self.db.execute(
            "SELECT name, scope, created_at, revoked_at FROM api_tokens"
            " WHERE token_hash = :hash AND revoked_at IS NULL",
            {"hash": token_hash(token)},
        ).fetchone()
        return _token(row) if row is not None else None

    def token_reader(self) -> Callable[[str], ApiToken | None] | None:
        """A lookup of live tokens on a read-only connection of its own, for the thread
        that calls it (the web app's event loop): an indexed read of a WAL database
        never waits for a writer, so checking each API call's token needs no worker
        thread. None where the database is not a local SQLite file."""
        path = getattr(self, "path", None)
        if path is None:
            return None
        opened: list[sqlite3.Connection] = []  # on first use, in the thread that uses it

        def lookup(token: str) -> ApiToken | None:
            if not opened:
                # one event loop uses it, one call at a time: no lock needed
                made = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
                made.row_factory = sqlite3.Row
                opened.append(made)
            query = (
                "SELECT name, scope, created_at, revoked_at FROM api_tokens"
                " WHERE token_hash = ? AND revoked_at IS NULL"
            )
            try:
                row = opened[0].execute(query, (token_hash(token),)).fetchone()
            except sqlite3.Error as err:  # the caller asks the store the usual way
                opened.pop().close()
                from digest.errors import StoreError

                raise StoreError(f"API tokens cannot be read just now ({err})") from None
            return _token(row) if row is not None else None

        return lookup

    def api_tokens(self) -> list[ApiToken]:
        rows = self.db.execute(
            "SELECT name, scope, created_at, revoked_at FROM api_tokens ORDER BY id"
        ).fetchall()
        return [_token(row) for row in rows]

    def has_api_tokens(self) -> bool:
        found = self.db.execute(
            "SELECT 1 FROM api_tokens WHERE revoked_at IS NULL LIMIT 1"
        ).fetchone()
        return found is not None

    def revoke_api_token(self, name: str) -> bool:
        with self.transaction() as db:
            return bool(
                db.execute(
                    "UPDATE api_tokens SET revoked_at = :now"
                    " WHERE name = :name AND revoked_at IS NULL",
                    {"now": stamp(now_utc()), "name": name},
                ).rowcount
            )


def _token(row: Any) -> ApiToken:
    revoked = row["revoked_at"]
    return ApiToken(row["name"], row["scope"], str(row["created_at"]),
                    str(revoked) if revoked else None)  # fmt: skip
