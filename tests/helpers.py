"""Shared set-up for the subscriber, schedule and delivery tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from digest.compose import compose
from digest.config import Delivery, Settings, Unsubscribe
from digest.config import Provider as ProviderSettings
from digest.issuefile import dump_issue, write_issue
from digest.store.sqlite import SQLiteStore
from tests.conftest import SAMPLE, SAMPLE_URL
from tests.fakes import FakeProvider

SIGNING_ENV = "DIGEST_TEST_SIGNING_KEY"
SIGNING_KEY = "test-signing-key-0123456789"
KEY_ENV = "DIGEST_TEST_PROVIDER_KEY"
NOW = dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.UTC)


def sample_issue(folder: Path) -> Path:
    issue, path = compose([str(SAMPLE)], Settings(), url=SAMPLE_URL, out_dir=folder)
    write_issue(dump_issue(issue), path, force=True)
    return path


def settings(
    folder: Path,
    provider: str = "outbox",
    fake: FakeProvider | None = None,
    *,
    delivery: dict[str, Any] | None = None,
    **options: Any,
) -> Settings:
    provider_options: dict[str, Any] = {
        "name": provider,
        "outbox_dir": str(folder / "outbox"),
        "retry_delay": 0.01,
        "max_retry_delay": 0.05,
        **options,
    }
    if fake is not None:
        provider_options |= {"base_url": fake.url, "api_key_env": KEY_ENV}
    return Settings(
        provider=ProviderSettings(**provider_options),
        unsubscribe=Unsubscribe(
            signing_key_env=SIGNING_ENV, url="https://example.org/unsubscribe/{token}"
        ),
        delivery=Delivery(**{"database": str(folder / "digest.sqlite3"), **(delivery or {})}),
    )


def add_subscribers(store: SQLiteStore, count: int, start: int = 0) -> list[str]:
    emails = [f"reader{i:05d}@example.org" for i in range(start, start + count)]
    store.upsert_subscribers(
        ((e, f"Reader {i}", {}) for i, e in enumerate(emails)), resubscribe=False
    )
    return emails


def yaml_config(values: Settings) -> str:
    """config.yaml text for a subprocess, from the settings the test built."""
    import json

    data = values.model_dump(by_alias=True, mode="json", exclude_defaults=True)
    return json.dumps(data)  # JSON is YAML


def scheduled_in_folder(folder: Path, values: Settings, count: int) -> tuple[SQLiteStore, Path]:
    """config.yaml from ``values`` in ``folder``, ``count`` subscribers, and the sample
    issue scheduled now through the CLI, as a user would; the store and the issue file."""
    from tests.conftest import run

    (folder / "config.yaml").write_text(yaml_config(values), encoding="utf-8")
    store = SQLiteStore(values.delivery.database)
    store.upsert_subscribers(
        ((f"r{i:05d}@example.org", None, {}) for i in range(count)), resubscribe=False
    )
    issue = sample_issue(folder)
    result = run("schedule", str(issue), "--at", "now")
    assert result.exit_code == 0, result.output
    return store, issue


def start_serve(
    folder: Path, env: dict[str, str], port: int = 0, open_files: tuple[int, int] | None = None
) -> tuple[Any, str]:
    """A real `digest serve` in ``folder``; the process and the base URL it printed.
    ``open_files``: the (soft, hard) limit on open files it starts with."""
    import resource
    import subprocess
    import sys

    def limits() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, open_files)

    server = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limits if open_files is not None else None,
    )
    assert server.stdout is not None
    base = server.stdout.readline().strip()
    if not base.startswith("http://127.0.0.1:"):
        server.kill()
        raise AssertionError(
            server.stderr.read() if server.stderr else "digest serve did not start"
        )
    return server, base


def deliver_to_outbox(
    values: Settings, folder: Path, people: list[tuple[str, str | None, dict[str, Any]]]
) -> dict[str, Any]:
    """``people`` added to a real SQLite store, the sample issue scheduled now and
    delivered to the outbox: each message as parsed, by its To address."""
    import email
    from email import policy

    from digest.delivery import QuietProgress, deliver_due
    from digest.providers import make_http_client
    from digest.schedule import schedule

    store = SQLiteStore(values.delivery.database)
    store.upsert_subscribers(people, resubscribe=False)
    schedule(store, sample_issue(folder), values, "now", "UTC", dt.datetime.now(dt.UTC))
    with make_http_client(values) as client:
        deliver_due(store, values, client=client, progress=QuietProgress())
    store.close()
    found = {}
    for path in Path(values.provider.outbox_dir).glob("**/*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        found[str(message["To"]).rsplit("<", 1)[-1].rstrip(">")] = message
    return found
