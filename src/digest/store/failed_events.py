"""Provider events set aside: an event that could not be applied to the list (a value
the checks at the door did not foresee) is kept here with the reason, and the events
after it are applied as usual. ``digest events failed`` lists them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from digest.events import Event
from digest.store.common import Database


@dataclass(frozen=True)
class FailedEvent:
    event: Event
    reason: str
    failed_at: dt.datetime


def set_aside(db: Database, event: Event, error: BaseException, when: str) -> None:
    """Keep ``event`` with why it failed, in the transaction applying its neighbours."""
    reason = f"{type(error).__name__}: {error}"[:500]
    db.execute(
        "INSERT INTO events_failed (event, reason, failed_at) VALUES (:event, :reason, :when)",
        {"event": event.to_json(), "reason": reason, "when": when},
    )


class FailedEvents:
    """A part of the store: the events set aside."""

    _store_part = True
    if TYPE_CHECKING:
        db: Database

    def failed_events(self, limit: int = 1000) -> list[FailedEvent]:
        """The events set aside, oldest first."""
        rows = self.db.execute(
            "SELECT event, reason, failed_at FROM events_failed ORDER BY id LIMIT :limit",
            {"limit": limit},
        ).fetchall()
        return [
            FailedEvent(
                Event.from_json(r["event"]),
                r["reason"],
                dt.datetime.fromisoformat(r["failed_at"]).astimezone(dt.UTC),
            )
            for r in rows
        ]
