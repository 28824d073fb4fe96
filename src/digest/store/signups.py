"""Double opt-in: signups wait apart from the list until their address is confirmed;
confirmation mails are claimed before they are sent."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from digest.defaultkey import DEFAULT_KEY
from digest.store.common import (
    CONFIRM_ATTEMPTS,
    CONFIRM_EVERY,
    Database,
    new_uid,
    now_utc,
    parse_stamp,
    stamp,
    suppression_hash,
)
from digest.store.joining import subscribe_one
from digest.store.records import (
    ACTIVE,
    Signup,
)
from digest.store.unsubscribes import Unsubscribes


class Signups(Unsubscribes):
    _store_part = True

    def request_signup(
        self, email: str, name: str | None, newsletters: tuple[str, ...] = (DEFAULT_KEY,)
    ) -> None:
        """Record a signup from the site in the inbox, with the keys of the newsletters
        asked for; apply_inbox decides what it means."""
        self._inbox_db().execute(
            "INSERT INTO signups (email, name, received_at, newsletters)"
            " VALUES (:email, :name, :now, :newsletters)",
            {"email": email, "name": name, "now": stamp(now_utc()),
             "newsletters": ",".join(newsletters)},
        )  # fmt: skip

    def request_confirm(self, uid: str) -> None:
        """Record a confirmation (its token already verified) in the inbox."""
        self._inbox_db().execute(
            "INSERT INTO confirms (uid, received_at) VALUES (:uid, :now)",
            {"uid": uid, "now": stamp(now_utc())},
        )

    @staticmethod
    def _apply_signups(db: Database, rows: list[Any]) -> None:
        """A confirmation becomes due for each new address, or for one that asked before
        but was not mailed within the hour. Active subscribers get nothing (they are
        subscribed already), nor does anyone who complained: no mail at all to them."""
        now = now_utc()
        for row in rows:
            found = db.execute(
                "SELECT status FROM subscribers WHERE email = :email", {"email": row["email"]}
            ).fetchone()
            if found is not None and found["status"] in (ACTIVE, "complained"):
                continue
            mailed_since = stamp(now - CONFIRM_EVERY)
            db.execute(
                "INSERT INTO signups (uid, email, name, requested_at, due, newsletters)"
                " VALUES (:uid, :email, :name, :now, TRUE, :newsletters)"
                " ON CONFLICT (email) DO UPDATE SET name = coalesce(excluded.name, signups.name),"
                " newsletters = excluded.newsletters,"
                " requested_at = excluded.requested_at,"
                " attempts = CASE WHEN signups.due THEN signups.attempts ELSE 0 END,"
                " due = CASE WHEN signups.sent_at IS NULL OR signups.sent_at < :mailed_since"
                " THEN TRUE ELSE signups.due END",
                {"uid": new_uid(), "email": row["email"], "name": row["name"],
                 "now": stamp(now), "mailed_since": mailed_since,
                 "newsletters": row["newsletters"]},
            )  # fmt: skip

    def _apply_confirms(self, db: Database, uids: list[str]) -> int:
        """Each confirmed signup joins the list as active: confirming is the explicit act
        that resubscribes someone who had unsubscribed or bounced (or was forgotten);
        someone who complained stays as they are."""
        changed = 0
        now = stamp(now_utc())
        for uid in uids:
            signup = db.execute(
                "SELECT email, name, newsletters FROM signups WHERE uid = :uid", {"uid": uid}
            ).fetchone()
            if signup is None:
                continue  # confirmed already, or purged: nothing to do
            db.execute("DELETE FROM signups WHERE uid = :uid", {"uid": uid})
            email = signup["email"]
            found = db.execute(
                "SELECT status FROM subscribers WHERE email = :email", {"email": email}
            ).fetchone()
            if found is not None and found["status"] == "complained":
                continue
            if found is None:
                db.execute(
                    "INSERT INTO subscribers (uid, email, name, status, attributes, created_at,"
                    " updated_at) VALUES (:uid, :email, :name, 'active', '{}', :now, :now)",
                    {"uid": new_uid(), "email": email, "name": signup["name"], "now": now},
                )
            else:
                db.execute(
                    "UPDATE subscribers SET status = 'active', name = coalesce(:name, name),"
                    " updated_at = :now WHERE email = :email",
                    {"name": signup["name"], "now": now, "email": email},
                )
            db.execute(
                "DELETE FROM suppressions WHERE hash = :hash", {"hash": suppression_hash(email)}
            )
            chosen = (signup["newsletters"] or DEFAULT_KEY).split(",")
            subscribe_one(db, email, chosen, now, again=True)
            changed += 1
        return changed

    @staticmethod
    def _signup(row: Any) -> Signup:
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
                "SELECT * FROM signups WHERE due ORDER BY id LIMIT :limit", {"limit": limit}
            ).fetchall()
            db.executemany(
                "UPDATE signups SET due = FALSE, sent_at = :now, attempts = attempts + 1"
                " WHERE uid = :uid",
                [{"now": stamp(now), "uid": row["uid"]} for row in rows],
            )
        return [replace(self._signup(row), sent_at=now) for row in rows]

    def confirmations_due(self) -> bool:
        return self.db.execute("SELECT 1 FROM signups WHERE due LIMIT 1").fetchone() is not None

    def confirmation_failed(self, uid: str, error: str, retry: bool) -> None:
        """A confirmation mail that did not go: due again (up to CONFIRM_ATTEMPTS tries)
        when ``retry``, and never counted against the hourly limit."""
        with self.transaction() as db:
            db.execute(
                "UPDATE signups SET last_error = :error, sent_at = NULL,"
                " due = (:retry AND attempts < :attempts) WHERE uid = :uid",
                {"error": error[:500], "retry": retry, "attempts": CONFIRM_ATTEMPTS, "uid": uid},
            )

    def signups(self) -> list[Signup]:
        return [self._signup(r) for r in self.db.execute("SELECT * FROM signups ORDER BY id")]

    def purge_signups(self, before: dt.datetime) -> int:
        """Forget signups last asked for before ``before`` (their links have expired)."""
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM signups WHERE requested_at < :before", {"before": stamp(before)}
            ).rowcount
