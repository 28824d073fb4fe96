"""Placeholders never reach real readers: a From, postal address or mailto at an example
domain, or a public address that is http:// or on an odd port, is an error when mail goes
to subscribers through a provider that reaches people, and a warning that says exactly
what to change everywhere else (the outbox, a provider's test mode or a test server on
this machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import Settings
from digest.readiness import reaches_people, send_readiness
from digest.store.sqlite import SQLiteStore
from tests.conftest import run
from tests.helpers import SIGNING_KEY
from tests.test_render import compose_to

READY = """\
newsletter:
  from: "Harbor Post <digest@harborpost.news>"
  postal_address: "Harbor Post, 12 Quay Road, Portmouth PM1 2AB, United Kingdom"
unsubscribe:
  mailto: unsubscribe@harborpost.news
web:
  base_url: https://harborpost.news/digest
"""
PLACEHOLDER_KEYS = ("newsletter.from", "newsletter.postal_address", "unsubscribe.mailto")


@pytest.fixture(autouse=True)
def signing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SIGNING_KEY", SIGNING_KEY)


def real_provider(extra: str = "") -> str:
    return f"provider:\n  name: postmark\n{extra}"


def test_check_on_the_default_config_says_what_to_change_before_a_real_send(in_tmp: Path) -> None:
    issue = compose_to(in_tmp)
    result = run("check", str(issue))
    assert result.exit_code == 0, result.output  # the outbox: warnings only
    for key in (*PLACEHOLDER_KEYS, "web.base_url"):
        [line] = [line for line in result.output.splitlines() if key in line]
        assert line.startswith("warning: "), line
    assert "https://" in result.output


def test_schedule_refuses_placeholders_when_the_provider_reaches_real_people(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object]
) -> None:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", "server-token-for-tests")
    issue = compose_to(in_tmp)
    (in_tmp / "config.yaml").write_text(real_provider(), encoding="utf-8")
    result = run("schedule", str(issue), "--at", "now")
    assert result.exit_code != 0
    for key in (*PLACEHOLDER_KEYS, "web.base_url"):
        assert f"error: {key}" in result.output, key
    assert "Traceback" not in result.output
    store = SQLiteStore(in_tmp / "digest.sqlite3")
    try:
        assert store.get_schedule(issue.stem) is None  # nothing half-done
    finally:
        store.close()
    assert no_network == []


def test_deliver_refuses_an_issue_scheduled_before_the_provider_changed(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object]
) -> None:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", "server-token-for-tests")
    issue = compose_to(in_tmp)
    (in_tmp / "subs.csv").write_text("email\nann@harborpost.news\n", encoding="utf-8")
    assert run("subscribers", "import", "subs.csv").exit_code == 0
    assert run("schedule", str(issue), "--at", "now").exit_code == 0  # the outbox: fine
    (in_tmp / "config.yaml").write_text(real_provider(), encoding="utf-8")
    result = run("deliver")
    assert result.exit_code != 0
    assert "error: newsletter.from" in result.output
    assert no_network == []
    assert not (in_tmp / "outbox").exists()


def test_an_issue_with_real_settings_is_scheduled_for_a_real_provider(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object]
) -> None:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", "server-token-for-tests")
    issue = compose_to(in_tmp)
    (in_tmp / "config.yaml").write_text(READY + real_provider(), encoding="utf-8")
    result = run("schedule", str(issue), "--at", "now")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


@pytest.mark.parametrize(
    ("web", "reason"),
    [
        ("http://harborpost.news/digest", "https://"),
        ("https://harborpost.news:8443/digest", "port 8443"),
        ("http://127.0.0.1:8026", "this machine"),
    ],
)
def test_a_public_address_readers_cannot_use_for_one_click_unsubscribe_is_an_error(
    web: str, reason: str
) -> None:
    values = Settings.model_validate(
        {
            "newsletter": {
                "from": "Harbor Post <digest@harborpost.news>",
                "postal_address": "Harbor Post, 12 Quay Road, Portmouth",
            },
            "unsubscribe": {"mailto": "unsubscribe@harborpost.news"},
            "web": {"base_url": web} if not web.startswith("http://h") else {},
            "provider": {"name": "postmark"},
        }
    )
    if web.startswith("http://h"):  # config refuses http:// off this machine already
        with pytest.raises(ValueError, match="https://"):
            Settings.model_validate({"web": {"base_url": web}})
        return
    [finding] = send_readiness(values)
    assert finding.level == "error" and "web.base_url" in finding.message
    assert reason in finding.message


@pytest.mark.parametrize(
    "provider",
    [
        {"name": "outbox"},
        {"name": "postmark", "test_mode": True},
        {"name": "postmark", "base_url": "http://127.0.0.1:40123"},
        {"name": "smtp", "smtp": {"host": "127.0.0.1", "port": 40124, "security": "none"}},
    ],
)
def test_the_outbox_test_modes_and_test_servers_on_this_machine_reach_nobody(
    provider: dict[str, object],
) -> None:
    values = Settings.model_validate({"provider": provider})
    assert not reaches_people(values)
    assert {f.level for f in send_readiness(values)} == {"warning"}


@pytest.mark.parametrize(
    "provider",
    [
        {"name": "postmark"},
        {"name": "mailgun", "base_url": "https://api.eu.mailgun.net", "domain": "mg.example"},
        {"name": "smtp", "smtp": {"host": "localhost", "port": 25}},  # a relay on this machine
        {"name": "smtp", "smtp": {"host": "smtp.harborpost.news"}},
    ],
)
def test_a_public_api_or_a_mail_relay_reaches_people(provider: dict[str, object]) -> None:
    values = Settings.model_validate({"provider": provider})
    assert reaches_people(values)
    assert {f.level for f in send_readiness(values)} == {"error"}
