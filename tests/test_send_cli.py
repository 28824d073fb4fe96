"""`digest send ISSUE --test` end to end: outbox, a real SMTP server, an HTTP provider."""

from __future__ import annotations

import email
import email.policy
import re
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from click.testing import CliRunner, Result

from digest.cli import main
from tests.conftest import free_port, run
from tests.fakes import FakePostmark, Fault

SECRET = "sk-live-DO-NOT-LEAK-4242"


def write_config(text: str) -> None:
    Path("config.yaml").write_text(text, encoding="utf-8")


def smtp_config(port: int, security: str = "none", smtp: str = "", top: str = "") -> None:
    """config.yaml for the smtp provider on 127.0.0.1:PORT; ``smtp`` adds lines to its
    section (indented four spaces), ``top`` whole sections before it."""
    write_config(
        f"{top}provider:\n  name: smtp\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n"
        f"    security: {security}\n{smtp}"
    )


def send_test_to_desk(issue_file: Path) -> Result:
    return run("send", str(issue_file), "--test", "--to", "desk@example.org")


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.senders: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        self.senders.append(envelope.mail_from)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def test_test_send_to_the_outbox_writes_one_message_per_staff_address(issue_file: Path) -> None:
    write_config("staff:\n  - desk@example.org\n  - Editor@Example.org\n")
    result = run("send", str(issue_file), "--test")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["accepted", "desk@example.org"],
        ["accepted", "Editor@example.org"],
    ]
    files = sorted(Path("outbox").rglob("*.eml"))
    assert len(files) == 2
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "[TEST] Can Harbor Cities Hold the Line Against the Sea?"
    assert message.get_content_type() == "multipart/alternative"


def test_a_test_send_has_no_view_in_browser_link_that_would_lead_nowhere(
    issue_file: Path,
) -> None:
    write_config("staff:\n  - desk@example.org\n")
    assert run("send", str(issue_file), "--test").exit_code == 0
    [file] = Path("outbox").rglob("*.eml")
    message = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    for part in ("html", "plain"):
        body = message.get_body((part,))
        assert body is not None and "View in browser" not in body.get_content()
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"/issues/{issue_file.stem}" not in plain  # the archive's index is fine
    rendered = run("render", str(issue_file))  # what subscribers get keeps it
    assert rendered.exit_code == 0
    assert "View in browser" in Path("build", issue_file.stem + ".txt").read_text()


def test_to_overrides_the_staff_list(issue_file: Path) -> None:
    result = run("send", str(issue_file), "--test", "--to", "one@example.org, two@example.org")
    assert result.exit_code == 0
    assert [line.split()[1] for line in result.stdout.splitlines()] == [
        "one@example.org",
        "two@example.org",
    ]


def test_test_send_through_a_real_smtp_server(
    issue_file: Path, smtp_server: tuple[Controller, Inbox]
) -> None:
    controller, inbox = smtp_server
    smtp_config(controller.port)
    result = send_test_to_desk(issue_file)
    assert result.exit_code == 0, result.output
    ((rcpts, message),) = inbox.messages
    assert rcpts == ["desk@example.org"]
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert "Read more:" in text.get_content() and "Ana Lúcia Ferreira" in html.get_content()
    assert message["Subject"].startswith("[TEST] ")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"] in result.stdout


def test_smtp_bounces_go_to_the_configured_envelope_sender_and_list_headers_arrive(
    issue_file: Path, smtp_server: tuple[Controller, Inbox]
) -> None:
    controller, inbox = smtp_server
    smtp_config(
        controller.port,
        smtp="    envelope_sender: bounces@example.org\n",
        top="newsletter:\n  list_id: harbor.lists.example.org\n",
    )
    result = send_test_to_desk(issue_file)
    assert result.exit_code == 0, result.output
    ((_, message),) = inbox.messages
    assert inbox.senders == ["bounces@example.org"]
    assert message["From"] == "The Conversation Digest <digest@example.org>"
    assert message["List-Id"] == "The Conversation Digest <harbor.lists.example.org>"
    assert message["Feedback-ID"].endswith(":issue:harbor:example-org")
    assert message["Return-Path"] is None  # the receiving server writes it from MAIL FROM


def test_smtp_without_an_envelope_sender_uses_the_from_address(
    issue_file: Path, smtp_server: tuple[Controller, Inbox]
) -> None:
    controller, inbox = smtp_server
    smtp_config(controller.port)
    assert send_test_to_desk(issue_file).exit_code == 0
    assert inbox.senders == ["digest@example.org"]


