"""Provider webhooks against a real `digest serve`: events signed exactly as each provider
signs them, posted over real HTTP; forged, stale and replayed ones refused."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.store.sqlite import SQLiteStore
from digest.tokens import make_token
from tests.fakes import (
    SignedPost,
    mailgun_post,
    postmark_post,
    resend_post,
    sendgrid_keys,
    sendgrid_post,
)
from tests.helpers import SIGNING_ENV, SIGNING_KEY, start_serve

POSTMARK_AUTH = "hooks:pm-s3cret"
MAILGUN_KEY = "mailgun-signing-key-0123"
RESEND_SECRET = "whsec_" + base64.b64encode(b"resend-secret-0123456789ab").decode()
PEOPLE = [f"{n}@example.org" for n in ("ann", "bob", "cy", "dee", "eve", "fay", "gus")]


@dataclass
class Served:
    base: str
    store: SQLiteStore
    sendgrid_private: Any
    folder: Path

    def post(self, signed: SignedPost) -> httpx.Response:
        return httpx.post(
            self.base + signed.path.lstrip("/"),
            headers=signed.headers,
            content=signed.body,
            timeout=5,
        )

    def status(self, email: str) -> str:
        subscriber = self.store.get_subscriber(email)
        assert subscriber is not None
        return subscriber.status

    def wait_for(self, email: str, status: str, seconds: float = 8) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.status(email) == status:
                return
            time.sleep(0.1)
        raise AssertionError(f"{email} is {self.status(email)}, not {status}")

    def event_count(self) -> int:
        return int(self.store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def settle(self) -> None:
        """Wait until the server's inbox is applied."""
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and self.store.inbox_waiting():
            time.sleep(0.1)
        time.sleep(0.2)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    store = SQLiteStore(tmp_path / "digest.sqlite3")
    store.upsert_subscribers(((e, None, {}) for e in PEOPLE), resubscribe=False)
    private, public = sendgrid_keys()
    (tmp_path / "config.yaml").write_text(
        f"unsubscribe:\n  signing_key_env: {SIGNING_ENV}\nwebhooks:\n  soft_bounce_limit: 3\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        SIGNING_ENV: SIGNING_KEY,
        "DIGEST_POSTMARK_WEBHOOK_AUTH": POSTMARK_AUTH,
        "DIGEST_MAILGUN_WEBHOOK_KEY": MAILGUN_KEY,
        "DIGEST_RESEND_WEBHOOK_SECRET": RESEND_SECRET,
        "DIGEST_SENDGRID_WEBHOOK_KEY": public,
    }
    server, base = start_serve(tmp_path, env)
    try:
        yield Served(base, store, private, tmp_path)
    finally:
        server.terminate()
        server.wait(timeout=10)
        store.close()


def postmark_bounce(email: str, kind: str = "HardBounce", record_id: int = 1) -> dict[str, Any]:
    return {
        "RecordType": "Bounce", "ID": record_id, "Type": kind, "MessageID": f"pm-{record_id}",
        "Email": email, "BouncedAt": "2026-11-29T06:00:00Z", "Description": "The address does not exist.",
        "Metadata": {"issue": "2026-11-30-weekly"}, "Tag": "2026-11-30-weekly",
    }  # fmt: skip


def mailgun_event(
    email: str, event: str = "failed", severity: str = "permanent", n: int = 1
) -> dict[str, Any]:
    return {
        "event": event, "severity": severity, "recipient": email, "id": f"mg-{email}-{n}",
        "timestamp": time.time(), "user-variables": {"issue": "2026-11-30-weekly"},
        "delivery-status": {"code": 550 if severity == "permanent" else 421, "message": "mailbox unavailable"},
        "message": {"headers": {"message-id": "20261129.abc@mg.example.org"}},
    }  # fmt: skip


def resend_event(email: str, kind: str = "email.complained") -> dict[str, Any]:
    return {
        "type": kind, "created_at": "2026-11-29T06:00:00.000Z",
        "data": {"email_id": "re-1", "to": [email], "tags": {"issue": "2026-11-30-weekly"}},
    }  # fmt: skip


