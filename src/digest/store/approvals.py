"""Schedules waiting for a second person (the desk's ``desk.require_approval``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from digest.store.common import Database, now_utc, parse_stamp, stamp


@dataclass(frozen=True)
class ApprovalRequest:
    slug: str
    version: str  # the issue file's hash when the schedule was asked for
    send_at: dt.datetime  # UTC
    zone: str
    requested_by: str
    requested_at: dt.datetime


def _request(row: Any) -> ApprovalRequest:
    return ApprovalRequest(
        row["slug"], row["version"], parse_stamp(str(row["send_at"])), row["zone"],
        row["requested_by"], parse_stamp(str(row["requested_at"])),
    )  # fmt: skip


class Approvals:
    """A part of the store: the schedules asked for and not yet approved."""

    _store_part = True
    if TYPE_CHECKING:

        def transaction(self) -> Any: ...

        db: Database

    def request_approval(
        self, slug: str, version: str, send_at: dt.datetime, zone: str, requested_by: str
    ) -> None:
        """Ask for ``slug`` to be scheduled (a newer request replaces an older one)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO approvals (slug, version, send_at, zone, requested_by, requested_at)"
                " VALUES (:slug, :version, :send_at, :zone, :by, :now) ON CONFLICT (slug) DO"
                " UPDATE SET version = excluded.version, send_at = excluded.send_at,"
                " zone = excluded.zone, requested_by = excluded.requested_by,"
                " requested_at = excluded.requested_at",
                {
                    "slug": slug,
                    "version": version,
                    "send_at": stamp(send_at),
                    "zone": zone,
                    "by": requested_by,
                    "now": stamp(now_utc()),
                },
            )

    def approval_request(self, slug: str) -> ApprovalRequest | None:
        row = self.db.execute(
            "SELECT slug, version, send_at, zone, requested_by, requested_at FROM approvals"
            " WHERE slug = :slug",
            {"slug": slug},
        ).fetchone()
        return _request(row) if row else None

    def approval_requests(self) -> list[ApprovalRequest]:
        rows = self.db.execute(
            "SELECT slug, version, send_at, zone, requested_by, requested_at FROM approvals"
            " ORDER BY send_at"
        ).fetchall()
        return [_request(r) for r in rows]

    def drop_approval(self, slug: str) -> bool:
        with self.transaction() as db:
            found = db.execute(
                "SELECT 1 FROM approvals WHERE slug = :slug", {"slug": slug}
            ).fetchone()
            db.execute("DELETE FROM approvals WHERE slug = :slug", {"slug": slug})
        return found is not None
