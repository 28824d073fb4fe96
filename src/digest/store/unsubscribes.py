"""Unsubscribing: every way a reader leaves the list changes the database here. A
request from a link, a one-click POST or a mailto is recorded at once in the inbox
(``request_unsubscribe``), whatever holds the main database; it is applied before the
next batch is formed and whenever the inbox is applied (``_unsubscribe``), each with an
``unsubscribe`` event that says how it came. The operator's own ``digest subscribers
unsubscribe`` goes straight to the list (``unsubscribe_uid``). Provider unsubscribes and
complaints arrive as events (store/inbox.py)."""

from __future__ import annotations

from digest.store.common import (
    Database,
    event_row,
    insert_event,
    now_utc,
    stamp,
)
from digest.store.subscribers import Subscribers


class Unsubscribes(Subscribers):
    _store_part = True

    def request_unsubscribe(self, uid: str, channel: str = "link") -> None:
        """Record an unsubscribe durably in the inbox; applied by apply_inbox. ``channel``
        says how it came: one-click, link (the page's button), mailto."""
        inbox = self._inbox_db()
        inbox.execute(
            "INSERT INTO unsubscribes (uid, received_at, channel) VALUES (:uid, :now, :channel)",
            {"uid": uid, "now": stamp(now_utc()), "channel": channel},
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
            self._inbox_db().execute("DELETE FROM unsubscribes WHERE id <= :last", {"last": last})

    def unsubscribe_email(self, email: str) -> str | None:
        """The operator unsubscribes ``email`` (``digest subscribers remove``): an active
        subscriber leaves, with an event by the operator; a bounced or complained one keeps
        that status, which says more. Their status afterwards, or None for no subscriber."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT uid, status FROM subscribers WHERE email = :email", {"email": email}
            ).fetchone()
            if row is None:
                return None
            if self._unsubscribe(db, [(row["uid"], "operator")]):
                return "unsubscribed"
            return str(row["status"])

    def unsubscribe_uid(self, uid: str) -> bool:
        """Active -> unsubscribed; any other status (bounced, complained) stays."""
        with self.transaction() as db:
            return self._unsubscribe(db, [(uid, "manual")]) > 0

    @staticmethod
    def _unsubscribe(db: Database, requests: list[tuple[str, str]]) -> int:
        """Unsubscribe each (uid, channel) still active, with an event saying how."""
        when = stamp(now_utc())
        channels = dict(requests)
        rows = db.execute(
            "SELECT id, uid, email FROM subscribers"
            f" WHERE status = 'active' AND uid {db.dialect.in_list('uids')}",
            {"uids": db.dialect.values(list(channels))},
        ).fetchall()
        if not rows:
            return 0
        db.executemany(
            insert_event(db.dialect),
            [
                event_row(f"unsubscribe:{r['uid']}:{when}", channels[r["uid"]], "unsubscribe",
                          r["email"], r["id"], None, None, f"by {channels[r['uid']]}", when, when)
                for r in rows
            ],
        )  # fmt: skip
        return int(
            db.execute(
                "UPDATE subscribers SET status = 'unsubscribed', updated_at = :now"
                f" WHERE status = 'active' AND id {db.dialect.in_list('ids')}",
                {"now": when, "ids": db.dialect.values([r["id"] for r in rows])},
            ).rowcount
        )
