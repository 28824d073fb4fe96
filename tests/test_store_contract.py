"""The store contract, against both stores: an SQLite file and a real PostgreSQL server
started by the tests. What the delivery code, the web app and the CLI rely on must hold
the same on each."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.config import Settings
from digest.delivery import QuietProgress, deliver_due
from digest.events import Event
from digest.providers import make_http_client
from digest.schedule import schedule
from digest.store import Result, ScheduledIssue, open_database
from digest.store.migrate import SCHEMA_VERSION
from digest.store.postgres import PostgresStore
from digest.store.sqlite import SQLiteStore
from tests.helpers import NOW, SIGNING_ENV, SIGNING_KEY, sample_issue, yaml_config
from tests.helpers import settings as helper_settings

SLUG = "2026-03-04-can-harbor-cities-hold-the-line-against-the-sea"


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "digest.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database: str) -> Iterator[SQLiteStore]:
    opened = open_database(database)
    yield opened  # type: ignore[misc]
    opened.close()


def test_subscribers_upsert_suppress_forget_and_count_alike(store: SQLiteStore) -> None:
    report = store.upsert_subscribers(
        [("ann@example.org", "Ann", {"city": "Oslo"}), ("bob@example.org", None, {}),
         ("ann@example.org", "Annie", {"team": "a"})],
        resubscribe=False,
    )  # fmt: skip
    assert (report.added, report.updated, report.unchanged) == (2, 0, 0)
    ann = store.get_subscriber("ann@example.org")
    assert ann is not None and ann.name == "Ann" and ann.attributes == {"city": "Oslo", "team": "a"}
    assert store.set_status("bob@example.org", "unsubscribed")
    again = store.upsert_subscribers([("bob@example.org", None, {})], resubscribe=False)
    assert again.kept == 1 and store.get_subscriber("bob@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert store.forget("ann@example.org") and store.is_suppressed("ann@example.org")
    skipped = store.upsert_subscribers([("ann@example.org", None, {})], resubscribe=False)
    assert [email for _, email in skipped.suppressed] == ["ann@example.org"]
    assert store.count_subscribers() == {"unsubscribed": 1}
    assert [s.email for s in store.iter_subscribers()] == ["bob@example.org"]


def test_inbox_unsubscribes_events_and_signups_apply_alike(store: SQLiteStore) -> None:
    store.upsert_subscribers(
        [(f"{n}@example.org", None, {}) for n in ("a", "b", "c")], resubscribe=False
    )
    a = store.get_subscriber("a@example.org")
    assert a is not None
    store.request_unsubscribe(a.uid, "one-click")
    bounce = Event(
        "mailgun", "hard_bounce", "b@example.org", NOW, issue=SLUG, detail="550 no such user"
    ).with_fingerprint()
    assert store.receive_events([bounce], "replay-1")
    assert not store.receive_events([bounce], "replay-1")  # a replay records nothing
    store.request_signup("new@example.org", "New")
    assert store.inbox_waiting() == 2
    assert store.apply_inbox() == 2
    assert {s.email: s.status for s in store.iter_subscribers()} == {
        "a@example.org": "unsubscribed", "b@example.org": "bounced", "c@example.org": "active",
    }  # fmt: skip
    [signup] = store.signups()
    assert store.confirmations_due()
    assert [s.email for s in store.claim_confirmations(NOW, 10)] == ["new@example.org"]
    assert store.claim_confirmations(NOW, 10) == []  # claimed once
    store.request_confirm(signup.uid)
    store.apply_inbox()
    assert store.get_subscriber("new@example.org").status == "active"  # type: ignore[union-attr]
    assert [e.kind for e in store.events_for("b@example.org")] == ["hard_bounce"]


def test_the_ledger_claims_batches_records_and_settles_alike(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    store.upsert_subscribers(
        [(f"r{i:02d}@example.org", None, {}) for i in range(25)], resubscribe=False
    )
    values = helper_settings(tmp_path)
    frozen = schedule(store, sample_issue(tmp_path), values, "now", "UTC", NOW)
    assert store.claim_issue(SLUG, "me", NOW, dt.timedelta(seconds=60), frozen.version) is None
    shared = store.claim_issue(SLUG, "other", NOW, dt.timedelta(seconds=60), frozen.version)
    if isinstance(store, PostgresStore):
        assert shared is None  # a fleet shares the issue, batch by batch
    else:
        assert shared == "already being delivered by me"  # one process per issue
    first = store.next_batch(SLUG, 10, NOW, frozen.version)
    second = store.next_batch(SLUG, 10, NOW, frozen.version)
    assert first and second and len(first.recipients) == len(second.recipients) == 10
    assert not {r.subscriber_id for r in first.recipients} & {
        r.subscriber_id for r in second.recipients
    }
    results = [
        Result(r.subscriber_id, "accepted", message_id=f"<m{r.subscriber_id}>")
        for r in first.recipients
    ]
    results[0] = Result(first.recipients[0].subscriber_id, "rejected", error="550 unknown user")
    store.record(SLUG, first.id, results, "me", NOW + dt.timedelta(seconds=60), provider="smtp")
    assert store.delivery_counts(SLUG) == {"accepted": 9, "rejected": 1, "inflight": 10}
    for owner in ("me", "other"):  # the workers stop, leaving the second batch in flight
        store.release_issue(SLUG, owner)
    assert [b.id for b in store.inflight_batches(SLUG)] == [second.id]
    assert store.mark_unknown([second.id]) == 10
    assert len(store.unknown_recipients(SLUG)) == 10
    assert store.reopen_unknown(SLUG, NOW) == 10
    assert store.remaining(SLUG) == 15  # 10 reopened and 5 the cursor has not reached
    assert store.accepted_since(SLUG, NOW - dt.timedelta(days=3650)) == 9
    assert sum(n for _, _, n in store.delivery_timeline(SLUG)) == 20
    rejected = store.get_subscriber(first.recipients[0].email)
    assert rejected is not None and rejected.status == "bounced"  # a hard bounce, at once
    assert store.issue_event_counts(SLUG) == {"hard_bounce": 1}


def test_a_delivery_runs_to_the_end_on_either_store(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    values = helper_settings(tmp_path).model_copy(
        update={
            "delivery": helper_settings(tmp_path).delivery.model_copy(update={"database": database})
        }
    )
    store = open_database(database)
    store.upsert_subscribers(
        [(f"r{i:03d}@example.org", f"R {i}", {}) for i in range(120)], resubscribe=False
    )
    schedule(store, sample_issue(tmp_path), values, "now", "UTC", NOW)  # type: ignore[arg-type]
    with make_http_client(values) as client:
        [report] = deliver_due(
            store, values, client=client, progress=QuietProgress(), clock=lambda: NOW
        )
    assert report.ok and store.delivery_counts(SLUG) == {"accepted": 120}
    assert store.get_schedule(SLUG).status == "sent"  # type: ignore[union-attr]
    assert len(list((tmp_path / "outbox" / SLUG).glob("*.eml"))) == 120
    assert [p.slug for p in store.published_issues(scheduled_too=False)] == [SLUG]
    store.close()


def test_three_deliver_processes_on_postgres_share_one_issue_and_send_each_subscriber_once(
    postgres_url: str,
    tmp_path: Path,
) -> None:
    values: Settings = helper_settings(tmp_path, batch_size=50)  # 60 batches to share
    values = values.model_copy(
        update={"delivery": values.delivery.model_copy(update={"database": postgres_url})}
    )
    (tmp_path / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
    store = open_database(postgres_url)
    store.upsert_subscribers(
        [(f"r{i:04d}@example.org", None, {}) for i in range(3000)], resubscribe=False
    )
    store.close()
    env = {**__import__("os").environ, SIGNING_ENV: SIGNING_KEY}
    issue = sample_issue(tmp_path)
    cli = [sys.executable, "-m", "digest"]
    subprocess.run(
        [*cli, "schedule", str(issue), "--at", "now"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    workers = [
        subprocess.Popen(
            [*cli, "deliver"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    files = sorted(p.name.split(".")[0] for p in (tmp_path / "outbox" / SLUG).glob("*.eml"))
    assert len(files) == 3000 and len(set(files)) == 3000, outputs
    store = open_database(postgres_url)
    assert store.delivery_counts(SLUG) == {"accepted": 3000}
    assert store.get_schedule(SLUG).status == "sent"  # type: ignore[union-attr]
    owners = store.db.execute("SELECT COUNT(DISTINCT owner) FROM batches").fetchone()[0]  # type: ignore[attr-defined]
    assert owners >= 2, outputs  # the issue was shared, not waited for
    store.close()


def test_postgres_commands_refuse_a_database_without_the_schema_until_migrated(
    postgres_server: object,
    tmp_path: Path,
) -> None:
    url = postgres_server.new_database()  # type: ignore[attr-defined]
    (tmp_path / "config.yaml").write_text(f"delivery:\n  database: {url}\n")
    env = {**__import__("os").environ}
    cli = [sys.executable, "-m", "digest"]
    before = subprocess.run(
        [*cli, "subscribers", "count"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert before.returncode == 1 and "run `digest db migrate`" in before.stderr
    assert "Traceback" not in before.stderr and len(before.stderr.strip().splitlines()) == 1
    migrated = subprocess.run(
        [*cli, "db", "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert migrated.returncode == 0 and f"schema {SCHEMA_VERSION}, up to date" in migrated.stdout
    after = subprocess.run(
        [*cli, "subscribers", "count"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert after.returncode == 0 and "total\t0" in after.stdout


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.send_slot(10, 5.0, 0.0),
        lambda s: s.claim_issue(SLUG, "w", NOW, dt.timedelta(seconds=60), 1),
        lambda s: s.upsert_subscribers([("a@example.org", None, {})], resubscribe=False),
        lambda s: s.schema_version(),
        lambda s: s.request_unsubscribe("some-uid"),
        lambda s: s.request_signup("someone@example.org", "Someone"),
    ],
    ids=[
        "send_slot",
        "claim_issue",
        "upsert_subscribers",
        "schema_version",
        "inbox_unsubscribe",
        "inbox_signup",
    ],
)
def test_a_postgres_store_rides_out_dropped_connections_and_names_an_unreachable_database(
    postgres_url: str, call: object
) -> None:
    """Connections the server drops (a restart, a failover) are replaced without the
    caller seeing it; while the database takes no connections at all, each call fails
    with the store's one-line error naming the database; when it takes them again, so
    does the store, in the same process."""
    import psycopg

    from digest.errors import StoreError

    base, name = postgres_url.rsplit("/", 1)

    def admin(*statements: str) -> None:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)

    drop = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    store = open_database(postgres_url, busy_seconds=2)
    store.count_subscribers()
    admin(drop)
    call(store)  # type: ignore[operator]
    admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false", drop)
    with pytest.raises(StoreError) as raised:
        call(store)  # type: ignore[operator]
    message = str(raised.value)
    assert message.startswith(postgres_url) and "\n" not in message
    admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    deadline = time.monotonic() + 30
    while True:  # the pool reconnects in the background, backing off
        try:
            call(store)  # type: ignore[operator]
            break
        except StoreError:
            assert time.monotonic() < deadline, "the store never came back"
            time.sleep(0.5)
    store.close()


def test_db_copy_moves_a_list_and_its_history_into_postgres_with_its_identity(
    postgres_server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.tokens import make_token, read_token

    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    values = helper_settings(tmp_path)
    sqlite = SQLiteStore(tmp_path / "digest.sqlite3")
    sqlite.upsert_subscribers(
        [(f"r{i}@example.org", f"R {i}", {"n": str(i)}) for i in range(30)], resubscribe=False
    )
    sqlite.forget("r29@example.org")  # the highest id, gone: never to be given again
    r3 = sqlite.get_subscriber("r3@example.org")
    assert r3 is not None
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)  # an event set aside when applied
    sqlite.receive_events(
        [Event("postmark", "soft_bounce", "r5@example.org", oldest).with_fingerprint()]
    )
    sqlite.apply_inbox()
    sqlite.request_unsubscribe(r3.uid, "one-click")  # still waiting in the inbox
    schedule(sqlite, sample_issue(tmp_path), values, "now", "UTC", NOW)
    with make_http_client(values) as client:
        deliver_due(sqlite, values, client=client, progress=QuietProgress(), clock=lambda: NOW)
    before = (sqlite.list_identity(), sqlite.delivery_counts(SLUG), sqlite.count_subscribers())
    token = make_token(SIGNING_KEY.encode(), sqlite.list_identity(), r3.uid)
    sqlite.close()
    url = postgres_server.new_database()  # type: ignore[attr-defined]
    cli = [sys.executable, "-m", "digest", "db", "copy", "--from", "digest.sqlite3", "--to", url]
    done = subprocess.run(cli, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "subscribers 29" in done.stdout and "deliveries 28" in done.stdout
    pg = open_database(url)
    assert (pg.list_identity(), pg.delivery_counts(SLUG), pg.count_subscribers()) == before
    assert (
        read_token([SIGNING_KEY.encode()], pg.list_identity(), token) == r3.uid
    )  # links still work
    assert pg.get_subscriber("r3@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert pg.is_suppressed("r29@example.org")
    assert [f.event.email for f in pg.failed_events()] == ["r5@example.org"]  # history too
    pg.upsert_subscribers([("new@example.org", None, {})], resubscribe=False)
    assert pg.get_subscriber("new@example.org").id > 30  # type: ignore[union-attr]
    assert pg.get_schedule(SLUG).status == "sent"  # type: ignore[union-attr]
    again = subprocess.run(cli, cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr
    pg.close()


@pytest.mark.parametrize("provider", ["postmark", "resend"])
def test_killing_fleet_workers_on_postgres_loses_no_one_and_mails_no_one_twice(
    postgres_url: str, tmp_path: Path, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collections
    import random
    import signal
    import time

    from tests.fakes import FakePostmark, FakeResend
    from tests.helpers import add_subscribers
    from tests.test_delivery_processes import deliver_process, environment

    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    fake = FakePostmark() if provider == "postmark" else FakeResend()
    fake.keep_bodies = False
    fake.latency = 0.01
    try:
        lease = 2.0  # a killed worker's batches are taken over this long after its last word
        values = helper_settings(
            tmp_path, provider, fake, batch_size=50,
            delivery={"concurrency": 2, "rate_limit": 300, "database": postgres_url,
                      "lease_seconds": lease},
        )  # fmt: skip
        (tmp_path / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
        store = open_database(postgres_url)
        emails = add_subscribers(store, 2400)  # type: ignore[arg-type]
        env = environment(fake)
        schedule(store, sample_issue(tmp_path), values, "now", "UTC", dt.datetime.now(dt.UTC))  # type: ignore[arg-type]
        chance = random.Random(20261129)
        workers = [deliver_process(tmp_path, env) for _ in range(3)]
        kills = 0
        for _ in range(4):  # kill one worker at a random moment, start another in its place
            time.sleep(chance.uniform(0.6, 1.2))
            running = [w for w in workers if w.poll() is None]
            if not running:
                break
            victim = chance.choice(running)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            kills += 1
            workers[workers.index(victim)] = deliver_process(tmp_path, env)

        def finished_or_unknown(proc: subprocess.Popen[str]) -> None:
            """Exit 0, or 1 saying some recipients are unknown (never called sent)."""
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0 or (proc.returncode == 1 and "--resend-unknown" in err), err

        for worker in workers:
            finished_or_unknown(worker)
        for _ in range(5):  # once the dead workers' leases ran out, a last run settles them
            if store.get_schedule(SLUG).status in ("sent", "incomplete"):  # type: ignore[union-attr]
                break
            time.sleep(lease + 0.5)
            finished_or_unknown(deliver_process(tmp_path, env))
        assert kills >= 3, "the fleet finished before it could be killed; make it slower"
        sent = collections.Counter(fake.delivered_to())
        assert [a for a, n in sent.items() if n > 1] == []
        counts = store.delivery_counts(SLUG)
        assert counts.get("accepted", 0) + counts.get("unknown", 0) == len(emails), counts
        assert set(sent) | set(store.unknown_recipients(SLUG)) == set(emails)
        if provider == "resend":
            assert counts == {"accepted": len(emails)}  # stranded batches resent under their keys
        owners = store.db.execute("SELECT COUNT(DISTINCT owner) FROM batches").fetchone()[0]  # type: ignore[attr-defined]
        # the work was shared (how many of the replacements got a batch before the end
        # depends on how busy the machine is)
        assert owners >= 2
        store.close()
    finally:
        fake.close()


def test_the_rate_limit_holds_for_the_whole_fleet_on_postgres(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes import FakePostmark
    from tests.helpers import add_subscribers
    from tests.test_delivery_processes import deliver_process, environment

    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    fake = FakePostmark()
    fake.keep_bodies = False
    rate, batch = 150.0, 15
    try:
        values = helper_settings(
            tmp_path, "postmark", fake, batch_size=batch,
            delivery={"concurrency": 2, "rate_limit": rate, "database": postgres_url},
        )  # fmt: skip
        (tmp_path / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
        store = open_database(postgres_url)
        emails = add_subscribers(store, 600)  # type: ignore[arg-type]
        schedule(store, sample_issue(tmp_path), values, "now", "UTC", dt.datetime.now(dt.UTC))  # type: ignore[arg-type]
        env = environment(fake)
        workers = [deliver_process(tmp_path, env) for _ in range(3)]
        for worker in workers:
            _, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, err
        assert sorted(fake.delivered_to()) == emails
        owners = store.db.execute("SELECT COUNT(DISTINCT owner) FROM batches").fetchone()[0]  # type: ignore[attr-defined]
        assert owners >= 2  # several workers sent...
        arrivals = sorted(fake.arrivals)
        span = arrivals[-1] - arrivals[0]
        # ...and together no faster than the one limit: all but the first batch were paced
        assert (len(arrivals) - batch) / span <= rate * 1.1, (len(arrivals), span)
        store.close()
    finally:
        fake.close()


def explain_updates(monkeypatch: pytest.MonkeyPatch, prefix: str) -> list[str]:
    """The plans of the statements starting with ``prefix`` that psycopg runs from now
    until ``monkeypatch.undo()`` (each explained, then run)."""
    import psycopg

    plans: list[str] = []
    execute = psycopg.Connection.execute

    def explained(self: Any, query: Any, params: Any = None, **options: Any) -> Any:
        if isinstance(query, str) and query.startswith(prefix):
            plans.extend(r[0] for r in execute(self, "EXPLAIN " + query, params))
        return execute(self, query, params, **options)

    monkeypatch.setattr(psycopg.Connection, "execute", explained)
    return plans


def test_recording_outcomes_on_postgres_finds_the_batch_by_index_not_the_whole_ledger(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-recipient outcomes (Postmark, Resend) are written with one statement a batch.
    Its plan must reach the batch's rows through the issue, never read the issue's whole
    ledger: that cost 70 ms a batch at 100,000 recipients, and grew with the list."""
    import psycopg

    store = open_database(postgres_url)
    with store.transaction() as db:  # type: ignore[attr-defined]
        db.raw.execute(
            "INSERT INTO deliveries (issue, subscriber_id, status, batch_id, updated_at)"
            " SELECT 7, g, CASE WHEN g > 19900 THEN 'inflight' ELSE 'accepted' END,"
            " CASE WHEN g > 19900 THEN 200 ELSE g / 100 END, 0 FROM generate_series(1, 20000) g"
        )
    plans = explain_updates(monkeypatch, "UPDATE deliveries d")
    outcomes = [("accepted", f"m{i}", None, None, 5, 7, i, 200) for i in range(19901, 20001)]
    with store.transaction() as db:  # type: ignore[attr-defined]
        store._record_each(db, outcomes)  # type: ignore[attr-defined]
    monkeypatch.undo()
    assert plans
    reaches = [line for line in plans if "Index Cond:" in line or "Recheck Cond:" in line]
    assert reaches and all("issue = " in line for line in reaches), plans
    assert not [line for line in plans if "Seq Scan on deliveries" in line], plans
    with psycopg.connect(postgres_url) as connection:
        settled = connection.execute(
            "SELECT count(*) FROM deliveries WHERE issue = 7 AND status = 'accepted'"
        ).fetchone()
    assert settled == (20000,)
    store.close()


