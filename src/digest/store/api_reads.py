"""What the HTTP API reads and changes beyond the other parts: the event log a page at a
time after a cursor, a subscriber's choices applied at once, their attributes merged."""

from __future__ import annotations

import json
from typing import Any

from digest.store.common import now_utc, stamp
from digest.store.reports import Reports


class ApiReads(Reports):
    _store_part = True

    def events_after(self, cursor: int, limit: int) -> list[dict[str, Any]]:
        """Events with ids after ``cursor``, oldest first; each with its id (the next
        cursor is the last one's)."""
        rows = self.db.execute(
            "SELECT id, provider, kind, email, issue, detail, occurred_at FROM events"
            " WHERE id > :cursor ORDER BY id LIMIT :limit",
            {"cursor": cursor, "limit": limit},
        ).fetchall()
        return [
            {"id": int(r["id"]), "provider": r["provider"], "kind": r["kind"], "email": r["email"],
             "issue": r["issue"], "detail": r["detail"], "occurred_at": str(r["occurred_at"])}
            for r in rows
        ]  # fmt: skip

    def api_add(
        self,
        email: str,
        name: str | None,
        attributes: dict[str, object],
        newsletters: tuple[str, ...],
        audit: tuple[str, str],
    ) -> None:
        """One subscriber added by an API call, subscribed to ``newsletters``, and the
        call's audit entry (actor, action), in one short transaction. Someone already on
        the list keeps their status (one who left stays so, and on no newsletter they
        left); a name given replaces theirs, attributes given are added to theirs."""
        from digest.store.common import new_uid, suppression_hash
        from digest.store.joining import subscribe

        now = stamp(now_utc())
        attrs = json.dumps(attributes, sort_keys=True, ensure_ascii=False)
        with self.transaction() as db:
            forgotten = db.execute(
                "SELECT 1 FROM suppressions WHERE hash = :hash", {"hash": suppression_hash(email)}
            ).fetchone()
            if forgotten is None:
                db.execute(
                    "INSERT INTO subscribers (uid, email, name, status, attributes, created_at,"
                    " updated_at) VALUES (:uid, :email, :name, 'active', :attrs, :now, :now)"
                    " ON CONFLICT (email) DO UPDATE SET"
                    " name = coalesce(excluded.name, subscribers.name), updated_at = :now",
                    {"uid": new_uid(), "email": email, "name": name, "attrs": attrs, "now": now},
                )
                subscribe(db, "SELECT :email", newsletters, now, email=email)
            db.execute(
                "INSERT INTO audit_log (at, actor, action, subject, detail)"
                " VALUES (:at, :actor, :action, :subject, :detail)",
                {"at": now, "actor": audit[0], "action": audit[1], "subject": email,
                 "detail": '{"status": 202}'},
            )  # fmt: skip
        if attributes and forgotten is None:
            self.merge_attributes(email, attributes)

    def apply_choice(self, uid: str, choice: dict[str, object]) -> int:
        """A choice (name, newsletters, offered, leave_all) applied now, not through the
        inbox: what an API call that changes a subscriber does."""
        with self.transaction() as db:
            row = {"uid": uid, "choice": json.dumps(choice)}
            return self._apply_choices(db, [row])

    def merge_attributes(self, email: str, attributes: dict[str, object]) -> bool:
        """Set these attributes of ``email`` (a None value removes one); whether found."""
        with self.transaction() as db:
            found = db.execute(
                "SELECT id, attributes FROM subscribers WHERE email = :email", {"email": email}
            ).fetchone()
            if found is None:
                return False
            merged = json.loads(found["attributes"] or "{}") if isinstance(
                found["attributes"], str) else dict(found["attributes"] or {})  # fmt: skip
            merged.update(attributes)
            merged = {k: v for k, v in merged.items() if v is not None}
            db.execute(
                "UPDATE subscribers SET attributes = :attrs, updated_at = :now WHERE id = :id",
                {"attrs": json.dumps(merged, sort_keys=True, ensure_ascii=False),
                 "now": stamp(now_utc()), "id": found["id"]},
            )  # fmt: skip
        return True
