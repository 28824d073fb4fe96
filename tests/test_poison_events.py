"""No event stops the ones after it: every field is checked where a webhook arrives (a
bad one is a 400 and stores nothing, never a 500), and an event that still fails when
it is applied is set aside with its reason while every later one is applied."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from digest.config import Delivery as DeliverySettings
from digest.config import Settings, Unsubscribe, Webhooks
from digest.events import Event
from digest.store.sqlite import SQLiteStore
from digest.web import create_app
from tests.fakes import mailgun_post, postmark_post, resend_post, sendgrid_keys, sendgrid_post
from tests.helpers import SIGNING_ENV, SIGNING_KEY

POSTMARK_AUTH = "hooks:pm-s3cret"
MAILGUN_KEY = "mailgun-signing-key-0123"
RESEND_SECRET = "whsec_" + base64.b64encode(b"resend-secret-0123456789ab").decode()
SENDGRID_PRIVATE, SENDGRID_PUBLIC = sendgrid_keys()


@pytest.fixture(scope="module")
def app_and_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, SQLiteStore]]:
    import os

    folder = tmp_path_factory.mktemp("poison")
    env = {
        SIGNING_ENV: SIGNING_KEY,
        "DIGEST_POSTMARK_WEBHOOK_AUTH": POSTMARK_AUTH,
        "DIGEST_MAILGUN_WEBHOOK_KEY": MAILGUN_KEY,
        "DIGEST_RESEND_WEBHOOK_SECRET": RESEND_SECRET,
        "DIGEST_SENDGRID_WEBHOOK_KEY": SENDGRID_PUBLIC,
    }
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    values = Settings(
        unsubscribe=Unsubscribe(signing_key_env=SIGNING_ENV),
        delivery=DeliverySettings(database=str(folder / "digest.sqlite3")),
        webhooks=Webhooks(soft_bounce_limit=3),
    )
    store = SQLiteStore(values.delivery.database)
    store.upsert_subscribers(
        [(f"p{i}@example.org", None, {}) for i in range(20)], resubscribe=False
    )
    try:
        with TestClient(create_app(values, (SIGNING_KEY.encode(),))) as client:
            yield client, store
    finally:
        store.close()
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def post(client: TestClient, signed: Any) -> int:
    return client.post(signed.path, headers=signed.headers, content=signed.body).status_code


def bounce(email: str, at: Any, record_id: int) -> dict[str, Any]:
    return {"RecordType": "Bounce", "ID": record_id, "Type": "HardBounce", "Email": email,
            "BouncedAt": at, "MessageID": f"m-{record_id}"}  # fmt: skip


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00", 1e20, -1e15, "9999-12-31T23:59:59Z", math.inf, "2026-02-30"]
)
def test_an_event_with_a_date_out_of_range_is_refused_and_later_events_apply(
    app_and_store: tuple[TestClient, SQLiteStore], at: Any
) -> None:
    client, store = app_and_store
    record_id = abs(hash(repr(at))) % 10**9
    poison = postmark_post(bounce("p1@example.org", at, record_id), POSTMARK_AUTH)
    if isinstance(at, float) and math.isinf(at):
        poison.body = poison.body.replace(b"Infinity", b"1e999")
    assert 400 <= post(client, poison) < 500
    later = bounce(f"p{2 + record_id % 15}@example.org", "2026-11-29T06:00:00Z", record_id + 1)
    assert post(client, postmark_post(later, POSTMARK_AUTH)) == 200
    store.apply_inbox()
    assert store.inbox_waiting() == 0
    assert store.get_subscriber(later["Email"]).status == "bounced"  # type: ignore[union-attr]
    assert store.get_subscriber("p1@example.org").status == "active"  # type: ignore[union-attr]


def test_an_event_that_fails_to_apply_is_set_aside_and_never_blocks_the_next(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "digest.sqlite3")
    store.upsert_subscribers([("a@example.org", None, {}), ("b@example.org", None, {})],
                             resubscribe=False)  # fmt: skip
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)  # soft-bounce counting goes before it
    poison = Event("postmark", "soft_bounce", "a@example.org", oldest, detail="x")
    good = Event("postmark", "hard_bounce", "b@example.org", dt.datetime.now(dt.UTC))
    store.receive_events([poison.with_fingerprint(), good.with_fingerprint()])
    store.apply_inbox()
    assert store.inbox_waiting() == 0
    assert store.get_subscriber("b@example.org").status == "bounced"  # type: ignore[union-attr]
    [failed] = store.failed_events()
    assert failed.event.email == "a@example.org" and "date" in failed.reason.lower()
    store.apply_inbox()  # nothing is left to retry; the set-aside event stays listed
    assert len(store.failed_events()) == 1


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["0001-01-01T00:00:00", "2026-11-29T06:00:00Z", "p3@example.org",
                     "P3@EXAMPLE.ORG", "bounce", "HardBounce", "\x00", "not a date", ""]),
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)  # fmt: skip


def shaped(provider: str, fields: dict[str, Any]) -> Any:
    """A body in the provider's shape with generated values in its fields."""
    if provider == "postmark":
        return {"RecordType": fields.pop("kind", "Bounce"), **fields}
    if provider == "sendgrid":
        return [{"event": fields.pop("kind", "bounce"), **fields}]
    if provider == "mailgun":
        return {"event": fields.pop("kind", "failed"), **fields}
    return {"type": fields.pop("kind", "email.bounced"), "created_at": fields.pop("at", None),
            "data": fields}  # fmt: skip


