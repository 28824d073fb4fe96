"""Scheduling: times across time zones and DST, freezing what was previewed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from digest.errors import DigestError
from digest.schedule import list_schedule, parse_send_time, rendered_from_json, schedule
from digest.store.sqlite import SQLiteStore
from tests.conftest import run
from tests.helpers import NOW, SIGNING_ENV, SIGNING_KEY, sample_issue, settings


@pytest.mark.parametrize(
    "text, tz, expected",
    [
        ("2026-12-01 07:00", "Europe/London", dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.UTC)),  # GMT
        ("2026-07-01 07:00", "Europe/London", dt.datetime(2026, 7, 1, 6, 0, tzinfo=dt.UTC)),  # BST
        (
            "2026-10-25 01:30",
            "Europe/London",
            dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC),
        ),  # twice: the first
        ("2026-12-01 07:00", "America/New_York", dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)),
        (
            "2026-12-01T07:00:00+09:00",
            "Europe/London",
            dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC),
        ),
        ("now", "Europe/London", NOW),
    ],
)
def test_send_times_become_utc_across_zones_and_dst(
    text: str, tz: str, expected: dt.datetime
) -> None:
    assert parse_send_time(text, tz, NOW) == expected


def test_a_time_skipped_by_the_clocks_going_forward_is_refused() -> None:
    with pytest.raises(DigestError, match="does not exist in Europe/London"):
        parse_send_time("2027-03-28 01:30", "Europe/London", NOW)


@pytest.mark.parametrize(
    "text, message", [("tomorrow", "not a time"), ("2026-12-01 07:00", "unknown time zone")]
)
def test_bad_times_and_zones_are_refused(text: str, message: str) -> None:
    with pytest.raises(DigestError, match=message):
        parse_send_time(text, "Mars/Olympus" if "zone" in message else "UTC", NOW)


@pytest.fixture
def signing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)


def test_scheduling_freezes_the_render_and_lists_later_edits(tmp_path: Path, signing: None) -> None:
    values = settings(tmp_path)
    store = SQLiteStore(values.delivery.database)
    path = sample_issue(tmp_path)
    frozen = schedule(store, path, values, "2026-12-01 07:00", "Europe/London", NOW)
    assert frozen.status == "scheduled"
    path.write_text(path.read_text().replace("subject: Can Harbor", "subject: Edited Can Harbor"))
    stored = store.get_schedule(frozen.slug)
    assert stored is not None and rendered_from_json(stored.rendered_json).subject.startswith(
        "Can Harbor"
    )
    (line,) = list_schedule(store, "Europe/London")
    assert line.changed and line.local_time == "2026-12-01 07:00 GMT"
    schedule(store, path, values, "2026-12-01 07:00", "Europe/London", NOW)
    again = store.get_schedule(frozen.slug)
    assert again is not None and rendered_from_json(again.rendered_json).subject.startswith(
        "Edited"
    )
    assert not list_schedule(store, "UTC")[0].changed


def test_an_issue_that_fails_the_check_is_not_scheduled(tmp_path: Path, signing: None) -> None:
    values = settings(tmp_path)
    store = SQLiteStore(values.delivery.database)
    path = sample_issue(tmp_path)
    path.write_text(path.read_text().replace("read_more: https://", "read_more: ftp://", 1))
    with pytest.raises(DigestError, match="not scheduled"):
        schedule(store, path, values, "now", "UTC", NOW)
    assert store.list_schedules() == []


def test_scheduling_needs_the_signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIGNING_ENV, raising=False)
    values = settings(tmp_path)
    with pytest.raises(DigestError, match=f"environment variable {SIGNING_ENV} must hold"):
        schedule(
            SQLiteStore(values.delivery.database), sample_issue(tmp_path), values, "now", "UTC", NOW
        )


def test_cli_schedule_list_and_unschedule(in_tmp: Path, signing: None) -> None:
    Path("config.yaml").write_text(f"unsubscribe:\n  signing_key_env: {SIGNING_ENV}\n")
    path = sample_issue(in_tmp / "issues")
    result = run("schedule", str(path), "--at", "2030-07-01 09:00", "--tz", "Europe/London")
    assert result.exit_code == 0, result.output
    scheduled, reach = result.stdout.strip().splitlines()
    assert scheduled.endswith("for 2030-07-01 09:00 BST (2030-07-01 08:00 UTC)")
    assert reach == "to 0 subscriber(s) of main as of now"  # nobody on the list yet
    listed = run("schedule", "--list", "--tz", "Europe/London").stdout
    assert "2030-07-01 09:00 BST  scheduled" in listed
    assert run("unschedule", str(path)).stdout == f"unscheduled {path.stem}\n"
    assert "cancelled" in run("schedule", "--list").stdout
    missing = run("unschedule", "issues/nope.yaml")
    assert missing.exit_code == 1 and "nope is not scheduled" in missing.stderr


def test_status_of_an_issue_scheduled_again_for_later_says_when_it_resumes(
    in_tmp: Path, signing: None
) -> None:
    Path("config.yaml").write_text(f"unsubscribe:\n  signing_key_env: {SIGNING_ENV}\n")
    store = SQLiteStore(in_tmp / "digest.sqlite3")
    store.upsert_subscribers([("a@example.org", None, {})], resubscribe=False)
    path = sample_issue(in_tmp / "issues")
    assert run("schedule", str(path), "--at", "now").exit_code == 0
    begun = store.get_schedule(path.stem)
    assert begun is not None  # a batch was formed (so it has begun), then it stopped
    now = dt.datetime.now(dt.UTC)
    assert (
        store.claim_issue(path.stem, "a:1:x", now, dt.timedelta(seconds=1), begun.version) is None
    )
    assert store.next_batch(path.stem, 10, now, begun.version) is not None
    store.set_issue_status(path.stem, "stopped", "paused by hand")
    again = run("schedule", str(path), "--at", "2030-07-01 09:00", "--tz", "UTC")
    assert again.exit_code == 0, again.output
    status = run("status", str(path))
    first = status.stdout.splitlines()[0]
    assert "resumes at 2030-07-01 09:00 UTC" in first, status.stdout
    assert "rate" not in status.stdout and "ETA" not in status.stdout
    store.close()


@pytest.mark.parametrize(
    ("at", "message"),
    [("2020-01-01 07:00", "is in the past"), ("0001-01-01 00:00", "in the past"),
     ("9999-12-31T23:59-14:00", "out of range"), ("0001-01-01T00:00+14:00", "out of range")],
)  # fmt: skip
def test_a_time_in_the_past_or_off_the_calendar_is_refused_on_one_line(
    in_tmp: Path, signing: None, at: str, message: str
) -> None:
    Path("config.yaml").write_text(f"unsubscribe:\n  signing_key_env: {SIGNING_ENV}\n")
    path = sample_issue(in_tmp / "issues")
    result = run("schedule", str(path), "--at", at, "--tz", "UTC")
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert path.stem not in run("schedule", "--list").stdout


def test_status_reads_only_where_the_store_is_and_starts_without_the_settings_models(
    in_tmp: Path, signing: None
) -> None:
    """`digest status` is run in a loop while an issue goes out: it takes the store's
    place from config.yaml (a database elsewhere included) without loading pydantic and
    the settings models, which are most of a command's start-up."""
    import subprocess
    import sys

    Path("config.yaml").write_text(
        f"unsubscribe:\n  signing_key_env: {SIGNING_ENV}\ndelivery:\n  database: lists/main.db\n"
    )
    Path("lists").mkdir()
    store = SQLiteStore(in_tmp / "lists" / "main.db")
    store.upsert_subscribers([("a@example.org", None, {})], resubscribe=False)
    store.close()
    path = sample_issue(in_tmp / "issues")
    assert run("schedule", str(path), "--at", "2030-07-01 09:00", "--tz", "UTC").exit_code == 0
    script = (
        "import sys\n"
        "from digest.cli import main\n"
        "sys.argv = ['digest', 'status', sys.argv[1]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    print('loaded pydantic' if 'pydantic' in sys.modules else 'no pydantic')\n"
        "    raise\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path.stem}: scheduled"), done.stdout
    assert done.stdout.strip().endswith("no pydantic"), done.stdout
    assert not (in_tmp / "digest.sqlite3").exists()  # the configured list, not a new one