def test_each_providers_signed_events_suppress_the_people_they_name(served: Served) -> None:
    assert (
        served.post(postmark_post(postmark_bounce("ann@example.org"), POSTMARK_AUTH)).status_code
        == 200
    )
    sendgrid = sendgrid_post(
        [
            {"email": "bob@example.org", "event": "spamreport", "sg_event_id": "sg-1", "timestamp": 1796000000, "issue": "2026-11-30-weekly"},
            {"email": "cy@example.org", "event": "bounce", "type": "bounce", "sg_event_id": "sg-2", "timestamp": 1796000000, "reason": "550 5.1.1 unknown"},
            {"email": "fay@example.org", "event": "delivered", "sg_event_id": "sg-3", "timestamp": 1796000000},
        ],
        served.sendgrid_private,
    )  # fmt: skip
    assert served.post(sendgrid).status_code == 200
    assert (
        served.post(mailgun_post(mailgun_event("dee@example.org"), MAILGUN_KEY)).status_code == 200
    )
    assert (
        served.post(resend_post(resend_event("eve@example.org"), RESEND_SECRET)).status_code == 200
    )
    served.wait_for("ann@example.org", "bounced")
    served.wait_for("bob@example.org", "complained")
    served.wait_for("cy@example.org", "bounced")
    served.wait_for("dee@example.org", "bounced")
    served.wait_for("eve@example.org", "complained")
    served.settle()
    assert served.status("fay@example.org") == "active"  # delivered: recorded, nothing more
    assert [e.kind for e in served.store.events_for("fay@example.org")] == ["delivered"]
    (ann,) = served.store.events_for("ann@example.org")
    assert (ann.provider, ann.kind, ann.issue) == ("postmark", "hard_bounce", "2026-11-30-weekly")


def test_forged_stale_and_replayed_requests_are_refused_and_record_nothing(served: Served) -> None:
    other_private, _ = sendgrid_keys()
    stale = int(time.time()) - 3600
    refused = {
        "postmark wrong credentials": (postmark_post(postmark_bounce("ann@example.org"), "hooks:guess"), 401),
        "postmark no credentials": (SignedPost("/webhooks/postmark", {}, b"{}"), 401),
        "mailgun forged": (mailgun_post(mailgun_event("bob@example.org"), "not-the-key"), 401),
        "mailgun stale": (mailgun_post(mailgun_event("bob@example.org"), MAILGUN_KEY, timestamp=stale), 400),
        "sendgrid other key": (sendgrid_post([{"email": "cy@example.org", "event": "spamreport"}], other_private), 401),
        "sendgrid stale": (sendgrid_post([{"email": "cy@example.org", "event": "spamreport"}], served.sendgrid_private, timestamp=stale), 400),
        "resend forged": (resend_post(resend_event("dee@example.org"), "whsec_" + base64.b64encode(b"wrong").decode()), 401),
        "resend stale": (resend_post(resend_event("dee@example.org"), RESEND_SECRET, timestamp=stale), 400),
        "resend unsigned": (SignedPost("/webhooks/resend", {}, b"{}"), 401),
    }  # fmt: skip
    for name, (signed, status) in refused.items():
        assert served.post(signed).status_code == status, name
    # a genuine request, then the same request again: the replay is refused
    genuine = mailgun_post(mailgun_event("eve@example.org", "complained"), MAILGUN_KEY)
    assert served.post(genuine).status_code == 200
    assert served.post(genuine).status_code == 400
    once = resend_post(resend_event("fay@example.org"), RESEND_SECRET, message_id="msg_fixed")
    assert served.post(once).status_code == 200
    assert served.post(once).status_code == 400
    served.settle()
    assert {p: served.status(p) for p in PEOPLE} == {
        p: ("complained" if p in ("eve@example.org", "fay@example.org") else "active")
        for p in PEOPLE
    }
    assert served.event_count() == 2


