"""The desk's records (users, sessions, the audit log, schedules waiting for approval)
behave alike on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.errors import DigestError
from digest.store.sqlite import SQLiteStore
from tests.test_store_contract import database, store  # noqa: F401  (the fixtures)


def test_users_sessions_audit_and_approvals_alike(store: SQLiteStore) -> None:  # noqa: F811
    user = store.add_user("ed@example.org", "Ed", "editor", "argon2-hash")
    with pytest.raises(DigestError, match="already"):
        store.add_user("ed@example.org", None, "admin", "other")
    assert [u.email for u in store.users()] == ["ed@example.org"]
    store.remember_zone(user.id, "Europe/Berlin")
    assert store.user_by_email("ed@example.org").zone == "Europe/Berlin"  # type: ignore[union-attr]

    store.start_session(user.id, "token-hash", "csrf", dt.timedelta(hours=1))
    found = store.session_user("token-hash")
    assert found is not None and found[0].email == "ed@example.org" and found[1] == "csrf"
    store.start_session(user.id, "old-hash", "c2", dt.timedelta(seconds=-1))
    assert store.session_user("old-hash") is None  # expired
    store.update_user("ed@example.org", disabled=True)
    assert store.session_user("token-hash") is None  # disabled: its sessions are gone
    store.update_user("ed@example.org", disabled=False, role="admin")
    assert store.user_by_email("ed@example.org").role == "admin"  # type: ignore[union-attr]
    store.start_session(user.id, "again", "c3", dt.timedelta(hours=1))
    store.end_session("again")
    assert store.session_user("again") is None

    store.audit("ed@example.org", "edited", "an-issue", fields=["subject"])
    store.audit("cli:root", "user added", "x@example.org")
    entries = store.audit_entries()
    assert [e.action for e in entries] == ["user added", "edited"]  # newest first
    assert entries[1].detail == {"fields": ["subject"]}
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert store.audit_entries(since=later) == []

    send_at = dt.datetime(2099, 7, 5, 6, 0, tzinfo=dt.UTC)
    store.request_approval("an-issue", "v1", send_at, "Europe/Berlin", "ed@example.org")
    asked = store.approval_request("an-issue")
    assert asked is not None and asked.send_at == send_at and asked.zone == "Europe/Berlin"
    assert [a.slug for a in store.approval_requests()] == ["an-issue"]
    assert store.drop_approval("an-issue") and not store.drop_approval("an-issue")
