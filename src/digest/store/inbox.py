"""The inbox: unsubscribes, provider events and signups recorded at once in a small
database beside the main one, then applied to the list (the events once each, by
fingerprint; one that cannot be applied is set aside)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from digest.events import SOFT_BOUNCE, SUPPRESSING, Event
from digest.store.common import (
    EVENTS_PER_APPLY,
    Database,
    event_row,
    insert_event,
    now_utc,
    stamp,
)
from digest.store.failed_events import set_aside
from digest.store.records import (
    ACTIVE,
)
from digest.store.signups import Signups


class Inbox(Signups):
    _store_part = True

    def receive_events(self, events: list[Event], replay_key: str | None = None) -> bool:
        """Record provider events durably in the inbox, with the request's replay key in
        the same transaction; False (and nothing recorded) when the key was seen before."""
        inbox = self._inbox_db()
        with self.lock:
            inbox.execute(inbox.dialect.begin_write)
            try:
                if replay_key is not None:
                    inbox.execute(
                        "INSERT INTO seen (key, seen_at) VALUES (:key, :now)",
                        {"key": replay_key, "now": stamp(now_utc())},
                    )
                inbox.executemany(
                    "INSERT INTO events (event) VALUES (:event)",
                    [{"event": e.to_json()} for e in events],
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
            .execute(
                "SELECT id, event FROM events ORDER BY id LIMIT :limit", {"limit": EVENTS_PER_APPLY}
            )
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
            last_signup, signups = self._inbox_rows("signups", "email, name, newsletters")
            last_confirm, confirms = self._inbox_rows("confirms", "uid")
            last_choice, choices = self._inbox_rows("choices", "uid, choice")
            if not uids and not events and not signups and not confirms and not choices:
                return changed
            with self.transaction() as db:
                changed += self._unsubscribe(db, uids) if uids else 0
                changed += self._apply_events(db, events, soft_limit, soft_days)
                self._apply_signups(db, signups)
                changed += self._apply_confirms(db, [row["uid"] for row in confirms])
                changed += self._apply_choices(db, choices)
            self._inbox_done(last)
            for table, done in (
                ("events", last_event),
                ("signups", last_signup),
                ("confirms", last_confirm),
                ("choices", last_choice),
            ):
                if done:
                    self._inbox_db().execute(
                        f"DELETE FROM {table} WHERE id <= :done", {"done": done}
                    )

    def _inbox_rows(self, table: str, columns: str) -> tuple[int, list[Any]]:
        """(the last row's id, the rows) waiting in one of the inbox's tables."""
        if self._inbox is None and not self.inbox_path.is_file():
            return 0, []
        rows = (
            self._inbox_db()
            .execute(
                f"SELECT id, {columns} FROM {table} ORDER BY id LIMIT :limit",
                {"limit": EVENTS_PER_APPLY},
            )
            .fetchall()
        )
        return (rows[-1]["id"], rows) if rows else (0, [])

    @staticmethod
    def _apply_events(db: Database, events: list[Event], soft_limit: int, soft_days: float) -> int:
        """Store each event once; suppress on hard bounces, complaints and provider
        unsubscribes, and on the soft_limit-th soft bounce within soft_days."""
        changed = 0
        received = stamp(now_utc())
        for event in events:
            # each event in a savepoint: one that fails is set aside, the rest go on
            db.execute("SAVEPOINT event")
            try:
                changed += Inbox._apply_event(db, event, received, soft_limit, soft_days)
            except Exception as err:
                db.execute("ROLLBACK TO SAVEPOINT event")
                set_aside(db, event, err, received)
            db.execute("RELEASE SAVEPOINT event")
        return changed

    @staticmethod
    def _apply_event(
        db: Database, event: Event, received: str, soft_limit: int, soft_days: float
    ) -> int:
        """Store one event once, and change its subscriber's status as it says."""
        subscriber = db.execute(
            "SELECT id, status FROM subscribers WHERE email = :email", {"email": event.email}
        ).fetchone()
        issue = event.issue
        if issue is None and subscriber is not None and event.message_id:
            found = db.execute(
                "SELECT i.slug FROM deliveries d JOIN issues i ON i.key = d.issue"
                " WHERE d.subscriber_id = :id AND d.message_id IN (:bare, :bracketed)",
                {
                    "id": subscriber["id"],
                    "bare": event.message_id,
                    "bracketed": f"<{event.message_id.strip('<>')}>",
                },
            ).fetchone()
            issue = found["slug"] if found else None
        stored = db.execute(
            insert_event(db.dialect),
            event_row(event.fingerprint, event.provider, event.kind, event.email,
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
                "SELECT COUNT(*) FROM events WHERE email = :email AND kind = 'soft_bounce'"
                " AND occurred_at >= :since",
                {"email": event.email, "since": since},
            ).fetchone()[0]
            new = "bounced" if count >= soft_limit else None
        if new is None or status == new or (status != ACTIVE and new != "complained"):
            return 0  # a complaint outranks any other state; the rest only end 'active'
        db.execute(
            "UPDATE subscribers SET status = :status, updated_at = :now WHERE id = :id",
            {"status": new, "now": received, "id": subscriber["id"]},
        )
        return 1

    def inbox_waiting(self) -> int:
        return len(self._inbox_pending()[1]) + len(self._inbox_events()[1])
