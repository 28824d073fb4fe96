"""Scheduled issues: their frozen render, status and version, what is due and
published, and the lease one process holds while it delivers an issue."""

from __future__ import annotations

import datetime as dt
from typing import Any

from digest.store.common import (
    ISSUE_SELECT,
    Database,
    now_utc,
    owner_alive,
    owner_running,
    parse_stamp,
    stamp,
)
from digest.store.inbox import Inbox
from digest.store.records import (
    Published,
    ScheduledIssue,
)


class Issues(Inbox):
    _store_part = True

    @staticmethod
    def _issue(row: Any) -> ScheduledIssue:
        return ScheduledIssue(
            row["slug"], row["path"], row["source_hash"], parse_stamp(row["send_at"]), row["status"],
            row["rendered"], row["error"], row["lease_owner"], row["version"],
            newsletter=row["newsletter"], segment=row["segment"],
        )  # fmt: skip

    def save_schedule(self, issue: ScheduledIssue) -> None:
        """Insert, or replace the frozen render and time of an issue (keeping its ledger);
        either way the issue gets a new version, so a delivery under way notices."""
        now = stamp(now_utc())
        with self.transaction() as db:
            db.execute(
                "INSERT INTO issues (slug, path, source_hash, send_at, status, rendered, error,"
                " created_at, key, newsletter, segment) VALUES (:slug, :path, :source_hash,"
                " :send_at, :status, '', NULL, :now,"
                " (SELECT coalesce(max(key), 0) + 1 FROM issues), :newsletter, :segment)"
                " ON CONFLICT (slug) DO UPDATE SET path = excluded.path,"
                " source_hash = excluded.source_hash, send_at = excluded.send_at,"
                " status = excluded.status, error = NULL, version = issues.version + 1,"
                " newsletter = excluded.newsletter, segment = excluded.segment",
                {"slug": issue.slug, "path": issue.path, "source_hash": issue.source_hash,
                 "send_at": stamp(issue.send_at), "status": issue.status, "now": now,
                 "newsletter": issue.newsletter, "segment": issue.segment},
            )  # fmt: skip
            db.execute(
                "INSERT INTO renders (slug, rendered, web) VALUES (:slug, :rendered, :web)"
                " ON CONFLICT (slug) DO UPDATE SET rendered = excluded.rendered, web = excluded.web",
                {"slug": issue.slug, "rendered": issue.rendered_json, "web": issue.web_json},
            )

    def get_schedule(self, slug: str) -> ScheduledIssue | None:
        row = self.db.execute(f"{ISSUE_SELECT} WHERE i.slug = :slug", {"slug": slug}).fetchone()
        return self._issue(row) if row else None

    def list_schedules(self) -> list[ScheduledIssue]:
        return [
            self._issue(r) for r in self.db.execute(f"{ISSUE_SELECT} ORDER BY i.send_at, i.slug")
        ]

    def cancel_schedule(self, slug: str) -> bool:
        """Cancel an issue that is not yet sent, even one being delivered right now: the
        process delivering it stops before its next batch."""
        with self.transaction() as db:
            return (
                db.execute(
                    "UPDATE issues SET status = 'cancelled', version = version + 1"
                    " WHERE slug = :slug AND status IN ('scheduled', 'sending', 'stopped', 'incomplete')",
                    {"slug": slug},
                ).rowcount
                > 0
            )

    def has_started(self, slug: str) -> bool:
        row = self.db.execute(
            "SELECT started_at FROM issues WHERE slug = :slug", {"slug": slug}
        ).fetchone()
        return bool(row and row["started_at"])

    def _published(self, slug: str | None, scheduled_too: bool) -> list[Published]:
        rows = self.db.execute(
            "SELECT i.slug, r.web, coalesce(i.started_at, i.send_at) AS at"
            " FROM issues i JOIN renders r ON r.slug = i.slug WHERE r.web != ''"
            " AND (i.started_at IS NOT NULL OR (:scheduled_too AND i.status = 'scheduled'))"
            f" {'AND i.slug = :slug' if slug is not None else ''} ORDER BY at DESC, i.slug DESC",
            {"scheduled_too": scheduled_too, "slug": slug},
        )
        return [Published(r["slug"], r["web"], parse_stamp(r["at"])) for r in rows]

    def published_issues(self, *, scheduled_too: bool) -> list[Published]:
        """The archive, newest first: every issue whose sending has begun (or that is
        scheduled, with ``scheduled_too``), and that has a web version."""
        return self._published(None, scheduled_too)

    def published_issue(self, slug: str, *, scheduled_too: bool) -> Published | None:
        found = self._published(slug, scheduled_too)
        return found[0] if found else None

    def due_issues(self, now: dt.datetime) -> list[ScheduledIssue]:
        rows = self.db.execute(
            f"{ISSUE_SELECT} WHERE i.status IN ('scheduled', 'sending') AND i.send_at <= :now"
            " ORDER BY i.send_at",
            {"now": stamp(now)},
        )
        return [self._issue(r) for r in rows]

    def set_issue_status(
        self, slug: str, status: str, error: str | None = None, *, version: int | None = None
    ) -> bool:
        """Set an issue's status; with ``version``, only if it is still that version and
        being sent (a delivery never overrides what the operator did meanwhile)."""
        finished = stamp(now_utc()) if status in ("sent", "stopped", "incomplete") else None
        guard = " AND version = :version AND status = 'sending'" if version is not None else ""
        values: dict[str, object] = {
            "status": status,
            "error": error,
            "finished": finished,
            "slug": slug,
        }
        if version is not None:
            values["version"] = version
        with self.transaction() as db:
            return (
                db.execute(
                    "UPDATE issues SET status = :status, error = :error,"
                    " finished_at = COALESCE(:finished, finished_at) WHERE slug = :slug" + guard,
                    values,
                ).rowcount
                > 0
            )

    @staticmethod
    def _still_due(row: Any | None, version: int, now: dt.datetime) -> str | None:
        """Why an issue row may not be sent now, or None when it may."""
        if row is None:
            return "it is no longer scheduled"
        if row["status"] not in ("scheduled", "sending"):
            return f"it was {row['status']} meanwhile"
        if row["version"] != version:
            return "it was scheduled again meanwhile"
        if parse_stamp(row["send_at"]) > now:
            return "it is not due yet"
        return None

    def claim_issue(
        self, slug: str, owner: str, now: dt.datetime, lease: dt.timedelta, version: int
    ) -> str | None:
        """Take the issue for ``owner`` if it is still due at ``version`` and no other live
        owner holds it; returns why not, or None when claimed."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT lease_owner, lease_until, status, version, send_at FROM issues"
                " WHERE slug = :slug",
                {"slug": slug},
            ).fetchone()
            reason = self._still_due(row, version, now)
            if reason is not None:
                return reason
            holder, until = row["lease_owner"], row["lease_until"]
            if holder and holder != owner:
                if until and parse_stamp(until) > now and owner_alive(holder):
                    return f"already being delivered by {holder}"
                if owner_running(holder):  # its lease ran out, but it is still at work
                    return f"already being delivered by {holder} (that process is running)"
            db.execute(
                "UPDATE issues SET lease_owner = :owner, lease_until = :until, status = 'sending',"
                " started_at = COALESCE(started_at, :now) WHERE slug = :slug",
                {"owner": owner, "until": stamp(now + lease), "now": stamp(now), "slug": slug},
            )
            return None

    def release_issue(self, slug: str, owner: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE issues SET lease_owner = NULL, lease_until = NULL"
                " WHERE slug = :slug AND lease_owner = :owner",
                {"slug": slug, "owner": owner},
            )

    def renew_lease(self, slug: str, owner: str, lease_until: dt.datetime) -> None:
        """The owner is alive and still delivering ``slug`` (its heartbeat)."""
        with self._outcomes_transaction(suppressing=False) as db:
            self._renew_lease(db, slug, owner, lease_until)

    @staticmethod
    def _renew_lease(db: Database, slug: str, owner: str, lease_until: dt.datetime) -> None:
        """The owner is still at work: its lease on the issue runs on."""
        db.execute(
            "UPDATE issues SET lease_until = :until WHERE slug = :slug AND lease_owner = :owner",
            {"until": stamp(lease_until), "slug": slug, "owner": owner},
        )