@pytest.mark.parametrize("each", [False, True], ids=["one-outcome-a-batch", "one-each"])
def test_outcomes_on_postgres_find_their_rows_by_key_not_by_the_status_index_of_the_past(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, each: bool
) -> None:
    """Every outcome writes a new version of its ledger row, so the status index keeps an
    entry for every row ever in flight until VACUUM: a plan that looks for the batch's
    rows through ``status = 'inflight'`` reads the issue's whole past for every batch,
    longer and longer as an issue goes on. Mailgun's batches share one outcome, Postmark's
    have one each: both must reach their rows by the primary key, and match outcomes to
    rows without a nested loop."""
    import psycopg

    store = open_database(postgres_url)
    store.save_schedule(ScheduledIssue("big", "issues/big.yaml", "h", NOW, "sending", "{}"))
    key = store._key("big")  # type: ignore[attr-defined]
    with store.transaction() as db:  # type: ignore[attr-defined]
        db.raw.execute(
            "INSERT INTO deliveries (issue, subscriber_id, status, batch_id, updated_at)"
            " SELECT %s, g, 'inflight', g / 1000, 0 FROM generate_series(1, 30999) g",
            [key],
        )
    with psycopg.connect(postgres_url, autocommit=True) as raw:  # the past, batch by batch
        for batch in range(30):
            raw.execute(
                "UPDATE deliveries SET status = 'accepted' WHERE issue = %s AND batch_id = %s",
                [key, batch],
            )
        raw.execute("ANALYZE deliveries")
    plans = explain_updates(monkeypatch, "UPDATE deliveries")
    results = [Result(i, "accepted", f"m{i if each else 0}") for i in range(30000, 31000)]
    store.record("big", 30, results, "worker", NOW + dt.timedelta(minutes=5))
    monkeypatch.undo()
    assert plans
    assert any("deliveries_pkey" in line for line in plans), plans
    assert not any("deliveries_status" in line for line in plans), plans
    assert not any("Nested Loop" in line for line in plans), plans
    with psycopg.connect(postgres_url) as connection:
        settled = connection.execute(
            "SELECT count(*) FROM deliveries WHERE issue = %s AND status = 'accepted'", [key]
        ).fetchone()
    assert settled == (30999,)
    store.close()


