"""`digest deliver` as separate processes: killed at random moments, or two at once."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import email
import email.policy
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.schedule import schedule
from digest.store.sqlite import SQLiteStore
from tests.conftest import free_port
from tests.fakes import FakePostmark, FakeProvider, FakeResend
from tests.helpers import (
    KEY_ENV,
    SIGNING_ENV,
    SIGNING_KEY,
    add_subscribers,
    sample_issue,
    settings,
    yaml_config,
)


def environment(fake: FakeProvider | None) -> dict[str, str]:
    env = {**os.environ, SIGNING_ENV: SIGNING_KEY, "PYTHONUNBUFFERED": "1"}
    if fake is not None:
        env[KEY_ENV] = fake.key
    return env


def deliver_process(folder: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "deliver", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_at_random(
    folder: Path, env: dict[str, str], chance: random.Random, after: tuple[float, float]
) -> int:
    """Start `digest deliver` and SIGKILL it after a random moment, up to six times or
    until a run finishes first; the number of kills."""
    kills = 0
    for _ in range(6):
        proc = deliver_process(folder, env)
        time.sleep(chance.uniform(*after))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
    return kills


@pytest.fixture(params=["postmark", "resend"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeProvider]:
    made: FakeProvider = FakePostmark() if request.param == "postmark" else FakeResend()
    made.keep_bodies = False
    made.latency = 0.01
    yield made
    made.close()


def set_up(
    folder: Path, fake: FakeProvider, subscribers: int, batch_size: int, rate: float = 0
) -> tuple[SQLiteStore, list[str]]:
    name = "postmark" if isinstance(fake, FakePostmark) else "resend"
    delivery = {"concurrency": 2, "rate_limit": rate}
    values = settings(folder, name, fake, batch_size=batch_size, delivery=delivery)
    (folder / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
    store = SQLiteStore(values.delivery.database)
    emails = add_subscribers(store, subscribers)
    os.environ[SIGNING_ENV] = SIGNING_KEY
    schedule(store, sample_issue(folder), values, "now", "UTC", dt.datetime.now(dt.UTC))
    return store, emails


def test_killing_deliver_at_random_moments_loses_no_one_and_mails_no_one_twice(
    tmp_path: Path, fake: FakeProvider
) -> None:
    # 800 messages a second: a whole run takes about 4 s, so every kill lands mid-delivery
    store, emails = set_up(tmp_path, fake, subscribers=3000, batch_size=50, rate=800)
    env = environment(fake)
    kills = kill_at_random(tmp_path, env, random.Random(20261128), (0.5, 1.3))
    for _ in range(5):  # restart until done (the last killed run may have finished it)
        row = store.get_schedule(store.list_schedules()[0].slug)
        if row is not None and row.status in ("sent", "incomplete"):
            break
        proc = deliver_process(tmp_path, env)
        _, err = proc.communicate(timeout=300)
        row = store.get_schedule(store.list_schedules()[0].slug)
        if row is not None and row.status == "incomplete":  # done, with some unknown
            assert proc.returncode == 1 and "--resend-unknown" in err, err
            break
        assert proc.returncode == 0, err
    assert kills >= 3, "the delivery finished before it could be killed; make it slower"
    sent = collections.Counter(fake.delivered_to())
    twice = [address for address, n in sent.items() if n > 1]
    assert twice == [], f"mailed twice: {twice[:5]}"
    slug = store.list_schedules()[0].slug
    counts = store.delivery_counts(slug)
    assert counts.get("accepted", 0) + counts.get("unknown", 0) == len(emails), counts
    assert set(sent) | set(store.unknown_recipients(slug)) == set(emails)
    if isinstance(fake, FakeResend):
        assert counts == {"accepted": len(emails)}  # stranded batches were resent under their keys


def test_two_deliver_processes_at_once_never_send_the_same_issue_twice(tmp_path: Path) -> None:
    fake = FakePostmark()
    fake.keep_bodies = False
    fake.latency = 0.005
    try:
        _, emails = set_up(tmp_path, fake, subscribers=1500, batch_size=50)
        env = environment(fake)
        first, second = deliver_process(tmp_path, env), deliver_process(tmp_path, env)
        outputs = [p.communicate(timeout=300) for p in (first, second)]
        assert first.returncode == 0 and second.returncode == 0, outputs
        assert sorted(fake.delivered_to()) == emails
        assert any("already being delivered by" in err for _, err in outputs)
    finally:
        fake.close()


def test_new_user_flow_import_schedule_deliver_and_unsubscribe(tmp_path: Path) -> None:
    """The issue's "done when": CSV import, schedule now, deliver to the outbox, and a
    personal unsubscribe link that `digest serve` honours."""
    env = environment(None)
    (tmp_path / "config.yaml").write_text(
        f"unsubscribe:\n  url: https://news.example.org/unsubscribe/{{token}}\n  signing_key_env: {SIGNING_ENV}\n",
        encoding="utf-8",
    )
    (tmp_path / "subscribers.csv").write_text(
        "email,name\nann@example.org,Ann\nbob@example.org,Bob\nbroken-address,X\ncara@example.org,Cara\n",
        encoding="utf-8",
    )
    issue = sample_issue(tmp_path / "issues")

    def digest(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "digest", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    imported = digest("subscribers", "import", "subscribers.csv")
    assert (
        imported.returncode == 0
        and "added 3, updated 0, unchanged 0, rejected 1" in imported.stdout
    )
    assert digest("subscribers", "remove", "cara@example.org").returncode == 0
    assert digest("schedule", str(issue), "--at", "now").returncode == 0
    delivered = digest("deliver")
    assert delivered.returncode == 0, delivered.stderr
    assert "accepted 2" in delivered.stdout
    status = digest("status", str(issue))
    assert status.stdout.splitlines()[0].endswith(": sent")
    assert "accepted\t2" in status.stdout and "not yet sent\t0" in status.stdout
    listed_schedule = digest("schedule", "--list")
    assert "sent" in listed_schedule.stdout and "accepted 2" in listed_schedule.stdout
    files = sorted((tmp_path / "outbox").rglob("*.eml"))
    assert [f.name.split(".")[0] for f in files] == ["ann@example", "bob@example"]
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    link = re.search(
        r"<(https://news\.example\.org/unsubscribe/[^>]+)>", str(message["List-Unsubscribe"])
    )
    assert link
    from tests.helpers import start_serve

    server, base = start_serve(tmp_path, env)
    try:
        path = link.group(1).removeprefix("https://news.example.org")
        with httpx.Client(base_url=base) as client:
            assert client.get(path).status_code == 200
            response = client.post(
                path,
                content="List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code == 200
            assert client.post(path[:-3]).status_code == 400
    finally:
        server.terminate()
        server.wait(timeout=10)
    listed = digest("subscribers", "list", "--status", "active")
    assert listed.stdout == "bob@example.org\tactive\tBob\n"  # Ann unsubscribed, Cara was removed


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_mid_send_records_every_answer_and_releases_the_issue(
    tmp_path: Path, signum: signal.Signals
) -> None:
    fake = FakePostmark()
    fake.keep_bodies = False
    fake.latency = 0.15  # each batch takes a while: the signal lands with batches in flight
    try:
        store, emails = set_up(tmp_path, fake, subscribers=600, batch_size=10)
        env = environment(fake)
        proc = deliver_process(tmp_path, env)
        deadline = time.monotonic() + 30
        while len(fake.delivered_to()) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)  # on a busy machine the start can take a while: wait for sending
        assert proc.poll() is None, "the delivery finished before the signal"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stopped on request" in err and "run digest deliver to resume" in err
        assert "Traceback" not in err
        slug = store.list_schedules()[0].slug
        row = store.get_schedule(slug)
        assert row is not None and row.lease_owner is None and row.status == "sending"
        assert store.inflight_batches(slug) == []
        counts = store.delivery_counts(slug)
        assert "unknown" not in counts and "inflight" not in counts, counts
        assert 0 < counts.get("accepted", 0) < len(emails)
        resumed = deliver_process(tmp_path, env)
        _, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err
        assert sorted(fake.delivered_to()) == emails  # everyone once, nobody twice
    finally:
        fake.close()


class SlowInbox:
    """An SMTP server that takes a realistic moment over each message and logs what it
    accepted, at the moment it accepts it."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.accepted: list[str] = []
        self.message_ids: dict[str, set[str]] = collections.defaultdict(set)

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        for address in envelope.rcpt_tos:
            self.accepted.append(address)
            self.message_ids[address].add(str(message["Message-ID"]))
        return "250 OK"


