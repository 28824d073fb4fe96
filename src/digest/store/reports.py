"""What happened after sending: events by issue and address, engagement, the
delivery timeline and the window of an issue, for digest report."""

from __future__ import annotations

import datetime as dt
from typing import Any

from digest.store.common import (
    parse_stamp,
    stamp,
)
from digest.store.ledger import Ledger
from digest.store.records import (
    StoredEvent,
)


class Reports(Ledger):
    _store_part = True

    def issue_event_counts(self, slug: str, issue_id: str | None = None) -> dict[str, int]:
        """Events recorded for an issue, by kind (``issue_id``: the ASCII id providers echo),
        and how many of them named an address not on the list ("not_on_the_list")."""
        rows = self.db.execute(
            f"SELECT kind, COUNT(*) AS n, {self.db.dialect.count_null('subscriber_id')}"
            " AS strangers FROM events WHERE issue IN (:slug, :issue_id) GROUP BY kind",
            {"slug": slug, "issue_id": issue_id or slug},
        ).fetchall()
        counts = {r["kind"]: r["n"] for r in rows}
        strangers = sum(r["strangers"] or 0 for r in rows)
        return counts | ({"not_on_the_list": strangers} if strangers else {})

    def issue_events(
        self, slug: str, issue_id: str | None, kinds: tuple[str, ...]
    ) -> list[StoredEvent]:
        """The issue's events of the given kinds, oldest first."""
        rows = self.db.execute(
            "SELECT provider, kind, email, issue, message_id, detail, occurred_at FROM events"
            f" WHERE issue IN (:slug, :issue_id) AND kind {self.db.dialect.in_list('kinds')}"
            " ORDER BY occurred_at, id",
            {
                "slug": slug,
                "issue_id": issue_id or slug,
                "kinds": self.db.dialect.values(list(kinds)),
            },
        ).fetchall()
        return [self._event(r) for r in rows]

    @staticmethod
    def _event(r: Any) -> StoredEvent:
        return StoredEvent(r["provider"], r["kind"], r["email"], r["issue"], r["message_id"],
                           r["detail"], parse_stamp(r["occurred_at"]))  # fmt: skip

    def engagement(self, slug: str, issue_id: str | None) -> tuple[int, list[tuple[str, int]]]:
        """Unique openers, and unique clickers per link, of an issue (tracking on)."""
        issues = {"slug": slug, "issue_id": issue_id or slug}
        opened = self.db.execute(
            "SELECT COUNT(DISTINCT email) FROM events WHERE issue IN (:slug, :issue_id)"
            " AND kind = 'open'",
            issues,
        ).fetchone()[0]
        clicks = self.db.execute(
            "SELECT detail, COUNT(DISTINCT email) AS n FROM events"
            " WHERE issue IN (:slug, :issue_id) AND kind = 'click' GROUP BY detail ORDER BY n DESC",
            issues,
        ).fetchall()
        return int(opened), [(r["detail"], r["n"]) for r in clicks]

    def issue_window(self, slug: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        """When the issue started going out, and when the next issue did (or None)."""
        row = self.db.execute(
            "SELECT started_at FROM issues WHERE slug = :slug", {"slug": slug}
        ).fetchone()
        if row is None or row["started_at"] is None:
            return None, None
        later = self.db.execute(
            "SELECT MIN(started_at) AS t FROM issues WHERE started_at > :started AND slug != :slug",
            {"started": row["started_at"], "slug": slug},
        ).fetchone()
        return parse_stamp(row["started_at"]), parse_stamp(later["t"]) if later["t"] else None

    def unsubscribes_between(
        self, start: dt.datetime, end: dt.datetime | None, newsletter: str | None = None
    ) -> dict[str, int]:
        """Unsubscribes through digest's own links and mailto, by channel, in a window;
        with ``newsletter``, those that left it or every newsletter, not another one."""
        mine = ""
        if newsletter is not None:  # the event says "by one-click from alerts"
            mine = " AND (detail NOT LIKE '% from %' OR detail LIKE :mine ESCAPE '!')"
        escaped = (newsletter or "").replace("!", "!!").replace("_", "!_").replace("%", "!%")
        rows = self.db.execute(
            "SELECT provider, COUNT(*) AS n FROM events WHERE kind = 'unsubscribe'"
            f" AND issue IS NULL AND occurred_at >= :start{mine}"
            f" {'AND occurred_at < :end' if end else ''} GROUP BY provider",
            {"start": stamp(start), "end": stamp(end) if end else None,
             "mine": f"% from {escaped}"},
        )  # fmt: skip
        return {r["provider"]: r["n"] for r in rows}

    def delivery_timeline(self, slug: str) -> list[tuple[str, str, int]]:
        """(minute, status, count) of the issue's recipients, by when they were settled."""
        rows = self.db.execute(
            f"SELECT {self.db.dialect.minute('updated_at')} AS minute, status,"
            " COUNT(*) AS n FROM deliveries WHERE issue = :key GROUP BY minute, status"
            " ORDER BY minute",
            {"key": self._key(slug)},
        )
        return [(r["minute"], r["status"], r["n"]) for r in rows]

    def events_for(self, email: str) -> list[StoredEvent]:
        """Everything recorded about one address, oldest first."""
        rows = self.db.execute(
            "SELECT provider, kind, email, issue, message_id, detail, occurred_at FROM events"
            " WHERE email = :email ORDER BY occurred_at, id",
            {"email": email},
        ).fetchall()
        return [self._event(r) for r in rows]