FIELDS = {
    "postmark": ["Email", "Recipient", "BouncedAt", "ChangedAt", "Type", "ID", "MessageID",
                 "Metadata", "Description", "SuppressSending", "SuppressionReason", "Tag"],
    "sendgrid": ["email", "timestamp", "type", "reason", "sg_event_id", "sg_message_id",
                 "issue", "url", "response"],
    "mailgun": ["recipient", "timestamp", "severity", "id", "reason", "user-variables",
                "delivery-status", "message"],
    "resend": ["to", "email_id", "tags", "bounce", "at", "click"],
}  # fmt: skip
KINDS = {
    "postmark": ["Bounce", "SpamComplaint", "SubscriptionChange", "Delivery", "Open", "Click"],
    "sendgrid": ["bounce", "dropped", "spamreport", "unsubscribe", "delivered", "open", "click"],
    "mailgun": ["failed", "complained", "unsubscribed", "delivered", "opened", "clicked"],
    "resend": ["email.bounced", "email.complained", "email.delivered", "email.opened",
               "email.clicked", "email.delivery_delayed"],
}  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, Any]:
    provider = draw(st.sampled_from(sorted(FIELDS)))
    fields = draw(st.dictionaries(st.sampled_from(FIELDS[provider]), values, max_size=6))
    fields["kind"] = draw(st.sampled_from(KINDS[provider]) | st.text(max_size=10))
    return provider, shaped(provider, fields)


def signed(provider: str, body: Any) -> Any:
    if provider == "postmark":
        return postmark_post(body, POSTMARK_AUTH)
    if provider == "sendgrid":
        return sendgrid_post(body, SENDGRID_PRIVATE)
    if provider == "mailgun":
        return mailgun_post(body, MAILGUN_KEY)
    return resend_post(body, RESEND_SECRET)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(bodies())
def test_generated_events_are_answered_2xx_or_4xx_and_the_applier_always_drains(
    app_and_store: tuple[TestClient, SQLiteStore], body: tuple[str, Any]
) -> None:
    client, store = app_and_store
    provider, content = body
    try:
        request = signed(provider, content)
    except ValueError:  # json.dumps refuses NaN? no: it writes it; other refusals skip
        return
    status = post(client, request)
    assert status < 500, (status, provider, json.dumps(content, default=str)[:300])
    store.apply_inbox()
    assert store.inbox_waiting() == 0


def test_events_set_aside_are_listed_and_the_report_points_to_them(
    in_tmp: Path, issue_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    from tests.conftest import run
    from tests.helpers import settings as make_settings
    from tests.helpers import yaml_config

    values = make_settings(in_tmp)
    (in_tmp / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
    store = SQLiteStore(values.delivery.database)
    store.upsert_subscribers([("a@example.org", None, {})], resubscribe=False)
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    store.receive_events(
        [Event("sendgrid", "soft_bounce", "a@example.org", oldest).with_fingerprint()]
    )
    store.apply_inbox()
    store.close()
    listed = run("events", "failed")
    assert listed.exit_code == 0
    assert "sendgrid  soft_bounce  a@example.org  OverflowError" in listed.stdout
    assert "1 event(s) set aside" in listed.stderr
    scheduled = run("schedule", str(issue_file), "--at", "now")
    assert scheduled.exit_code == 0, scheduled.output
    report = run("report", str(issue_file))
    assert "1 provider event(s) could not be applied" in report.stderr
