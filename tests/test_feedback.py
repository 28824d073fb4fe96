"""Closing the loop with readers: permanent rejections, bounces, complaints and provider
unsubscribes suppress people at once, and every later issue skips them."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest.config import Smtp
from digest.delivery import QuietProgress, deliver_due
from digest.providers import make_http_client
from digest.schedule import schedule
from digest.store.sqlite import SQLiteStore
from tests.conftest import free_port
from tests.fakes import FakePostmark
from tests.helpers import KEY_ENV, SIGNING_ENV, SIGNING_KEY, sample_issue, settings


class Rejecting:
    """An SMTP server that refuses some recipients, and keeps who it was offered."""

    def __init__(self, dead: dict[str, str]) -> None:
        self.dead = dead
        self.offered: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        self.offered.append(address)
        if address in self.dead:
            return self.dead[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def deliver_now(store: SQLiteStore, values: Any) -> list[Any]:
    with make_http_client(values) as client:
        return deliver_due(store, values, client=client, progress=QuietProgress())


def second_issue(first: Path) -> Path:
    second = first.with_name("2026-03-11-the-next-issue.yaml")
    shutil.copyfile(first, second)
    return second


def test_a_permanent_smtp_rejection_suppresses_the_address_for_every_later_issue(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    handler = Rejecting(
        {
            "dead@example.org": "550 5.1.1 <dead@example.org>: user unknown",
            "full@example.org": "452 4.2.2 mailbox full, try later",
        }
    )
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        values = settings(
            in_tmp,
            "smtp",
            smtp=Smtp(host="127.0.0.1", port=controller.port, security="none"),
            max_attempts=1,
        )
        store = SQLiteStore(values.delivery.database)
        emails = ["ann@example.org", "dead@example.org", "full@example.org", "zoe@example.org"]
        store.upsert_subscribers(((e, None, {}) for e in emails), resubscribe=False)
        first = sample_issue(in_tmp)
        now = dt.datetime.now(dt.UTC)
        schedule(store, first, values, "now", "UTC", now)
        deliver_now(store, values)
        dead = store.get_subscriber("dead@example.org")
        assert dead is not None and dead.status == "bounced"
        full = store.get_subscriber("full@example.org")
        assert full is not None and full.status == "active"  # 4xx is not a bounce
        events = store.events_for("dead@example.org")
        assert [(e.kind, e.provider) for e in events] == [("hard_bounce", "smtp")]
        assert "550: 5.1.1" in events[0].detail and "user unknown" in events[0].detail

        handler.offered.clear()
        schedule(store, second_issue(first), values, "now", "UTC", now)
        deliver_now(store, values)
        assert "dead@example.org" not in handler.offered
        assert "ann@example.org" in handler.offered
    finally:
        controller.stop()


def test_postmark_inactive_recipient_is_a_hard_bounce(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    with FakePostmark() as fake:
        fake.inactive.add("gone@example.org")
        monkeypatch.setenv(KEY_ENV, fake.key)
        values = settings(in_tmp, "postmark", fake)
        store = SQLiteStore(values.delivery.database)
        store.upsert_subscribers(
            ((e, None, {}) for e in ["gone@example.org", "here@example.org"]), resubscribe=False
        )
        schedule(store, sample_issue(in_tmp), values, "now", "UTC", dt.datetime.now(dt.UTC))
        deliver_now(store, values)
    gone = store.get_subscriber("gone@example.org")
    assert gone is not None and gone.status == "bounced"
    assert [e.kind for e in store.events_for("gone@example.org")] == ["hard_bounce"]
    here = store.get_subscriber("here@example.org")
    assert here is not None and here.status == "active"


def test_the_reputation_guard_pauses_a_send_that_bounces_too_much_and_later_issues_skip_the_bounced(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 recipients, 5 % of them hard-bouncing: the guard stops the issue after the
    first thousand or so, with a message that says why and how to resume."""
    from digest.delivery import deliver_due

    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    emails = [f"r{i:05d}@example.org" for i in range(10_000)]
    dead = {e for i, e in enumerate(emails) if i % 20 == 7}  # 5 %
    with FakePostmark() as fake:
        fake.keep_bodies = False
        fake.inactive.update(dead)
        monkeypatch.setenv(KEY_ENV, fake.key)
        values = settings(in_tmp, "postmark", fake, delivery={"guard_after": 1000})
        store = SQLiteStore(values.delivery.database)
        store.upsert_subscribers(((e, None, {}) for e in emails), resubscribe=False)
        first = sample_issue(in_tmp)
        schedule(store, first, values, "now", "UTC", dt.datetime.now(dt.UTC))
        with make_http_client(values) as client:
            (report,) = deliver_due(store, values, client=client, progress=QuietProgress())
        addressed = {d.email for d in fake.deliveries} | (dead & set(fake.refused))
        assert report.error and "reputation guard" in report.error
        assert "hard bounces" in report.error and "digest schedule" in report.error
        assert store.get_schedule(first.stem).status == "stopped"  # type: ignore[union-attr]
        assert len(fake.refused) + len(fake.deliveries) < 2_000, "the guard paused late"
        bounced = {e for e in dead if store.get_subscriber(e).status == "bounced"}  # type: ignore[union-attr]
        assert bounced and bounced <= addressed

        fake.deliveries.clear()
        fake.refused.clear()
        schedule(store, second_issue(first), values, "now", "UTC", dt.datetime.now(dt.UTC))
        with make_http_client(values) as client:
            deliver_due(store, values, client=client, progress=QuietProgress())
        offered_again = {d.email for d in fake.deliveries} | set(fake.refused)
        assert not (bounced & offered_again)


