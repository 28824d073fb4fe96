"""What the HTTP API reads and changes beyond the other parts: the event log a page at a
time after a cursor, a subscriber's choices applied at once, their attributes merged."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from digest.store.common import loaded_attributes, now_utc, stamp
from digest.store.reports import Reports


@dataclass(frozen=True)
class Addition:
    """A subscriber an API call adds, and who asked (the audit log's actor)."""

    email: str
    name: str | None
    attributes: dict[str, object]
    newsletters: tuple[str, ...]
    actor: str


def _json(values: dict[str, object]) -> str:
    return json.dumps(values, sort_keys=True, ensure_ascii=False)


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

    def api_add(self, additions: list[Addition]) -> None:
        """Subscribers added by API calls, each subscribed to its newsletters and with its
        call's audit entry, all in one transaction: calls that arrive together share one
        commit (one fsync), and each is answered only once it is on disk. Someone already
        on the list keeps their status (one who left stays so, and off any newsletter they
        left); a name given replaces theirs, attributes given are added to theirs; a
        forgotten address is not added back."""
        from digest.store.common import new_uid, suppression_hash
        from digest.store.joining import subscribe_one

        now = stamp(now_utc())
        with self.transaction() as db:
            for item in additions:
                forgotten = db.execute(
                    "SELECT 1 FROM suppressions WHERE hash = :hash",
                    {"hash": suppression_hash(item.email)},
                ).fetchone()
                if forgotten is None:
                    found = db.execute(
                        "SELECT id, name, attributes FROM subscribers WHERE email = :email",
                        {"email": item.email},
                    ).fetchone()
                    if found is None:
                        db.execute(
                            "INSERT INTO subscribers (uid, email, name, status, attributes,"
                            " created_at, updated_at) VALUES (:uid, :email, :name, 'active',"
                            " :attrs, :now, :now)",
                            {"uid": new_uid(), "email": item.email, "name": item.name,
                             "attrs": _json(item.attributes), "now": now},
                        )  # fmt: skip
                    elif item.name or item.attributes:
                        merged = loaded_attributes(found["attributes"]) | item.attributes
                        db.execute(
                            "UPDATE subscribers SET name = :name, attributes = :attrs,"
                            " updated_at = :now WHERE id = :id",
                            {"name": item.name or found["name"], "now": now, "id": found["id"],
                             "attrs": _json({k: v for k, v in merged.items() if v is not None})},
                        )  # fmt: skip
                    subscribe_one(db, item.email, item.newsletters, now)
                db.execute(
                    "INSERT INTO audit_log (at, actor, action, subject, detail)"
                    " VALUES (:at, :actor, 'POST /api/v1/subscribers', :subject, :detail)",
                    {"at": now, "actor": item.actor, "subject": item.email,
                     "detail": '{"status": 202}'},
                )  # fmt: skip

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
            merged = loaded_attributes(found["attributes"]) | attributes
            merged = {k: v for k, v in merged.items() if v is not None}
            db.execute(
                "UPDATE subscribers SET attributes = :attrs, updated_at = :now WHERE id = :id",
                {"attrs": json.dumps(merged, sort_keys=True, ensure_ascii=False),
                 "now": stamp(now_utc()), "id": found["id"]},
            )  # fmt: skip
        return True
