"""The sending promise under attack: unsubscribe reaches exactly the right person and only
on purpose, what the operator cancels stays cancelled, failures are never silent, and
every message sent has its own identity."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from digest.config import load_settings
from digest.schedule import schedule
from digest.store.sqlite import SQLiteStore
from tests.conftest import run
from tests.fakes import FakePostmark, Fault
from tests.helpers import (
    KEY_ENV,
    SIGNING_ENV,
    SIGNING_KEY,
    sample_issue,
    scheduled_in_folder,
    settings,
    yaml_config,
)

OTHER_KEY = "a-newer-signing-key-9876543210"


@pytest.fixture
def folder(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder with a config that delivers to the outbox."""
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    (in_tmp / "config.yaml").write_text(yaml_config(settings(in_tmp)), encoding="utf-8")
    return in_tmp


def deliver_outbox(folder: Path, *emails: str) -> dict[str, str]:
    """Add ``emails``, schedule the sample now and deliver it to the outbox; returns each
    recipient's one-click URL path from its List-Unsubscribe header."""
    for address in emails:
        assert run("subscribers", "add", address).exit_code == 0
    issue = folder / "issues" / "sample.yaml"
    if not issue.exists():
        issue.parent.mkdir(exist_ok=True)
        sample_issue(folder / "issues").rename(issue)
    assert run("schedule", str(issue), "--at", "now").exit_code == 0
    result = run("deliver")
    assert result.exit_code == 0, result.output
    links = {}
    for path in (folder / "outbox").rglob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found = re.search(
            r"<https://example\.org(/unsubscribe/[^>]+)>", message["List-Unsubscribe"]
        )
        assert found
        links[email.utils.parseaddr(message["To"])[1]] = found.group(1)
    return links


def client_for(folder: Path) -> TestClient:
    from digest.tokens import signing_keys
    from digest.web import create_app

    values = load_settings(folder / "config.yaml")
    return TestClient(create_app(values, signing_keys(values)))


def status_of(folder: Path, address: str) -> str | None:
    store = SQLiteStore(folder / "digest.sqlite3")
    try:
        store.apply_inbox()
        subscriber = store.get_subscriber(address)
        return subscriber.status if subscriber else None
    finally:
        store.close()


# --- 1. only POST unsubscribes -------------------------------------------------------------


def test_head_and_get_never_unsubscribe_only_post_does(folder: Path) -> None:
    links = deliver_outbox(folder, "ann@example.org")
    with client_for(folder) as client:
        assert client.head(links["ann@example.org"]).status_code == 200
        assert client.get(links["ann@example.org"]).status_code == 200
        assert status_of(folder, "ann@example.org") == "active"
        assert client.post(links["ann@example.org"]).status_code == 200
    assert status_of(folder, "ann@example.org") == "unsubscribed"


# --- 2. tokens name one person, in one list, forever --------------------------------------


def test_an_old_link_never_unsubscribes_whoever_comes_next(folder: Path) -> None:
    links = deliver_outbox(folder, "ann@example.org")
    assert run("subscribers", "remove", "ann@example.org", "--forget").exit_code == 0
    assert run("subscribers", "add", "bob@example.org").exit_code == 0
    with client_for(folder) as client:
        client.post(links["ann@example.org"], content="List-Unsubscribe=One-Click")
    assert status_of(folder, "bob@example.org") == "active"


def test_the_same_key_gives_different_links_in_different_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    found = []
    for name in ("one", "two"):
        place = tmp_path / name
        place.mkdir()
        monkeypatch.chdir(place)
        (place / "config.yaml").write_text(yaml_config(settings(place)), encoding="utf-8")
        found.append(deliver_outbox(place, "ann@example.org")["ann@example.org"])
    assert found[0] != found[1]
    with client_for(tmp_path / "two") as client:  # list one's link means nothing in list two
        assert client.post(found[0]).status_code == 400
    assert status_of(tmp_path / "two", "ann@example.org") == "active"