def test_killing_smtp_delivery_leaves_at_most_the_message_in_progress_unknown(
    tmp_path: Path,
) -> None:
    """SMTP has no idempotency: a message whose final dot reached the server may have been
    accepted though the answer never came back. Each answer is recorded before the next
    message goes, so a kill leaves at most the message in progress on each connection
    unknown; resending those (--resend-unknown) is the operator's choice, and a copy
    resent carries the first one's Message-ID, so mailboxes that keep one show one."""
    from aiosmtpd.controller import Controller

    from digest.config import Smtp

    inbox = SlowInbox(delay=0.02)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        smtp = Smtp(host="127.0.0.1", port=controller.port, security="none")
        values = settings(tmp_path, "smtp", smtp=smtp, delivery={"concurrency": 2})
        (tmp_path / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
        store = SQLiteStore(values.delivery.database)
        emails = add_subscribers(store, 800)
        os.environ[SIGNING_ENV] = SIGNING_KEY
        schedule(store, sample_issue(tmp_path), values, "now", "UTC", dt.datetime.now(dt.UTC))
        env = environment(None)
        kills = kill_at_random(tmp_path, env, random.Random(20261129), (0.6, 1.2))
        slug = store.list_schedules()[0].slug
        finish = deliver_process(tmp_path, env)  # settle what the kills left, send the rest
        _, err = finish.communicate(timeout=300)
        unknown = set(store.unknown_recipients(slug))
        # unknown is not sent: the run that ends the issue says so and fails (unless the
        # last killed run had already ended it, and this one found nothing due)
        if "no issue is due" not in err:
            assert finish.returncode == (1 if unknown else 0), err
            assert not unknown or "--resend-unknown" in err
        else:
            assert finish.returncode == 0, err
        again = deliver_process(tmp_path, env, "--resend-unknown")
        _, err = again.communicate(timeout=300)
        assert again.returncode == 0, err
        assert kills >= 3, "the delivery finished before it could be killed; make it slower"
        # each kill leaves at most the message in progress on each connection unknown
        assert len(unknown) <= 2 * kills, sorted(unknown)[:5]
        sent = collections.Counter(inbox.accepted)
        twice = {address for address, n in sent.items() if n > 1}
        assert twice <= unknown, f"mailed twice though known: {sorted(twice - unknown)[:5]}"
        assert all(len(inbox.message_ids[address]) == 1 for address in twice)
        assert store.delivery_counts(slug) == {"accepted": len(emails)}
        assert set(sent) == set(emails)
    finally:
        controller.stop()


@pytest.mark.parametrize("lease", [1.0, 2.0])
def test_a_second_deliver_on_sqlite_never_takes_over_a_live_process_s_issue(
    tmp_path: Path, lease: float
) -> None:
    """A batch that takes longer than the lease (a slow relay) keeps its process's lease
    alive; a second `digest deliver` started after the lease would have run out leaves
    the issue to the live one, and nobody is mailed twice."""
    from aiosmtpd.controller import Controller

    from digest.config import Smtp

    inbox = SlowInbox(delay=0.03)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        smtp = Smtp(host="127.0.0.1", port=controller.port, security="none")
        delivery = {"concurrency": 2, "lease_seconds": lease}
        values = settings(tmp_path, "smtp", smtp=smtp, batch_size=60, delivery=delivery)
        (tmp_path / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
        store = SQLiteStore(values.delivery.database)
        emails = add_subscribers(store, 240)
        os.environ[SIGNING_ENV] = SIGNING_KEY
        schedule(store, sample_issue(tmp_path), values, "now", "UTC", dt.datetime.now(dt.UTC))
        env = environment(None)
        first = deliver_process(tmp_path, env)
        deadline = time.monotonic() + 60
        while not inbox.accepted and time.monotonic() < deadline:
            time.sleep(0.05)  # the first is sending its first batches
        time.sleep(lease + 0.8)  # past the lease, with a batch still being sent
        assert first.poll() is None, "the first run ended too soon to be overlapped"
        second = deliver_process(tmp_path, env)
        for proc in (first, second):
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        sent = collections.Counter(inbox.accepted)
        assert {a for a, n in sent.items() if n > 1} == set()
        slug = store.list_schedules()[0].slug
        leftover = deliver_process(tmp_path, env)  # anything the two left, once more
        _, err = leftover.communicate(timeout=120)
        assert leftover.returncode == 0, err
        assert store.delivery_counts(slug) == {"accepted": len(emails)}
        assert sorted(collections.Counter(inbox.accepted)) == emails
        assert max(collections.Counter(inbox.accepted).values()) == 1
    finally:
        controller.stop()