def test_the_public_app_answers_503_in_one_log_line_while_postgres_is_unreachable(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader who clicks unsubscribe or signs up while the database is down gets a
    page saying to try again (503 with Retry-After, which one-click senders honour), and
    the log gets one line naming the database, not a traceback; once it is back, the
    same app carries on."""
    import logging

    import psycopg
    from starlette.testclient import TestClient

    from digest.config import Delivery, Provider, Settings, Unsubscribe
    from digest.web import create_app

    base, name = postgres_url.rsplit("/", 1)

    def admin(*statements: str) -> None:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)

    settings = Settings(
        delivery=Delivery(database=postgres_url),
        unsubscribe=Unsubscribe(signing_key_env=SIGNING_ENV),
        provider=Provider(name="outbox", outbox_dir=str(tmp_path / "outbox")),
    )
    app = create_app(settings, (SIGNING_KEY.encode(),))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/subscribe", data={"email": "a@example.org"}).status_code == 200
        admin(
            f"ALTER DATABASE {name} ALLOW_CONNECTIONS false",
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            down = client.post("/subscribe", data={"email": "b@example.org"})
        assert down.status_code == 503 and down.headers["Retry-After"]
        assert "try again" in down.text.lower()
        logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert logged and not any(r.exc_info for r in logged)
        assert any(postgres_url in r.getMessage() for r in logged)
        admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        deadline = time.monotonic() + 30
        while client.post("/subscribe", data={"email": "c@example.org"}).status_code != 200:
            assert time.monotonic() < deadline, "the app never came back"
            time.sleep(0.5)


def test_wrong_bounces_are_undone_in_bulk_on_the_record_alike(store: SQLiteStore) -> None:
    emails = [f"{n}@example.org" for n in ("a", "b", "c", "d")]
    store.upsert_subscribers([(e, None, {}) for e in emails], resubscribe=False)
    relay = [
        Event("smtp", "hard_bounce", e, NOW, issue=SLUG, detail="550 5.7.1").with_fingerprint()
        for e in emails[:2]
    ]
    complaint = Event("mailgun", "complaint", "c@example.org", NOW).with_fingerprint()
    store.receive_events([*relay, complaint], None)
    store.apply_inbox()
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    assert store.unsuppress(before, "relay refused our sender", dry_run=True) == emails[:2]
    assert store.get_subscriber("a@example.org").status == "bounced"  # type: ignore[union-attr]
    assert store.unsuppress(before, "relay", provider="mailgun") == []
    assert store.unsuppress(before, "relay refused our sender", provider="smtp") == emails[:2]
    assert {s.email: s.status for s in store.iter_subscribers()} == {
        "a@example.org": "active",
        "b@example.org": "active",
        "c@example.org": "complained",
        "d@example.org": "active",
    }  # fmt: skip — a complaint is the reader's own word: never undone here
    history = store.events_for("a@example.org")
    assert ("unsuppressed", "operator", "relay refused our sender") in [
        (e.kind, e.provider, e.detail) for e in history
    ]
    assert store.unsuppress(before, "again") == []  # nobody bounced is left to undo


def test_an_event_that_cannot_be_applied_is_set_aside_and_the_next_applies_alike(
    store: SQLiteStore,
) -> None:
    store.upsert_subscribers([("a@example.org", None, {}), ("b@example.org", None, {})],
                             resubscribe=False)  # fmt: skip
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)  # counting soft bounces before it fails
    poison = Event("postmark", "soft_bounce", "a@example.org", oldest).with_fingerprint()
    good = Event("postmark", "complaint", "b@example.org", NOW).with_fingerprint()
    store.receive_events([poison, good])
    store.apply_inbox()
    assert store.inbox_waiting() == 0
    assert store.get_subscriber("b@example.org").status == "complained"  # type: ignore[union-attr]
    assert [f.event.email for f in store.failed_events()] == ["a@example.org"]
    assert store.events_for("a@example.org") == []  # nothing half-written


def test_every_public_store_method_turns_database_errors_into_one_line_on_both_stores() -> None:
    from digest.store.common import _UNGUARDED

    for store_class in (SQLiteStore, PostgresStore):
        for name in dir(store_class):
            method = getattr(store_class, name)
            if name.startswith("_") or name in _UNGUARDED or not callable(method):
                continue
            if isinstance(getattr(store_class, name, None), property):
                continue
            assert hasattr(method, "__wrapped__"), f"{store_class.__name__}.{name} is not guarded"
    # an override stays the subclass's own, guarded once
    assert PostgresStore.claim_issue.__wrapped__.__qualname__ == "PostgresStore.claim_issue"  # type: ignore[attr-defined]
    assert SQLiteStore.claim_issue.__wrapped__.__qualname__ == "Issues.claim_issue"  # type: ignore[attr-defined]


def test_newsletters_imports_and_choices_alike(store: SQLiteStore) -> None:
    """Subscriptions per newsletter, an export's leavers never active, the subscription
    page's choices and leaving one newsletter: the same on both stores."""
    leaving = {"cy@example.org": "unsubscribed", "dee@example.org": "bounced"}
    report = store.upsert_subscribers(
        [("ann@example.org", "Ann", {}), ("cy@example.org", "Cy", {}),
         ("dee@example.org", None, {})],
        resubscribe=False, newsletters=("main", "alerts"), leaving=leaving,
        joined={"ann@example.org": "2024-03-02"},
    )  # fmt: skip
    assert report.added == 3 and report.left == 2
    assert str(store.get_subscriber("ann@example.org").created_at).startswith("2024-03-02")  # type: ignore[union-attr]
    assert store.count_subscribers() == {"active": 1, "unsubscribed": 1, "bounced": 1}
    assert store.newsletter_counts() == {"main": 1, "alerts": 1}
    ann = store.get_subscriber("ann@example.org")
    assert ann is not None
    store.request_unsubscribe(ann.uid, "one-click", "alerts")
    store.apply_inbox()
    assert store.subscriptions_of(ann.uid)[1] == {"main": "subscribed", "alerts": "unsubscribed"}  # type: ignore[index]
    store.request_choice(
        ann.uid, {"name": "Ann Lee", "newsletters": ["alerts"], "offered": ["main", "alerts"]}
    )
    store.apply_inbox()
    assert store.subscriptions_of(ann.uid)[1] == {"main": "unsubscribed", "alerts": "subscribed"}  # type: ignore[index]
    assert store.get_subscriber("ann@example.org").name == "Ann Lee"  # type: ignore[union-attr]
    assert store.rename_newsletter("alerts", "news") == 1
    assert store.newsletter_counts() == {"main": 0, "news": 1}


def test_api_tokens_and_additions_alike(store: SQLiteStore) -> None:
    """What the HTTP API asks of the store: tokens by hash, additions sharing a commit
    (a forgotten address not added back), attributes merged, events after a cursor."""
    from digest.store.api_reads import Addition

    token = store.add_api_token("cms", "write")
    assert store.api_token(token).scope == "write"  # type: ignore[union-attr]
    assert store.api_token("dgt_" + "x" * 43) is None
    store.upsert_subscribers([("gone@example.org", None, {})], resubscribe=False)
    store.forget("gone@example.org")
    store.api_add([
        Addition("ann@example.org", "Ann", {"region": "Asia"}, ("main", "alerts"), "api:cms"),
        Addition("gone@example.org", None, {}, ("main",), "api:cms"),
        Addition("ann@example.org", None, {"team": "blue"}, ("main",), "api:cms"),
    ])  # fmt: skip
    ann = store.get_subscriber("ann@example.org")
    assert ann is not None and ann.name == "Ann"
    assert ann.attributes == {"region": "Asia", "team": "blue"}
    assert store.subscribed_to([ann.id])[ann.id] == ["alerts", "main"]
    assert store.get_subscriber("gone@example.org") is None
    assert store.merge_attributes("ann@example.org", {"team": None})
    assert store.get_subscriber("ann@example.org").attributes == {"region": "Asia"}  # type: ignore[union-attr]
    assert [e.actor for e in store.audit_entries()].count("api:cms") == 3
    store.request_unsubscribe(ann.uid, "api", "alerts")
    store.apply_inbox()
    [event] = store.events_after(0, 10)
    assert (event["kind"], event["email"], event["provider"]) == (
        "unsubscribe", "ann@example.org", "api",
    )  # fmt: skip
    assert store.events_after(event["id"], 10) == []
    assert store.revoke_api_token("cms") and store.api_token(token) is None


def test_the_fields_a_message_uses_are_read_typed_alike(store: SQLiteStore) -> None:
    """What delivery reads for a template's subscriber fields: the asked fields as
    stored (numbers, booleans, dates), a field someone lacks left out, on both stores."""
    from digest.render.personal import shown

    store.upsert_subscribers(
        [("ann@example.org", "Ann", {"city": "Osaka", "read": 12, "member": True,
                                     "joined_on": "2025-01-31", "team": "blue"}),
         ("bo@example.org", "Bo", {})],
        resubscribe=False,
    )  # fmt: skip
    ann, bo = (store.get_subscriber(e) for e in ("ann@example.org", "bo@example.org"))
    assert ann is not None and bo is not None
    found = store.field_values([ann.id, bo.id], ("city", "read", "member", "joined_on"))
    assert {k: shown(v) for k, v in found[ann.id].items()} == {
        "city": "Osaka", "read": "12", "member": "yes", "joined_on": "2025-01-31"
    }  # fmt: skip
    assert found[bo.id] == {}


@pytest.mark.parametrize("kind", ["unsubscribe", "event"])
def test_what_arrives_while_another_applier_finishes_is_never_lost(
    database: str, kind: str
) -> None:
    """Two appliers share one inbox (`digest serve --workers 2`: a background loop in
    each). One of them has applied a request and is about to clear it from the inbox
    when the other applies it too and clears it, and a new request arrives: the new one
    must still be applied. (On SQLite it took the id the cleared row had, and the first
    applier's late clear-up deleted it: an unsubscribe lost, the reader mailed on.)"""
    import threading

    first, second = open_database(database), open_database(database)
    first.upsert_subscribers(
        [("ann@example.org", None, {}), ("bo@example.org", None, {})], resubscribe=False
    )
    ann, bo = (first.get_subscriber(e) for e in ("ann@example.org", "bo@example.org"))
    assert ann is not None and bo is not None

    def arrive(subscriber: Any) -> None:
        if kind == "unsubscribe":
            first.request_unsubscribe(subscriber.uid, "one-click")
        else:
            first.receive_events(
                [Event("postmark", "hard_bounce", subscriber.email, NOW).with_fingerprint()]
            )

    arrive(ann)
    applied, go = threading.Event(), threading.Event()
    clear_up = second._inbox_done  # type: ignore[attr-defined]

    def late_clear_up(last: int) -> None:  # the second applier, slow to clear up
        applied.set()
        go.wait(10)
        clear_up(last)

    second._inbox_done = late_clear_up  # type: ignore[attr-defined]
    try:
        worker = threading.Thread(target=second.apply_inbox)
        worker.start()
        assert applied.wait(10)
        first.apply_inbox()  # applies Ann's again (harmless) and clears the inbox
        arrive(bo)  # arrives now
        go.set()
        worker.join(10)
        first.apply_inbox()
        left = {"unsubscribe": "unsubscribed", "event": "bounced"}[kind]
        assert first.get_subscriber("bo@example.org").status == left  # type: ignore[union-attr]
        assert first.get_subscriber("ann@example.org").status == left  # type: ignore[union-attr]
        assert first.inbox_waiting() == 0
    finally:
        go.set()
        first.close()
        second.close()
