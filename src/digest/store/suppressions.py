"""Undoing suppressions the operator finds were wrong (a relay that refused the sender
and was read as bouncing everyone, a forged or misread event): bounced subscribers go
back to active, each with an ``unsuppressed`` event that records when and why.

Only ``bounced`` is undone here: an unsubscribe or a complaint is the reader's own word,
and only the reader takes it back (by signing up again)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

BOUNCE_KINDS = ("hard_bounce", "soft_bounce")
UNSUPPRESSED = "unsuppressed"


class Suppressions:
    """A part of the store: the statements that undo suppressions."""

    _store_part = True  # its public methods are guarded like the store's own

    if TYPE_CHECKING:

        def transaction(self) -> Any: ...

    def unsuppress(
        self,
        since: dt.datetime,
        reason: str,
        *,
        provider: str | None = None,
        issue: str | None = None,
        dry_run: bool = False,
        now: dt.datetime | None = None,
    ) -> list[str]:
        """Put back to active every subscriber bounced by an event received at or after
        ``since`` (from ``provider``, about ``issue``, when given); the addresses, sorted.
        Each gets an audit event naming ``reason``. ``dry_run`` changes nothing."""
        from digest.store.common import stamp

        when = stamp(now or dt.datetime.now(dt.UTC))
        query = (
            "SELECT DISTINCT s.id, s.email FROM subscribers s JOIN events e"
            " ON e.subscriber_id = s.id WHERE s.status = 'bounced'"
            " AND e.kind IN ('hard_bounce', 'soft_bounce') AND e.received_at >= :since"
        )
        if provider is not None:
            query += " AND e.provider = :provider"
        if issue is not None:
            query += " AND e.issue = :issue"
        with self.transaction() as db:
            rows = db.execute(
                query, {"since": stamp(since), "provider": provider, "issue": issue}
            ).fetchall()
            if dry_run or not rows:
                return sorted(r["email"] for r in rows)
            db.execute(
                "UPDATE subscribers SET status = 'active', updated_at = :now"
                f" WHERE status = 'bounced' AND id {db.dialect.in_list('ids')}",
                {"now": when, "ids": db.dialect.values([r["id"] for r in rows])},
            )
            db.executemany(
                "INSERT INTO events (fingerprint, provider, kind, email, subscriber_id, issue,"
                " message_id, detail, occurred_at, received_at)"
                " VALUES (:fingerprint, 'operator', :kind, :email, :id, NULL, NULL, :detail,"
                " :now, :now)",
                [
                    {"fingerprint": f"unsuppress:{r['id']}:{when}", "kind": UNSUPPRESSED,
                     "email": r["email"], "id": r["id"], "detail": reason[:500], "now": when}
                    for r in rows
                ],
            )  # fmt: skip
        return sorted(r["email"] for r in rows)
