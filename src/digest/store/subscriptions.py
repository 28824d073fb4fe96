"""Who is on which newsletter: a subscriber's status on each (subscribed, unsubscribed),
under their one global status (active; unsubscribed from all; bounced or complained,
which no newsletter overrides). An issue goes to the active subscribers subscribed to
its newsletter.

Imports and confirmed signups subscribe people here, in the transaction that adds
them; an export's people who had left come in with their status, never active for a
moment; the subscription page's choices (recorded in the inbox) are applied here."""

from __future__ import annotations

import json
from typing import Any

from digest.defaultkey import DEFAULT_KEY
from digest.store.common import Database, event_row, insert_event, now_utc, stamp
from digest.store.records import ACTIVE
from digest.store.segments import recipients_clause
from digest.store.subscribers import Subscribers

SUBSCRIBED, UNSUBSCRIBED = "subscribed", "unsubscribed"
LEFT_STATUSES = frozenset({"unsubscribed", "bounced", "complained"})  # what an export may say


class Subscriptions(Subscribers):
    _store_part = True

    # --- read by the subscription page, `digest newsletters` and delivery -------------

    def subscriptions_of(self, uid: str) -> tuple[Any, dict[str, str]] | None:
        """(the subscriber's row, their status by newsletter key) or None."""
        row = self.db.execute(
            "SELECT id, uid, email, name, status FROM subscribers WHERE uid = :uid", {"uid": uid}
        ).fetchone()
        if row is None:
            return None
        found = self.db.execute(
            "SELECT newsletter, status FROM subscriptions WHERE subscriber_id = :id",
            {"id": row["id"]},
        ).fetchall()
        return row, {r["newsletter"]: r["status"] for r in found}

    def subscribed_to(self, ids: list[int]) -> dict[int, list[str]]:
        """The newsletters each of the subscribers ``ids`` is subscribed to."""
        found: dict[int, list[str]] = {i: [] for i in ids}
        rows = self.db.execute(
            "SELECT subscriber_id, newsletter FROM subscriptions WHERE status = 'subscribed'"
            f" AND subscriber_id {self.db.dialect.in_list('ids')} ORDER BY newsletter",
            {"ids": self.db.dialect.values(ids)},
        ).fetchall()
        for row in rows:
            found[row["subscriber_id"]].append(row["newsletter"])
        return found

    def count_recipients(self, newsletter: str, segment: str | None = None) -> int:
        """How many would get an issue of ``newsletter`` now, within ``segment`` (the
        JSON store/segments.py's segment_json makes), counted in the database."""
        clause, values = recipients_clause(segment, self.db.dialect.postgres)
        row = self.db.execute(
            "SELECT count(*) AS n FROM subscribers s WHERE status = 'active'"
            " AND EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id"
            f" AND x.newsletter = :newsletter AND x.status = 'subscribed'){clause}",
            {"newsletter": newsletter, **values},
        ).fetchone()
        return int(row["n"])

    def newsletter_counts(self) -> dict[str, int]:
        """Active subscribers subscribed to each newsletter key the store knows."""
        rows = self.db.execute(
            "SELECT x.newsletter, count(*) AS n FROM subscriptions x"
            " JOIN subscribers s ON s.id = x.subscriber_id"
            " WHERE x.status = 'subscribed' AND s.status = 'active' GROUP BY x.newsletter"
        ).fetchall()
        known = self.db.execute("SELECT DISTINCT newsletter FROM subscriptions").fetchall()
        counts = {r["newsletter"]: 0 for r in known}
        counts.update({r["newsletter"]: int(r["n"]) for r in rows})
        return counts

    def rename_newsletter(self, old: str, new: str) -> int:
        """Move every subscription and issue from the key ``old`` to ``new``."""
        with self.transaction() as db:
            taken = db.execute(
                "SELECT 1 FROM subscriptions WHERE newsletter = :new LIMIT 1", {"new": new}
            ).fetchone()
            if taken is not None:
                from digest.errors import StoreError

                raise StoreError(f"newsletter {new!r} has subscribers already; nothing renamed")
            moved = db.execute(
                "UPDATE subscriptions SET newsletter = :new WHERE newsletter = :old",
                {"new": new, "old": old},
            ).rowcount
            db.execute(
                "UPDATE issues SET newsletter = :new WHERE newsletter = :old",
                {"new": new, "old": old},
            )
        return int(moved)

    # --- changes a reader asked for ----------------------------------------------------

    @staticmethod
    def _set_subscription(
        db: Database, subscriber_id: int, newsletter: str, status: str, now: str
    ) -> bool:
        """One subscription to ``status``; whether it changed."""
        return bool(
            db.execute(
                "INSERT INTO subscriptions (subscriber_id, newsletter, status, changed_at)"
                " VALUES (:id, :newsletter, :status, :now)"
                " ON CONFLICT (subscriber_id, newsletter) DO UPDATE SET status = excluded.status,"
                " changed_at = excluded.changed_at WHERE subscriptions.status <> excluded.status",
                {"id": subscriber_id, "newsletter": newsletter, "status": status, "now": now},
            ).rowcount
        )

    def _apply_choices(self, db: Database, rows: list[Any]) -> int:
        """The subscription page's choices, in the order made: a name, the newsletters
        chosen (each one named is subscribed, each other known one left), or leave all.
        Choosing a newsletter after leaving all makes them active again; a bounced or
        complained subscriber's choices change nothing but their name (the page sends
        them to confirm their address first)."""
        changed = 0
        now = stamp(now_utc())
        for row in rows:
            choice = json.loads(row["choice"])
            found = db.execute(
                "SELECT id, email, status FROM subscribers WHERE uid = :uid", {"uid": row["uid"]}
            ).fetchone()
            if found is None:
                continue
            if "name" in choice:
                db.execute(
                    "UPDATE subscribers SET name = :name, updated_at = :now WHERE id = :id",
                    {"name": choice["name"] or None, "now": now, "id": found["id"]},
                )
            if found["status"] not in (ACTIVE, UNSUBSCRIBED):
                continue  # suppressed: only a confirmed address lifts that
            if choice.get("leave_all"):
                changed += self._leave(db, [(row["uid"], "page", None)])
                continue
            chosen = set(choice.get("newsletters", ()))
            for newsletter in choice.get("offered", ()):
                status = SUBSCRIBED if newsletter in chosen else UNSUBSCRIBED
                changed += self._set_subscription(db, found["id"], newsletter, status, now)
            if chosen and found["status"] == UNSUBSCRIBED:
                db.execute(
                    "UPDATE subscribers SET status = 'active', updated_at = :now WHERE id = :id",
                    {"now": now, "id": found["id"]},
                )
                db.execute(
                    insert_event(db.dialect),
                    event_row(f"resubscribe:{row['uid']}:{now}", "page", "resubscribe",
                              found["email"], found["id"], None, None, "on the subscription page",
                              now, now),
                )  # fmt: skip
        return changed

    @staticmethod
    def _leave(db: Database, requests: list[tuple[str, str, str | None]]) -> int:
        """Each (uid, channel, newsletter) leaves that newsletter, or all of them when the
        newsletter is None (their status becomes unsubscribed), with an unsubscribe event
        that says how and from what. Only active subscribers change."""
        when = stamp(now_utc())
        changed = 0
        for uid, channel, newsletter in requests:
            row = db.execute(
                "SELECT id, email FROM subscribers WHERE uid = :uid AND status = 'active'",
                {"uid": uid},
            ).fetchone()
            if row is None:
                continue
            if newsletter is None:
                db.execute(
                    "UPDATE subscribers SET status = 'unsubscribed', updated_at = :now"
                    " WHERE id = :id",
                    {"now": when, "id": row["id"]},
                )
                db.execute(
                    "UPDATE subscriptions SET status = 'unsubscribed', changed_at = :now"
                    " WHERE subscriber_id = :id AND status = 'subscribed'",
                    {"now": when, "id": row["id"]},
                )
            elif not Subscriptions._set_subscription(db, row["id"], newsletter, UNSUBSCRIBED, when):
                continue
            detail = f"by {channel}" + (f" from {newsletter}" if newsletter else "")
            db.execute(
                insert_event(db.dialect),
                event_row(f"unsubscribe:{uid}:{newsletter or '*'}:{when}", channel,
                          "unsubscribe", row["email"], row["id"], None, None, detail, when, when),
            )  # fmt: skip
            changed += 1
        return changed


__all__ = ["DEFAULT_KEY", "LEFT_STATUSES", "SUBSCRIBED", "UNSUBSCRIBED", "Subscriptions"]
