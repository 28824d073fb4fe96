"""Joining newsletters as people are added: an import or a confirmed signup subscribes
them in the transaction that adds them, and an export's people who had left take their
status there too, so nobody who left is active for a moment."""

from __future__ import annotations

from collections.abc import Iterable

from digest.store.common import Database


def subscribe(
    db: Database,
    emails: str,
    newsletters: Iterable[str],
    now: str,
    again: bool = False,
    **params: str,
) -> None:
    """Subscribe the active subscribers whose addresses ``emails`` (a query, with
    ``params``) gives to each newsletter. Someone who left one stays off it unless
    ``again`` (a confirmed signup, an import with --resubscribe)."""
    conflict = "DO UPDATE SET status = 'subscribed', changed_at = excluded.changed_at"
    which = f"IN ({emails})" if emails else "= :email"  # one address: its index, no scan
    for newsletter in newsletters:
        db.execute(
            "INSERT INTO subscriptions (subscriber_id, newsletter, status, changed_at)"
            " SELECT s.id, :newsletter, 'subscribed', :now FROM subscribers s"
            f" WHERE s.status = 'active' AND s.email {which}"
            f" ON CONFLICT (subscriber_id, newsletter) {conflict if again else 'DO NOTHING'}",
            {"newsletter": newsletter, "now": now, **params},
        )


def subscribe_one(
    db: Database, email: str, newsletters: Iterable[str], now: str, again: bool = False
) -> None:
    """:func:`subscribe` for one address, by the address's own index."""
    subscribe(db, "", newsletters, now, again, email=email)


def mark_joined(db: Database, joined: dict[str, str], now: str) -> None:
    """People this import added (their created_at is the import's ``now``) join on the
    date their export says (``joined``: address -> YYYY-MM-DD)."""
    for email, date in joined.items():
        db.execute(
            "UPDATE subscribers SET created_at = :joined WHERE email = :email"
            " AND created_at = :now",
            {"joined": f"{date}T00:00:00.000+00:00", "email": email, "now": now},
        )


def mark_left(db: Database, leaving: dict[str, str], now: str) -> int:
    """The people an export says had left (``leaving``: address -> unsubscribed,
    bounced or complained) take that status."""
    changed = 0
    for email, status in leaving.items():
        changed += db.execute(
            "UPDATE subscribers SET status = :status, updated_at = :now"
            " WHERE email = :email AND status = 'active'",
            {"status": status, "now": now, "email": email},
        ).rowcount
    return changed