def test_the_same_event_twice_counts_once_and_strangers_are_kept_not_refused(
    served: Served,
) -> None:
    record = postmark_bounce("ann@example.org", record_id=77)
    assert served.post(postmark_post(record, POSTMARK_AUTH)).status_code == 200
    assert served.post(postmark_post(record, POSTMARK_AUTH)).status_code == 200  # a provider retry
    stranger = postmark_bounce("stranger@example.net", record_id=78)
    assert served.post(postmark_post(stranger, POSTMARK_AUTH)).status_code == 200
    served.wait_for("ann@example.org", "bounced")
    served.settle()
    assert len(served.store.events_for("ann@example.org")) == 1
    assert [e.kind for e in served.store.events_for("stranger@example.net")] == ["hard_bounce"]


def test_soft_bounces_suppress_only_at_the_configured_count(served: Served) -> None:
    for n in (1, 2):
        signed = mailgun_post(
            mailgun_event("gus@example.org", severity="temporary", n=n), MAILGUN_KEY
        )
        assert served.post(signed).status_code == 200
    served.settle()
    assert served.status("gus@example.org") == "active"
    third = mailgun_post(mailgun_event("gus@example.org", severity="temporary", n=3), MAILGUN_KEY)
    assert served.post(third).status_code == 200
    served.wait_for("gus@example.org", "bounced")


def test_a_mail_to_the_unsubscribe_address_unsubscribes_that_person(served: Served) -> None:
    subscriber = served.store.get_subscriber("cy@example.org")
    assert subscriber is not None
    token = make_token(SIGNING_KEY.encode(), served.store.list_identity(), subscriber.uid)
    inbound = {
        "From": "cy@example.org",
        "To": "unsubscribe@example.org",
        "Subject": f"unsubscribe {token}",
    }
    assert served.post(postmark_post(inbound, POSTMARK_AUTH, "postmark-inbound")).status_code == 200
    served.wait_for("cy@example.org", "unsubscribed")
    forged = {
        "From": "x@example.org",
        "To": "unsubscribe@example.org",
        "Subject": "unsubscribe abc.def",
    }
    assert served.post(postmark_post(forged, POSTMARK_AUTH, "postmark-inbound")).status_code == 200
    wrong_auth = postmark_post(
        inbound | {"Subject": f"unsubscribe {token}"}, "x:y", "postmark-inbound"
    )
    assert served.post(wrong_auth).status_code == 401


def test_a_verified_body_in_the_wrong_shape_is_400_and_unknown_providers_are_404(
    served: Served,
) -> None:
    broken = mailgun_post({"no": "event"}, MAILGUN_KEY)
    assert served.post(broken).status_code == 400
    assert served.post(SignedPost("/webhooks/mailchimp", {}, b"{}")).status_code == 404
    not_json = postmark_post({}, POSTMARK_AUTH)
    not_json.body = b"not json"
    assert served.post(not_json).status_code == 400
    served.settle()
    assert served.event_count() == 0


def test_opens_and_clicks_are_recorded_with_the_link_and_change_no_one(served: Served) -> None:
    clicked = mailgun_event("ann@example.org", event="clicked") | {
        "url": "https://example.org/harbor#comment-okafor"
    }
    assert served.post(mailgun_post(clicked, MAILGUN_KEY)).status_code == 200
    assert (
        served.post(
            resend_post(resend_event("bob@example.org", "email.opened"), RESEND_SECRET)
        ).status_code
        == 200
    )
    pm_click = {"RecordType": "Click", "Recipient": "cy@example.org", "MessageID": "pm-9",
                "ReceivedAt": "2026-11-29T06:00:00Z", "OriginalLink": "https://example.org/x",
                "Metadata": {"issue": "2026-11-30-weekly"}}  # fmt: skip
    assert served.post(postmark_post(pm_click, POSTMARK_AUTH)).status_code == 200
    served.settle()
    assert [(e.kind, e.detail) for e in served.store.events_for("ann@example.org")] == [
        ("click", "https://example.org/harbor#comment-okafor")
    ]
    assert [e.kind for e in served.store.events_for("bob@example.org")] == ["open"]
    assert [e.kind for e in served.store.events_for("cy@example.org")] == ["click"]
    assert {served.status(p) for p in PEOPLE} == {"active"}