def test_report_shows_outcomes_bounces_complaints_and_unsubscribes_in_every_form(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from digest.events import CLICK, COMPLAINT, DELIVERED, OPEN, Event
    from tests.conftest import run

    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    with FakePostmark() as fake:
        fake.inactive.update({"gone@example.org"})
        monkeypatch.setenv(KEY_ENV, fake.key)
        values = settings(in_tmp, "postmark", fake)
        from tests.helpers import yaml_config

        Path("config.yaml").write_text(yaml_config(values), encoding="utf-8")
        store = SQLiteStore(values.delivery.database)
        people = ["ann@example.org", "=cmd@example.org", "gone@example.org", "dee@example.org"]
        store.upsert_subscribers(((e, None, {}) for e in people), resubscribe=False)
        issue = sample_issue(in_tmp)
        schedule(store, issue, values, "now", "UTC", dt.datetime.now(dt.UTC))
        deliver_now(store, values)
    now = dt.datetime.now(dt.UTC)
    from digest.issuefile import load_issue

    first_link = load_issue(issue).sections[0].experts[0].read_more
    store.receive_events(
        [
            Event(
                "postmark",
                COMPLAINT,
                "=cmd@example.org",
                now,
                None,
                issue.stem,
                "spam complaint",
                "c1",
            ),
            Event("postmark", DELIVERED, "ann@example.org", now, None, issue.stem, "", "d1"),
            Event("postmark", OPEN, "ann@example.org", now, None, issue.stem, "", "o1"),
            Event("postmark", OPEN, "ann@example.org", now, None, issue.stem, "", "o2"),
            Event("postmark", CLICK, "ann@example.org", now, None, issue.stem, first_link, "k1"),
            Event("postmark", DELIVERED, "stranger@example.net", now, None, issue.stem, "", "s1"),
        ]
    )
    dee = store.get_subscriber("dee@example.org")
    assert dee is not None
    store.request_unsubscribe(dee.uid, "one-click")
    store.apply_inbox()

    text = run("report", str(issue))
    assert text.exit_code == 0, text.output
    assert "4 recipient(s) answered" in text.stdout
    assert "complaint" in text.stdout and "one-click 1" in text.stdout
    assert "over Gmail's 0.3 % limit" in text.stdout  # 1 complaint in 4
    assert "1 unique open(s)" in text.stdout
    assert "1 event(s) named addresses not on the list" in text.stdout
    assert "1  Read more from Ana Lúcia Ferreira" in text.stdout  # the click, by expert

    data = json.loads(run("report", str(issue), "--json").stdout)
    assert data["ledger"]["accepted"] == 3 and data["ledger"]["rejected"] == 1
    assert data["events"]["complaint"] == 1 and data["events"]["hard_bounce"] == 1
    assert data["events"]["delivered"] == 2
    assert data["unsubscribes"] == {"one-click": 1}

    both = run("report", str(issue), "--csv", "problems.csv", "--html", "report.html")
    assert both.exit_code == 0, both.output
    rows = Path("problems.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "email,kind,provider,when,reason"
    assert any(r.startswith("gone@example.org,hard_bounce,postmark") for r in rows)
    assert any(
        r.startswith("'=cmd@example.org,complaint") for r in rows
    )  # defused for spreadsheets
    page = Path("report.html").read_text(encoding="utf-8")
    assert "<svg" in page and "gone@example.org" in page
    # no scripts and nothing fetched from elsewhere (links to the public site are fine)
    assert "<script" not in page and not re.search(r"(src=|url\(|rel=\"stylesheet)", page)


def test_a_resumed_issue_s_guard_counts_its_whole_history_never_over_100_percent(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paused by the guard and resumed: the next run's rate is the issue's events over
    everyone it answered, not over this run's recipients alone."""
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    emails = [f"r{i:04d}@example.org" for i in range(3000)]
    dead = {e for i, e in enumerate(emails) if i % 10 == 3}  # 10 %: paused at once
    with FakePostmark() as fake:
        fake.keep_bodies = False
        fake.inactive.update(dead)
        monkeypatch.setenv(KEY_ENV, fake.key)
        values = settings(in_tmp, "postmark", fake, delivery={"guard_after": 500})
        store = SQLiteStore(values.delivery.database)
        store.upsert_subscribers(((e, None, {}) for e in emails), resubscribe=False)
        issue = sample_issue(in_tmp)
        schedule(store, issue, values, "now", "UTC", dt.datetime.now(dt.UTC))
        first = deliver_now(store, values)[0]
        assert first.error and "reputation guard" in first.error
        schedule(store, issue, values, "now", "UTC", dt.datetime.now(dt.UTC))  # resume
        again = deliver_now(store, values)[0]
    assert again.error and "reputation guard" in again.error
    shown = re.search(r"guard: ([\d.]+) % hard bounces after ([\d,]+)", again.error)
    assert shown, again.error
    assert float(shown.group(1)) <= 100 and int(shown.group(2).replace(",", "")) > 500


def test_the_report_shows_a_rate_just_over_a_threshold_as_over_it_and_says_not_tracked(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.events import COMPLAINT, Event
    from digest.report import as_text, make_report

    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    values = settings(in_tmp)
    store = SQLiteStore(values.delivery.database)
    emails = [f"r{i:04d}@example.org" for i in range(988)]
    store.upsert_subscribers(((e, None, {}) for e in emails), resubscribe=False)
    issue = sample_issue(in_tmp)
    schedule(store, issue, values, "now", "UTC", dt.datetime.now(dt.UTC))
    deliver_now(store, values)
    complaint = Event("outbox", COMPLAINT, emails[5], dt.datetime.now(dt.UTC), issue=issue.stem)
    store.receive_events([complaint.with_fingerprint()])
    store.apply_inbox()
    text = as_text(make_report(store, issue.stem, issue.stem, tracked=False))
    assert "complaints at 0.101 % (1 of 988) are over the 0.1 % to aim for" in text
    assert "opens and clicks: not tracked" in text and "unique open" not in text
