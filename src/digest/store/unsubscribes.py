"""Unsubscribing: every way a reader leaves the list changes the database here. A
request from a link, a one-click POST or a mailto is recorded at once in the inbox
(``request_unsubscribe``), whatever holds the main database; it is applied before the
next batch is formed and whenever the inbox is applied (``_unsubscribe``), each with an
``unsubscribe`` event that says how it came. The operator's own ``digest subscribers
unsubscribe`` goes straight to the list (``unsubscribe_uid``). Provider unsubscribes and
complaints arrive as events (store/inbox.py)."""

from __future__ import annotations

from digest.store.common import Database, now_utc, stamp
from digest.store.subscriptions import Subscriptions


class Unsubscribes(Subscriptions):
    _store_part = True

    def request_unsubscribe(
        self, uid: str, channel: str = "link", newsletter: str | None = None
    ) -> None:
        """Record an unsubscribe durably in the inbox; applied by apply_inbox. ``channel``
        says how it came: one-click, link (the page's button), mailto. ``newsletter``: the
        one to leave; None leaves all."""
        inbox = self._inbox_db()
        inbox.execute(
            "INSERT INTO unsubscribes (uid, received_at, channel, newsletter)"
            " VALUES (:uid, :now, :channel, :newsletter)",
            {"uid": uid, "now": stamp(now_utc()), "channel": channel, "newsletter": newsletter},
        )

    def request_choice(self, uid: str, choice: dict[str, object]) -> None:
        """Record a choice made on the subscription page (JSON: name, newsletters,
        offered, leave_all) in the inbox; applied by apply_inbox."""
        import json

        self._inbox_db().execute(
            "INSERT INTO choices (uid, choice, received_at) VALUES (:uid, :choice, :now)",
            {"uid": uid, "choice": json.dumps(choice), "now": stamp(now_utc())},
        )

    def _inbox_pending(self) -> tuple[int, list[tuple[str, str, str | None]]]:
        """(the last request's id, the (uid, channel, newsletter) asked for) or (0, [])
        when none waits."""
        if self._inbox is None and not self.inbox_path.is_file():
            return 0, []
        rows = (
            self._inbox_db()
            .execute("SELECT id, uid, channel, newsletter FROM unsubscribes ORDER BY id")
            .fetchall()
        )
        pending = [(r["uid"], r["channel"], r["newsletter"]) for r in rows]
        return (rows[-1]["id"], pending) if rows else (0, [])

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
            if self._unsubscribe(db, [(row["uid"], "operator", None)]):
                return "unsubscribed"
            return str(row["status"])

    def unsubscribe_uid(self, uid: str) -> bool:
        """Active -> unsubscribed; any other status (bounced, complained) stays."""
        with self.transaction() as db:
            return self._unsubscribe(db, [(uid, "manual", None)]) > 0

    @staticmethod
    def _unsubscribe(db: Database, requests: list[tuple[str, str, str | None]]) -> int:
        """Each (uid, channel, newsletter) leaves that newsletter, or all when None."""
        return Subscriptions._leave(db, requests)