def test_the_whole_loop_deliver_events_suppress_skip_and_report(tmp_path: Path) -> None:
    """Deliver through a fake Postmark; it posts two bounces and a complaint to a real
    `digest serve`, and a reader mails the List-Unsubscribe address; the next issue is
    not addressed to any of them, and `digest report` shows each."""
    from tests.fakes import FakePostmark
    from tests.helpers import KEY_ENV, sample_issue, settings, yaml_config

    with FakePostmark() as fake:
        values = settings(tmp_path, "postmark", fake)
        (tmp_path / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
        env = {**os.environ, SIGNING_ENV: SIGNING_KEY, KEY_ENV: fake.key,
               "DIGEST_POSTMARK_WEBHOOK_AUTH": POSTMARK_AUTH}  # fmt: skip
        store = SQLiteStore(values.delivery.database)
        store.upsert_subscribers(((e, None, {}) for e in PEOPLE), resubscribe=False)

        def digest(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "digest", *args], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=120)  # fmt: skip

        first = sample_issue(tmp_path)
        assert digest("schedule", str(first), "--at", "now").returncode == 0
        assert digest("deliver").returncode == 0
        assert sorted(fake.delivered_to()) == sorted(PEOPLE)
        message_ids = {d.email: d.message_id for d in fake.deliveries}

        server, base = start_serve(tmp_path, env)
        try:
            served = Served(base, store, None, tmp_path)
            for n, (email, kind) in enumerate(
                [("ann@example.org", "HardBounce"), ("bob@example.org", "BadEmailAddress")]
            ):
                record = postmark_bounce(email, kind, record_id=n) | {
                    "MessageID": message_ids[email], "Metadata": {"issue": first.stem}}  # fmt: skip
                assert served.post(postmark_post(record, POSTMARK_AUTH)).status_code == 200
            complaint = {"RecordType": "SpamComplaint", "ID": 9, "Email": "cy@example.org",
                         "MessageID": message_ids["cy@example.org"], "BouncedAt": "2026-11-29T06:00:00Z",
                         "Metadata": {"issue": first.stem}}  # fmt: skip
            assert served.post(postmark_post(complaint, POSTMARK_AUTH)).status_code == 200
            dee = store.get_subscriber("dee@example.org")
            assert dee is not None
            token = make_token(SIGNING_KEY.encode(), store.list_identity(), dee.uid)
            mail = {
                "From": "dee@example.org",
                "To": "unsubscribe@example.org",
                "Subject": f"unsubscribe {token}",
            }
            assert (
                served.post(postmark_post(mail, POSTMARK_AUTH, "postmark-inbound")).status_code
                == 200
            )
            for email, status in [("ann@example.org", "bounced"), ("bob@example.org", "bounced"),
                                  ("cy@example.org", "complained"), ("dee@example.org", "unsubscribed")]:  # fmt: skip
                served.wait_for(email, status)
        finally:
            server.terminate()
            server.wait(timeout=10)

        fake.deliveries.clear()
        second = first.with_name("2026-03-11-the-next-issue.yaml")
        second.write_bytes(first.read_bytes())
        assert digest("schedule", str(second), "--at", "now").returncode == 0
        assert digest("deliver").returncode == 0
        assert sorted(fake.delivered_to()) == [
            "eve@example.org",
            "fay@example.org",
            "gus@example.org",
        ]

        report = digest("report", str(first), "--html", "report.html")
        assert report.returncode == 0, report.stderr
        assert (
            "hard_bounce           2" in report.stdout
            and "complaint             1" in report.stdout
        )
        assert "(mailto 1)" in report.stdout and "not on the list" not in report.stdout
        page = (tmp_path / "report.html").read_text(encoding="utf-8")
        for email in ("ann@example.org", "bob@example.org", "cy@example.org"):
            assert email in page
    store.close()