def test_a_forgotten_subscribers_deliveries_do_not_pass_to_a_newcomer(folder: Path) -> None:
    deliver_outbox(folder, "ann@example.org")
    store = SQLiteStore(folder / "digest.sqlite3")
    ann = store.get_subscriber("ann@example.org")
    assert ann is not None
    store.forget("ann@example.org")
    store.upsert_subscribers([("bob@example.org", None, {})], resubscribe=False)
    bob = store.get_subscriber("bob@example.org")
    store.close()
    assert bob is not None and bob.id != ann.id  # ids are never reused


# --- 3. key rotation ------------------------------------------------------------------------


def test_links_signed_with_a_retired_key_still_work_after_rotation(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = deliver_outbox(folder, "ann@example.org", "bob@example.org")
    monkeypatch.setenv(SIGNING_ENV, f"{OTHER_KEY} {SIGNING_KEY}")  # new key first, old kept
    with client_for(folder) as client:
        assert client.post(links["ann@example.org"]).status_code == 200
    assert status_of(folder, "ann@example.org") == "unsubscribed"
    monkeypatch.setenv(SIGNING_ENV, OTHER_KEY)  # the old key dropped: its links stop working
    with client_for(folder) as client:
        assert client.post(links["bob@example.org"]).status_code == 400


def test_new_links_are_signed_with_the_first_key(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_ENV, f"{OTHER_KEY},{SIGNING_KEY}")
    links = deliver_outbox(folder, "ann@example.org")
    monkeypatch.setenv(SIGNING_ENV, OTHER_KEY)
    with client_for(folder) as client:
        assert client.post(links["ann@example.org"]).status_code == 200


# --- 5. a test send's unsubscribe link -----------------------------------------------------


def test_a_test_sends_unsubscribe_link_leads_to_a_page_that_says_it_was_a_test(
    folder: Path,
) -> None:
    issue = sample_issue(folder / "issues")
    assert run("send", str(issue), "--test").exit_code == 0
    (message_file,) = (folder / "outbox").rglob("*.eml")
    message = email.message_from_bytes(message_file.read_bytes(), policy=email.policy.default)
    found = re.search(r"<https://example\.org(/unsubscribe/[^>]+)>", message["List-Unsubscribe"])
    assert found
    with client_for(folder) as client:
        for method in ("GET", "POST"):
            page = client.request(method, found.group(1))
            assert page.status_code == 200
            assert "test send" in page.text.lower()


# --- 6. what the operator cancels stays cancelled ------------------------------------------


@pytest.fixture
def postmark(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePostmark]:
    with FakePostmark() as fake:
        monkeypatch.setenv(KEY_ENV, fake.key)
        monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
        yield fake


def two_issues(folder: Path, fake: FakePostmark, count: int) -> tuple[SQLiteStore, Path, Path]:
    values = settings(folder, "postmark", fake, batch_size=10, delivery={"concurrency": 1})
    (folder / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
    store = SQLiteStore(values.delivery.database)
    store.upsert_subscribers(
        ((f"r{i:03d}@example.org", None, {}) for i in range(count)), resubscribe=False
    )
    first = sample_issue(folder / "a")
    second_dir = folder / "b"
    second = sample_issue(second_dir).rename(second_dir / "second-issue.yaml")
    now = dt.datetime.now(dt.UTC)
    schedule(store, first, values, (now - dt.timedelta(minutes=2)).isoformat(), "UTC", now)
    schedule(store, second, values, (now - dt.timedelta(minutes=1)).isoformat(), "UTC", now)
    return store, first, second


def test_an_issue_unscheduled_while_another_sends_is_not_sent(
    in_tmp: Path, postmark: FakePostmark
) -> None:
    store, _, second = two_issues(in_tmp, postmark, 30)

    def operator(count: int) -> None:
        if count == 1:  # while the first issue's first batch is out
            assert run("unschedule", str(second)).exit_code == 0

    postmark.on_request = operator
    result = run("deliver")
    assert result.exit_code == 0, result.output
    assert len(postmark.requests) == 3  # the first issue's three batches, nothing more
    row = store.get_schedule("second-issue")
    assert row is not None and row.status == "cancelled"


def test_an_issue_moved_later_while_another_sends_waits_for_its_new_time(
    in_tmp: Path, postmark: FakePostmark
) -> None:
    store, _, second = two_issues(in_tmp, postmark, 30)

    def operator(count: int) -> None:
        if count == 1:
            text = second.read_text(encoding="utf-8").replace("subject:", "subject: Edited", 1)
            second.write_text(text, encoding="utf-8")
            assert run("schedule", str(second), "--at", "2030-01-01 07:00").exit_code == 0

    postmark.on_request = operator
    assert run("deliver").exit_code == 0
    assert len(postmark.requests) == 3
    assert store.delivery_counts("second-issue") == {}


def test_an_issue_unscheduled_mid_send_stops_before_its_next_batch(
    in_tmp: Path, postmark: FakePostmark
) -> None:
    store, first, _ = two_issues(in_tmp, postmark, 50)
    store.cancel_schedule("second-issue")
    slug = first.stem

    def operator(count: int) -> None:
        if count == 2:
            assert run("unschedule", str(first)).exit_code == 0

    postmark.on_request = operator
    assert run("deliver").exit_code == 0
    assert len(postmark.requests) == 2  # the batch in flight finishes; no other starts
    assert store.delivery_counts(slug) == {"accepted": 20}
    row = store.get_schedule(slug)
    assert row is not None and row.status == "cancelled" and row.lease_owner is None


# --- 7. temporary failures never silently become permanent --------------------------------


def test_recipients_whose_attempts_ran_out_leave_the_issue_incomplete_until_retried(
    in_tmp: Path, postmark: FakePostmark
) -> None:
    values = settings(
        in_tmp, "postmark", postmark, batch_size=10, max_attempts=1, delivery={"concurrency": 1}
    )
    store, issue = scheduled_in_folder(in_tmp, values, 30)

    def second_fails(count: int) -> None:
        if count == 1:  # the fault is taken by the next request: the second batch
            postmark.faults.append(Fault(503))

    postmark.on_request = second_fails
    first = run("deliver")
    assert first.exit_code == 1
    assert "10 recipient(s) failed" in first.stderr and "--retry-failed" in first.stderr
    row = store.get_schedule(issue.stem)
    assert row is not None and row.status == "incomplete"
    assert store.delivery_counts(issue.stem) == {"accepted": 20, "failed": 10}
    failed_before = set(postmark.delivered_to())
    postmark.on_request = None
    retried = run("deliver", "--retry-failed", str(issue))
    assert retried.exit_code == 0, retried.output
    again = postmark.delivered_to()[len(failed_before) :]
    assert len(again) == 10 and not set(again) & failed_before  # exactly those ten
    assert store.delivery_counts(issue.stem) == {"accepted": 30}
    row = store.get_schedule(issue.stem)
    assert row is not None and row.status == "sent"


# --- 10. message identity -------------------------------------------------------------------


def test_every_message_sent_has_its_own_message_id(folder: Path) -> None:
    issue = sample_issue(folder / "issues")
    for _ in range(2):
        assert run("send", str(issue), "--test", "--to", "ann@example.org").exit_code == 0
        (test_file,) = (folder / "outbox").rglob("*.eml")
        test_file.rename(folder / f"test-{len(list(folder.glob('test-*.eml')))}.eml")
    deliver_outbox(folder, "ann@example.org")
    ids = set()
    for path in [*folder.glob("test-*.eml"), *(folder / "outbox").rglob("*.eml")]:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        ids.add(message["Message-ID"])
    assert len(ids) == 3


# --- 4. an unsubscribe never waits on the database -----------------------------------------


def test_listening_socket_and_its_connections_have_tcp_nodelay() -> None:
    import socket

    from digest.web.server import listening_socket

    server = listening_socket("127.0.0.1", 0)
    server.listen(1)
    try:
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        with socket.create_connection(server.getsockname()[:2], timeout=5):
            accepted, _ = server.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        server.close()


def test_one_click_posts_answer_at_once_while_the_database_is_locked_and_count_after(
    folder: Path,
) -> None:
    """An import or delivery holding the write lock for 40 s (past SQLite's 30 s busy
    timeout) must not delay or lose a one-click unsubscribe."""
    import os
    import sqlite3
    import time

    import httpx

    from digest.tokens import make_token

    emails = [f"reader{i}@example.org" for i in range(8)]
    store = SQLiteStore(folder / "digest.sqlite3")
    store.upsert_subscribers(((e, None, {}) for e in emails), resubscribe=False)
    tokens = {}
    for address in emails:
        subscriber = store.get_subscriber(address)
        assert subscriber is not None
        tokens[address] = make_token(SIGNING_KEY.encode(), store.list_identity(), subscriber.uid)
    env = {**os.environ, SIGNING_ENV: SIGNING_KEY}
    from tests.helpers import start_serve

    server, base = start_serve(folder, env)
    holder = sqlite3.connect(folder / "digest.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # what a long import does
        holder.execute(
            "UPDATE subscribers SET name = 'importing' WHERE email = ?", ("reader0@example.org",)
        )
        held_since = time.monotonic()
        answered = []
        with httpx.Client(base_url=base, timeout=5) as client:
            for address in emails:
                began = time.monotonic()
                response = client.post(
                    f"/unsubscribe/{tokens[address]}",
                    content="List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                answered.append((response.status_code, time.monotonic() - began))
                assert response.status_code == 200, response.text
                assert client.get("/healthz").status_code == 200
                time.sleep(4)
            slowest = max(seconds for _, seconds in answered)
            assert {status for status, _ in answered} == {200}
            assert slowest < 1.0, f"a one-click POST waited {slowest:.1f}s on the lock"
            time.sleep(max(0.0, 40 - (time.monotonic() - held_since)))
            holder.execute("COMMIT")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                counts = store.count_subscribers()
                if counts.get("unsubscribed") == len(emails):
                    break
                time.sleep(0.2)
        assert store.count_subscribers() == {"unsubscribed": len(emails)}
    finally:
        holder.close()
        server.terminate()
        server.wait(timeout=10)
        store.close()


# --- 9. SMTP outcomes are recorded as the server answers them -----------------------------


def test_each_smtp_message_is_recorded_before_the_next_is_sent(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.controller import Controller

    from digest.config import Smtp
    from tests.conftest import free_port

    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    database = in_tmp / "digest.sqlite3"
    seen_settled: list[int] = []

    class Checking:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            observer = SQLiteStore(database)
            slug = observer.list_schedules()[0].slug
            seen_settled.append(observer.delivery_counts(slug).get("accepted", 0))
            observer.close()
            return "250 OK"

    controller = Controller(Checking(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        values = settings(
            in_tmp,
            "smtp",
            smtp=Smtp(host="127.0.0.1", port=controller.port, security="none"),
            delivery={"concurrency": 1},
        )
        store = SQLiteStore(values.delivery.database)
        store.upsert_subscribers(
            ((f"r{i}@example.org", None, {}) for i in range(6)), resubscribe=False
        )
        schedule(store, sample_issue(in_tmp), values, "now", "UTC", dt.datetime.now(dt.UTC))
        from digest.delivery import QuietProgress, deliver_due
        from digest.providers import make_http_client

        with make_http_client(values) as client:
            (report,) = deliver_due(store, values, client=client, progress=QuietProgress())
        assert report.counts == {"accepted": 6}
    finally:
        controller.stop()
    # while message n was being received, the n-1 before it were already recorded
    assert seen_settled == [0, 1, 2, 3, 4, 5]
