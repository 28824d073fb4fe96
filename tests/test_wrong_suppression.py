"""Nobody is suppressed for a refusal that is not about them: a relay or an API that
refuses the sender, the message or the session stops the issue and names its answer;
only a refusal of the recipient is a bounce of that person. A wrong suppression can be
undone in bulk, with a record of who did it and why."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest.config import Smtp
from tests.conftest import free_port
from tests.fakes import FakeProvider, Fault
from tests.test_delivery import Setup, fakes, keys, prepare

__all__ = ["fakes", "keys"]  # the fixtures, used here too


class Relay:
    """An SMTP relay that gives one fixed answer at one stage of every transaction."""

    def __init__(self, stage: str, answer: str) -> None:
        self.stage, self.answer = stage, answer
        self.accepted: list[str] = []

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.stage == "MAIL":
            return self.answer
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.stage == "RCPT":
            return self.answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stage == "DATA":
            return self.answer
        self.accepted.extend(envelope.rcpt_tos)
        return "250 OK"


def smtp_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relay: Relay) -> Setup:
    controller = Controller(relay, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setattr(relay, "controller", controller, raising=False)
    return prepare(
        tmp_path,
        monkeypatch,
        "smtp",
        None,
        120,
        smtp=Smtp(host="127.0.0.1", port=controller.port, security="none"),
        max_attempts=2,
    )


@pytest.mark.parametrize(
    ("stage", "answer"),
    [
        ("MAIL", "550 5.7.1 Sender address rejected: not owned by user"),
        ("DATA", "554 5.7.1 Message rejected: content looks like spam"),
        ("RCPT", "550 5.7.1 Relaying denied"),
        ("RCPT", "554 5.4.6 Routing loop detected"),
    ],
    ids=["sender-refused", "message-refused", "relaying-denied", "routing-error"],
)
def test_a_relay_refusing_the_sender_or_message_suppresses_no_one_and_stops_the_issue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str, answer: str
) -> None:
    relay = Relay(stage, answer)
    setup = smtp_setup(tmp_path, monkeypatch, relay)
    try:
        report = setup.deliver()
    finally:
        relay.controller.stop()  # type: ignore[attr-defined]
    assert setup.store.count_subscribers() == {"active": 120}
    assert all(not setup.store.events_for(e) for e in setup.emails)
    assert not report.ok and answer.split(" ", 1)[1].split(":")[0] in (report.error or "")
    scheduled = setup.store.get_schedule(setup.slug)
    assert scheduled is not None and scheduled.status in ("stopped", "incomplete")
    assert report.counts.get("rejected", 0) == 0


def test_a_relay_refusing_one_mailbox_bounces_that_person_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class OneDead(Relay):
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            if address == "reader00007@example.org":
                return "550 5.1.1 <reader00007@example.org>: Recipient address rejected"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    relay = OneDead("none", "")
    setup = smtp_setup(tmp_path, monkeypatch, relay)
    try:
        report = setup.deliver()
    finally:
        relay.controller.stop()  # type: ignore[attr-defined]
    assert report.ok and report.counts == {"accepted": 119, "rejected": 1}
    assert setup.store.count_subscribers() == {"active": 119, "bounced": 1}


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        (
            "resend",
            {
                "statusCode": 422,
                "name": "validation_error",
                "message": "Invalid `from` field. The email address needs to follow the format",
            },
        ),
        (
            "resend",
            {
                "statusCode": 422,
                "name": "invalid_parameter",
                "message": "Unable to process the token",
            },
        ),
        (
            "postmark",
            {"ErrorCode": 300, "Message": "Invalid 'From' address: not a sender signature"},
        ),
    ],
    ids=["resend-from", "resend-other", "postmark-from"],
)
def test_an_api_refusing_the_request_suppresses_no_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fakes: dict[str, FakeProvider],
    provider: str,
    body: dict[str, Any],
) -> None:
    fake = fakes[provider]
    setup = prepare(tmp_path, monkeypatch, provider, fake, 3, batch_size=1, max_attempts=1)
    fake.faults.extend(Fault(422, {"Content-Type": "application/json"}, json.dumps(body).encode())
                       for _ in range(3))  # fmt: skip
    report = setup.deliver()
    assert not report.ok
    assert setup.store.count_subscribers() == {"active": 3}
    assert report.counts.get("rejected", 0) == 0


def test_the_operator_undoes_a_wrong_suppression_in_bulk_from_the_command_line(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.events import Event
    from digest.store.sqlite import SQLiteStore
    from tests.conftest import run
    from tests.helpers import settings, yaml_config

    values = settings(in_tmp)
    (in_tmp / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
    store = SQLiteStore(values.delivery.database)
    emails = [f"r{i}@example.org" for i in range(5)]
    store.upsert_subscribers([(e, None, {}) for e in emails], resubscribe=False)
    when = Event("smtp", "hard_bounce", "x@example.org", dt.datetime.now(dt.UTC)).occurred_at
    store.receive_events(
        [Event("smtp", "hard_bounce", e, when, detail="550 5.7.1").with_fingerprint()
         for e in emails[:3]], None,
    )  # fmt: skip
    store.apply_inbox()
    store.close()
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(timespec="minutes")
    bad = run("subscribers", "unsuppress", "--event-since", "yesterday", "--reason", "x")
    assert bad.exit_code != 0 and "--event-since 'yesterday': not a time" in bad.output
    assert "Traceback" not in bad.output
    done = run("subscribers", "unsuppress", "--event-since", since, "--reason", "relay refused")
    assert done.exit_code == 0, done.output
    assert done.stdout.split() == emails[:3] and "put back 3" in done.stderr
    counts = run("subscribers", "count")
    assert "active\t5" in counts.stdout