def test_smtp_with_starttls_and_login(issue_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    ca.cert_pem.write_to_path("ca.pem")
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(
        server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"pa55word", handled=False)

    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "pa55word")
        smtp_config(
            controller.port,
            "starttls",
            "    username: desk\n    password_env: DIGEST_SMTP_PASSWORD\n    ca_file: ca.pem\n",
        )
        result = send_test_to_desk(issue_file)
        assert result.exit_code == 0, result.output
        assert logins == [(b"desk", b"pa55word")] and len(inbox.messages) == 1

        monkeypatch.setenv("DIGEST_SMTP_PASSWORD", SECRET)
        refused = send_test_to_desk(issue_file)
        assert refused.exit_code == 1
        assert (
            "refused the login for desk" in refused.stderr
            and "DIGEST_SMTP_PASSWORD" in refused.stderr
        ), refused.stdout
        assert SECRET not in refused.output
    finally:
        controller.stop()


@pytest.fixture
def postmark(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePostmark]:
    fake = FakePostmark(key=SECRET)
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", SECRET)
    yield fake
    fake.close()


def postmark_config(fake: FakePostmark) -> None:
    write_config(
        f"provider:\n  name: postmark\n  base_url: {fake.url}\n  retry_delay: 0.01\n  max_attempts: 3\n"
    )


def test_test_send_through_postmark(issue_file: Path, postmark: FakePostmark) -> None:
    postmark_config(postmark)
    postmark.inactive.add("gone@example.org")
    result = run("send", str(issue_file), "--test", "--to", "desk@example.org,gone@example.org")
    assert result.exit_code == 1
    ok, refused = result.stdout.splitlines()
    assert ok.startswith("accepted  desk@example.org  ") and len(ok.split()) == 3
    assert refused.startswith(
        "rejected  gone@example.org  postmark 406: You tried to send to recipient(s) that have been marked as inactive"
    )
    assert postmark.delivered_to() == ["desk@example.org"]
    assert postmark.deliveries[0].subject.startswith("[TEST] ")


def test_a_provider_that_keeps_failing_reports_each_recipient_and_stops(
    issue_file: Path, postmark: FakePostmark
) -> None:
    postmark_config(postmark)
    postmark.faults.extend(Fault(503) for _ in range(10))
    result = run("send", str(issue_file), "--test", "--to", "a@example.org,b@example.org")
    assert result.exit_code == 1
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [
        ["failed", "a@example.org"],
        ["failed", "b@example.org"],
    ]
    assert "HTTP 503" in result.stdout
    assert len(postmark.requests) == 3


def test_secrets_never_appear_in_output_or_files(
    issue_file: Path, postmark: FakePostmark, monkeypatch: pytest.MonkeyPatch
) -> None:
    postmark_config(postmark)
    postmark.key = "the-right-key"  # so the secret in the environment is refused
    result = run("send", str(issue_file), "--test", "--to", "a@example.org")
    assert result.exit_code == 1
    assert (
        "postmark refused the credentials (HTTP 401): check the API key in environment variable POSTMARK_SERVER_TOKEN"
        in result.stderr
    )
    everything = result.output + "".join(
        p.read_text(errors="replace") for p in Path(".").rglob("*") if p.is_file()
    )
    assert SECRET not in everything


@pytest.mark.parametrize(
    "config, args, message",
    [
        ("provider:\n  name: carrier-pigeon\n", [], "provider.name: String should match pattern"),
        ("provider:\n  name: pigeon\n", [], "unknown provider 'pigeon'"),
        (
            "provider:\n  name: postmark\n  api_key_env: NO_SUCH_VARIABLE_SET\n",
            [],
            "environment variable NO_SUCH_VARIABLE_SET is not set",
        ),
        (
            "staff:\n  - not an address\n",
            [],
            "staff address 'not an address' is not a valid email address",
        ),
        (
            "",
            ["--to", "desk@example.org,@nope"],
            "--to address '@nope' is not a valid email address",
        ),
    ],
)
def test_bad_settings_fail_with_one_line_and_send_nothing(
    issue_file: Path, postmark: FakePostmark, config: str, args: list[str], message: str
) -> None:
    write_config(config)
    result = run("send", str(issue_file), "--test", *args)
    assert result.exit_code == 1
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not Path("outbox").exists() and postmark.requests == []


def test_an_issue_that_fails_the_check_is_not_sent(issue_file: Path) -> None:
    text = issue_file.read_text(encoding="utf-8").replace(
        "read_more: https://example.org/harbor/hold-the-line?",
        "read_more: javascript:alert(1)//?",
        1,
    )
    issue_file.write_text(text, encoding="utf-8")
    result = run("send", str(issue_file), "--test")
    assert result.exit_code == 1
    assert re.search(
        r"fails the pre-send check with \d+ error\(s\), first: read-more link 'javascript:",
        result.stderr,
    )
    assert "nothing sent" in result.stderr
    assert not Path("outbox").exists()


def test_send_without_test_points_to_schedule(issue_file: Path) -> None:
    result = CliRunner().invoke(main, ["send", str(issue_file)])
    assert result.exit_code == 2 and "digest schedule" in result.output
