"""The editors' desk in the store: users, their sign-in sessions and the audit log.

Passwords arrive here already hashed (argon2id, see :mod:`digest.desk.passwords`); a
session is found by a hash of its cookie's token, so the table holds nothing a reader
of the database could sign in with.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from digest.errors import DigestError
from digest.store.common import Database, now_utc, parse_stamp, stamp

ROLES = ("contributor", "editor", "admin")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    name: str | None
    role: str
    password_hash: str
    disabled: bool
    zone: str | None = None  # the time zone the desk shows them times in

    @property
    def label(self) -> str:
        return self.name or self.email


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


def _user(row: Any) -> User:
    return User(
        id=int(row["id"]),
        email=row["email"],
        name=row["name"],
        role=row["role"],
        password_hash=row["password_hash"],
        disabled=bool(row["disabled"]),
        zone=row["zone"],
    )


USER_COLUMNS = "id, email, name, role, password_hash, disabled, zone"


class DeskRecords:
    """A part of the store: the desk's users, sessions and audit log."""

    _store_part = True
    if TYPE_CHECKING:

        def transaction(self) -> Any: ...

        db: Database

    # -- users ---------------------------------------------------------------------------

    def add_user(self, email: str, name: str | None, role: str, password_hash: str) -> User:
        if role not in ROLES:
            raise DigestError(f"role {role!r}: choose one of {', '.join(ROLES)}")
        when = stamp(now_utc())
        with self.transaction() as db:
            taken = db.execute(
                "SELECT 1 FROM users WHERE email = :email", {"email": email}
            ).fetchone()
            if taken:
                raise DigestError(f"{email} is a desk user already (digest users list)")
            db.execute(
                "INSERT INTO users (email, name, role, password_hash, disabled, created_at,"
                " updated_at) VALUES (:email, :name, :role, :hash, :off, :when, :when)",
                {
                    "email": email,
                    "name": name,
                    "role": role,
                    "hash": password_hash,
                    "off": False,
                    "when": when,
                },
            )
        found = self.user_by_email(email)
        assert found is not None
        return found

    def user_by_email(self, email: str) -> User | None:
        row = self.db.execute(
            f"SELECT {USER_COLUMNS} FROM users WHERE email = :email", {"email": email}
        ).fetchone()
        return _user(row) if row else None

    def users(self) -> list[User]:
        rows = self.db.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY email").fetchall()
        return [_user(r) for r in rows]

    def update_user(
        self,
        email: str,
        *,
        password_hash: str | None = None,
        role: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user; a new password or a disabled account ends their sessions."""
        if role is not None and role not in ROLES:
            raise DigestError(f"role {role!r}: choose one of {', '.join(ROLES)}")
        with self.transaction() as db:
            row = db.execute(
                f"SELECT {USER_COLUMNS} FROM users WHERE email = :email", {"email": email}
            ).fetchone()
            if row is None:
                raise DigestError(f"{email} is not a desk user (digest users list)")
            user = _user(row)
            db.execute(
                "UPDATE users SET password_hash = :hash, role = :role, disabled = :off,"
                " updated_at = :when WHERE id = :id",
                {
                    "hash": password_hash or user.password_hash,
                    "role": role or user.role,
                    "off": user.disabled if disabled is None else disabled,
                    "when": stamp(now_utc()),
                    "id": user.id,
                },
            )
            if password_hash is not None or disabled:
                db.execute("DELETE FROM desk_sessions WHERE user_id = :id", {"id": user.id})
        found = self.user_by_email(email)
        assert found is not None
        return found

    def remember_zone(self, user_id: int, zone: str) -> None:
        """The time zone a user last scheduled in: the desk shows their times in it."""
        with self.transaction() as db:
            db.execute(
                "UPDATE users SET zone = :zone WHERE id = :id", {"zone": zone, "id": user_id}
            )

    # -- sessions ------------------------------------------------------------------------

    def start_session(
        self, user_id: int, token_hash: str, csrf: str, lifetime: dt.timedelta
    ) -> None:
        now = now_utc()
        with self.transaction() as db:
            db.execute("DELETE FROM desk_sessions WHERE expires_at < :now", {"now": stamp(now)})
            db.execute(
                "INSERT INTO desk_sessions (token_hash, user_id, csrf, created_at, expires_at)"
                " VALUES (:token, :user, :csrf, :now, :until)",
                {
                    "token": token_hash,
                    "user": user_id,
                    "csrf": csrf,
                    "now": stamp(now),
                    "until": stamp(now + lifetime),
                },
            )

    def session_user(self, token_hash: str) -> tuple[User, str] | None:
        """The signed-in user and the session's CSRF token; None when the session is
        unknown, expired or its user disabled."""
        row = self.db.execute(
            "SELECT u.id, u.email, u.name, u.role, u.password_hash, u.disabled, u.zone, s.csrf,"
            " s.expires_at FROM desk_sessions s JOIN users u ON u.id = s.user_id"
            " WHERE s.token_hash = :token",
            {"token": token_hash},
        ).fetchone()
        if row is None or bool(row["disabled"]):
            return None
        if parse_stamp(str(row["expires_at"])) <= now_utc():
            return None
        return _user(row), str(row["csrf"])

    def end_session(self, token_hash: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM desk_sessions WHERE token_hash = :token", {"token": token_hash})

    # -- audit log -----------------------------------------------------------------------

    def audit(self, actor: str, action: str, subject: str = "", **detail: Any) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO audit_log (at, actor, action, subject, detail)"
                " VALUES (:at, :actor, :action, :subject, :detail)",
                {
                    "at": stamp(now_utc()),
                    "actor": actor,
                    "action": action,
                    "subject": subject,
                    "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True),
                },
            )

    def audit_entries(
        self, since: dt.datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """The newest entries first (at most ``limit``), from ``since`` on."""
        rows = self.db.execute(
            "SELECT at, actor, action, subject, detail FROM audit_log WHERE at >= :since"
            " ORDER BY id DESC LIMIT :limit",
            {"since": stamp(since or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)), "limit": limit},
        ).fetchall()
        return [
            AuditEntry(
                parse_stamp(str(r["at"])),
                r["actor"],
                r["action"],
                r["subject"],
                json.loads(r["detail"]) if r["detail"] else {},
            )
            for r in rows
        ]
