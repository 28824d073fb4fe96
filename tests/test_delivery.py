"""Delivery to subscribers through fake providers on 127.0.0.1, in process."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.config import Settings
from digest.delivery import IssueReport, QuietProgress, RateLimiter, deliver_due
from digest.providers import make_http_client
from digest.schedule import schedule
from digest.store.sqlite import SQLiteStore
from digest.tokens import read_token
from tests.fakes import FakeMailgun, FakePostmark, FakeProvider, FakeResend, Fault
from tests.helpers import (
    KEY_ENV,
    NOW,
    SIGNING_ENV,
    SIGNING_KEY,
    add_subscribers,
    sample_issue,
    settings,
)


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)


@pytest.fixture
def fakes() -> Iterator[dict[str, FakeProvider]]:
    made = {"postmark": FakePostmark(), "mailgun": FakeMailgun(), "resend": FakeResend()}
    yield made
    for fake in made.values():
        fake.close()


class Setup:
    def __init__(self, tmp: Path, values: Settings, count: int) -> None:
        self.settings = values
        self.store = SQLiteStore(values.delivery.database)
        self.emails = add_subscribers(self.store, count)
        self.issue = sample_issue(tmp)
        self.slug = schedule(
            self.store, self.issue, values, "now", "UTC", dt.datetime.now(dt.UTC)
        ).slug

    def deliver(self, **kwargs: Any) -> IssueReport:
        with make_http_client(self.settings) as client:
            (report,) = deliver_due(
                self.store, self.settings, client=client, progress=QuietProgress(), **kwargs
            )
        return report


def prepare(
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    fake: FakeProvider | None,
    count: int,
    **options: Any,
) -> Setup:
    if fake is not None:
        monkeypatch.setenv(KEY_ENV, fake.key)
    if name == "mailgun":
        options.setdefault("domain", "mg.example.org")
    return Setup(tmp, settings(tmp, name, fake, **options), count)


def unsubscribe_uids(store: SQLiteStore, html: str) -> list[str | None]:
    tokens = re.findall(r"https://example\.org/unsubscribe/([A-Za-z0-9._-]+)", html)
    return [read_token([SIGNING_KEY.encode()], store.list_identity(), t) for t in tokens]


def test_every_active_subscriber_gets_one_message_with_their_own_unsubscribe_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    fake = fakes["mailgun"]
    setup = prepare(tmp_path, monkeypatch, "mailgun", fake, 250, batch_size=40)
    report = setup.deliver()
    assert report.ok and report.counts == {"accepted": 250}
    assert sorted(fake.delivered_to()) == setup.emails
    for delivery in fake.deliveries:
        subscriber = setup.store.get_subscriber(delivery.email)
        assert subscriber is not None
        assert set(unsubscribe_uids(setup.store, delivery.html)) == {subscriber.uid}
        assert set(unsubscribe_uids(setup.store, delivery.text)) == {subscriber.uid}
        header_token = re.search(r"unsubscribe/([^>]+)>", delivery.headers["List-Unsubscribe"])
        assert (
            header_token
            and read_token(
                [SIGNING_KEY.encode()], setup.store.list_identity(), header_token.group(1)
            )
            == subscriber.uid
        )
    schedule_row = setup.store.get_schedule(setup.slug)
    assert schedule_row is not None and schedule_row.status == "sent"
    with make_http_client(setup.settings) as client:
        assert (
            deliver_due(setup.store, setup.settings, client=client, progress=QuietProgress()) == []
        )
    assert len(fake.deliveries) == 250  # a second pass sends nothing


def test_people_who_left_after_scheduling_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    fake = fakes["postmark"]
    setup = prepare(tmp_path, monkeypatch, "postmark", fake, 20)
    setup.store.set_status(setup.emails[1], "unsubscribed")
    setup.store.set_status(setup.emails[2], "bounced")
    setup.store.set_status(setup.emails[3], "complained")
    setup.store.forget(setup.emails[4])
    report = setup.deliver()
    assert report.counts == {"accepted": 16}
    assert not set(setup.emails[1:5]) & set(fake.delivered_to())


def test_an_unsubscribe_during_delivery_counts_for_every_later_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    fake = fakes["postmark"]
    setup = prepare(
        tmp_path, monkeypatch, "postmark", fake, 200, batch_size=20, delivery={"concurrency": 1}
    )
    leaving = setup.emails[150]

    def unsubscribe_from_elsewhere(count: int) -> None:
        if count == 1:  # while the first batch is being sent, via another connection
            other = SQLiteStore(setup.settings.delivery.database)
            subscriber = other.get_subscriber(leaving)
            assert subscriber is not None
            other.unsubscribe_uid(subscriber.uid)
            other.close()

    fake.on_request = unsubscribe_from_elsewhere
    report = setup.deliver()
    assert leaving not in fake.delivered_to()
    assert report.counts == {"accepted": 199}


@pytest.mark.parametrize(
    "faults",
    [
        [Fault(429, {"Retry-After": "0"}) for _ in range(6)],
        [Fault(503), Fault(502), Fault(500)],
        [Fault(429), Fault(503), Fault(429, {"Retry-After": "0"}), Fault(500)],
    ],
    ids=["429-storm", "5xx", "mixed"],
)
def test_temporary_failures_complete_without_sending_anyone_twice(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fakes: dict[str, FakeProvider],
    faults: list[Fault],
) -> None:
    fake = fakes["postmark"]
    setup = prepare(tmp_path, monkeypatch, "postmark", fake, 120, batch_size=30, max_attempts=8)
    fake.faults.extend(faults)
    report = setup.deliver()
    assert report.ok and report.counts == {"accepted": 120}
    assert sorted(fake.delivered_to()) == setup.emails  # everyone, each exactly once
    assert not fake.faults  # every temporary failure was met and got past
    # a failed batch goes again as one request (its recipients come due together); how
    # retries and fresh batches interleave depends on timing, so this is a bound
    assert len(fake.requests) <= 4 + 2 * len(faults)


def test_a_lost_answer_with_postmark_is_reported_unknown_not_resent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    fake = fakes["postmark"]
    setup = prepare(
        tmp_path, monkeypatch, "postmark", fake, 90, batch_size=30, delivery={"concurrency": 1}
    )
    fake.faults.extend(
        [Fault(drop=True, after=True)]
    )  # the first batch is sent; its answer is lost
    report = setup.deliver()
    assert report.counts == {"accepted": 60, "unknown": 30}
    assert report.unknown == setup.emails[:30]
    assert sorted(fake.delivered_to()) == setup.emails  # each exactly once
    again = setup.deliver(resend_unknown=True)
    assert again.counts == {"accepted": 90}
    assert len(fake.delivered_to()) == 120  # the operator chose to resend the 30 unknown


def test_a_timeout_with_resend_is_retried_under_the_same_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    fake = fakes["resend"]
    setup = prepare(tmp_path, monkeypatch, "resend", fake, 150, batch_size=50, timeout=0.5)
    fake.faults.extend([Fault(drop=True, after=True), Fault(delay=1.0, drop=True, after=True)])
    report = setup.deliver()
    assert report.ok and report.counts == {"accepted": 150}
    assert sorted(fake.delivered_to()) == setup.emails
    keys = [h["idempotency-key"] for _, _, h in fake.requests]
    assert len(keys) == 5 and len(set(keys)) == 3


def test_a_wrong_api_key_stops_the_issue_before_burning_the_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    fake = fakes["postmark"]
    setup = prepare(
        tmp_path, monkeypatch, "postmark", fake, 500, batch_size=10, delivery={"concurrency": 2}
    )
    monkeypatch.setenv(KEY_ENV, "wrong-key")
    report = setup.deliver()
    assert (
        report.error
        and "refused the credentials (HTTP 401)" in report.error
        and KEY_ENV in report.error
    )
    assert len(fake.requests) <= 2 and fake.deliveries == []
    row = setup.store.get_schedule(setup.slug)
    assert row is not None and row.status == "stopped"
    monkeypatch.setenv(KEY_ENV, fake.key)  # fixed: scheduling again resumes
    schedule(setup.store, setup.issue, setup.settings, "now", "UTC", dt.datetime.now(dt.UTC))
    resumed = setup.deliver()
    assert resumed.counts == {"accepted": 500} and sorted(fake.delivered_to()) == setup.emails


def test_consecutive_failures_stop_the_issue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    fake = fakes["postmark"]
    setup = prepare(
        tmp_path, monkeypatch, "postmark", fake, 1000, batch_size=10, max_attempts=2,
        delivery={"concurrency": 1, "max_consecutive_failures": 3},
    )  # fmt: skip
    fake.faults.extend(Fault(503) for _ in range(1000))
    report = setup.deliver()
    assert report.error and report.error.startswith("stopped after 3 batches in a row failed")
    assert "HTTP 503" in report.error
    assert len(fake.requests) <= 6  # never the whole list
    assert fake.deliveries == []


def test_rejected_recipients_are_recorded_and_do_not_stop_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    fake = fakes["postmark"]
    assert isinstance(fake, FakePostmark)
    setup = prepare(tmp_path, monkeypatch, "postmark", fake, 40, batch_size=10)
    fake.inactive.update(setup.emails[:25])  # most of the first batches are suppressed
    report = setup.deliver()
    assert report.ok and report.counts == {"accepted": 15, "rejected": 25}


def test_rate_limit_spaces_out_batches() -> None:
    moments: list[float] = []
    limiter = RateLimiter(100.0, clock=lambda: 0.0)
    sleeps: list[float] = []
    import digest.delivery.pacing as delivery_module

    original = delivery_module.time.sleep
    delivery_module.time.sleep = sleeps.append  # type: ignore[assignment]
    try:
        for _ in range(3):
            limiter.wait(50)
            moments.append(limiter.next_free)
    finally:
        delivery_module.time.sleep = original  # type: ignore[assignment]
    assert moments == [0.5, 1.0, 1.5] and sleeps == [0.5, 1.0]


def test_outbox_delivery_writes_one_file_per_active_subscriber(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = prepare(tmp_path, monkeypatch, "outbox", None, 30)
    setup.store.set_status(setup.emails[0], "unsubscribed")
    report = setup.deliver()
    assert report.counts == {"accepted": 29}
    files = list((tmp_path / "outbox" / setup.slug).glob("*.eml"))
    assert len(files) == 29


def test_nothing_is_due_before_its_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = settings(tmp_path)
    store = SQLiteStore(values.delivery.database)
    add_subscribers(store, 3)
    schedule(store, sample_issue(tmp_path), values, "2099-01-01 07:00", "UTC", NOW)
    with httpx.Client() as client:
        assert (
            deliver_due(store, values, client=client, progress=QuietProgress(), clock=lambda: NOW)
            == []
        )
        later = dt.datetime(2099, 1, 1, 7, 0, 1, tzinfo=dt.UTC)
        (report,) = deliver_due(
            store, values, client=client, progress=QuietProgress(), clock=lambda: later
        )
    assert report.counts == {"accepted": 3}


def test_the_allocator_threshold_can_be_pinned_on_this_machine() -> None:
    # Delivery pins glibc's mmap threshold so memory stays flat on long runs (BENCHMARKS.md);
    # on a glibc system (CI's Debian) the call must take effect.
    import platform

    from digest.delivery import pin_allocator_threshold

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not a glibc system")
    assert pin_allocator_threshold() is True


def test_each_batch_reads_only_its_part_of_the_ledger_never_the_whole_issue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    """Forming a batch and recording it must not read every ledger row of the issue: at
    a million recipients that is a million rows a batch, a thousand times over. Each
    statement they run is checked against SQLite's plan for it."""
    setup = prepare(tmp_path, monkeypatch, "mailgun", fakes["mailgun"], 200, batch_size=20)
    statements: list[str] = []

    def traced(method: Any) -> Any:
        def call(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
            self.db.set_trace_callback(statements.append)
            try:
                return method(self, *args, **kwargs)
            finally:
                self.db.set_trace_callback(None)

        return call

    for name in ("next_batch", "record"):
        monkeypatch.setattr(SQLiteStore, name, traced(getattr(SQLiteStore, name)))
    assert setup.deliver().counts == {"accepted": 200}
    whole_ledger = re.compile(r"SCAN (d|deliveries)\b|USING PRIMARY KEY \(issue=\?\)$")
    explained = 0
    for statement in set(statements):
        if "deliveries" not in statement or not statement.lstrip().startswith(("SELECT", "UPDATE")):
            continue
        plan = [row[3] for row in setup.store.db.execute("EXPLAIN QUERY PLAN " + statement)]
        explained += 1
        assert not [step for step in plan if whole_ledger.search(step)], (statement, plan)
    assert explained >= 3


def test_an_issue_whose_recipients_all_ended_unknown_is_not_reported_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes: dict[str, FakeProvider]
) -> None:
    fake = fakes["postmark"]
    setup = prepare(tmp_path, monkeypatch, "postmark", fake, 60, batch_size=30)
    fake.faults.extend(Fault(drop=True, after=True) for _ in range(2))  # every answer lost
    report = setup.deliver()
    assert report.counts == {"unknown": 60}
    assert not report.ok and "--resend-unknown" in (report.error or "")
    scheduled = setup.store.get_schedule(setup.slug)
    assert scheduled is not None and scheduled.status == "incomplete"
    again = setup.deliver(resend_unknown=True)
    assert again.ok and again.counts == {"accepted": 60}
    scheduled = setup.store.get_schedule(setup.slug)
    assert scheduled is not None and scheduled.status == "sent"