@pytest.mark.parametrize(
    ("config", "message"),
    [("delivery:\n  database: [a, b]\n", "delivery.database: Input should be a valid string"),
     ("delivery: 7\n", "delivery: must be a mapping"),
     ("- a\n", "the top level must be a mapping")],
)  # fmt: skip
def test_status_refuses_a_config_whose_store_place_is_malformed_on_one_line(
    in_tmp: Path, config: str, message: str
) -> None:
    Path("config.yaml").write_text(config)
    result = run("status", "issues/x.yaml")
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert result.stderr.count("\n") == 1


def test_scheduling_an_approved_version_refuses_a_file_that_changed_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from digest.errors import DigestError
    from digest.schedule import schedule
    from digest.store.sqlite import SQLiteStore
    from tests.helpers import NOW, SIGNING_ENV, SIGNING_KEY, sample_issue
    from tests.helpers import settings as helper_settings

    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    values = helper_settings(tmp_path)
    issue = sample_issue(tmp_path)
    approved = hashlib.sha256(issue.read_bytes()).hexdigest()
    issue.write_text(issue.read_text(encoding="utf-8").replace("subject: Can", "subject: Sly Can"))
    store = SQLiteStore(values.delivery.database)
    try:
        with pytest.raises(DigestError, match="changed since it was approved"):
            schedule(store, issue, values, "now", "UTC", NOW, expected_hash=approved)
        assert store.get_schedule(issue.stem) is None
    finally:
        store.close()
