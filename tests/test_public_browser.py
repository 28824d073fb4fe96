"""End to end, as a reader and a newsletter team use it: a real `digest serve` on the
defaults (its base URL on this machine), a real headless Chromium filling the signup form,
the confirmation found in the outbox (and over real SMTP, aiosmtpd), confirmed in the
browser; then the sample issue scheduled and delivered, its "View in browser" link, the
archive and the feed opened. Also: proxies' forwarded headers, the app factory, workers."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import feedparser
import httpx
from aiosmtpd.controller import Controller

from digest.store.sqlite import SQLiteStore
from tests.conftest import ROOT, free_port
from tests.helpers import SIGNING_KEY, sample_issue
from tests.test_send_cli import Inbox

T = TypeVar("T")
ARTIFACTS = ROOT / "test-artifacts"
SLUG = "2026-03-04-can-harbor-cities-hold-the-line-against-the-sea"
SIGNING = "DIGEST_SIGNING_KEY"  # the default variable: no config edits


def wait_for(find: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def environment() -> dict[str, str]:
    return {**os.environ, SIGNING: SIGNING_KEY, "PYTHONUNBUFFERED": "1"}


def digest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=folder,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


class Served:
    def __init__(
        self,
        folder: Path,
        args: list[str],
        env: dict[str, str] | None = None,
        command: str = "serve",  # or "desk": the editors' desk, which answers /healthz too
    ) -> None:
        self.log = ""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "digest", command, *args],
            cwd=folder,
            env=env or environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith(("http://127.0.0.1:", "http://localhost:")):
            self.stop()
            raise AssertionError(f"digest {command} did not start: {self.log}")
        self.url = self.url.rstrip("/")
        wait_for(lambda: self.healthy(), "digest serve to answer")

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> str:
        self.process.terminate()
        try:
            out, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        self.log = (out or "") + (err or "")  # uvicorn's access log goes to stdout
        return self.log


def read_mail(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def link_in(message: EmailMessage, pattern: str) -> str:
    text = message.get_body(("plain",))
    assert text is not None
    found = re.search(pattern, text.get_content())
    assert found, text.get_content()
    return found.group(1)


def sign_up_in_browser(page: Any, url: str, address: str, name: str) -> None:
    page.goto(url + "/")
    page.fill("#digest-email", address)
    page.fill("#digest-name", name)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your inbox")


def confirm_in_browser(page: Any, link: str) -> None:
    page.goto(link)
    page.wait_for_selector("text=Confirm my subscription")
    page.click("button[type=submit]")
    page.wait_for_selector("text=You are subscribed")


def status_of(folder: Path, address: str) -> str | None:
    store = SQLiteStore(folder / "digest.sqlite3")
    try:
        found = store.get_subscriber(address)
        return found.status if found else None
    finally:
        store.close()


def test_a_reader_signs_up_confirms_and_reads_the_sent_issue_on_the_web(
    tmp_path: Path, browser: Any
) -> None:
    port = free_port()
    # the defaults, except the port: web.base_url on this machine, the outbox provider
    (tmp_path / "config.yaml").write_text(f"web:\n  base_url: http://127.0.0.1:{port}\n")
    served = Served(tmp_path, [])  # the port comes from web.base_url
    assert served.url == f"http://127.0.0.1:{port}"
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_up_in_browser(page, served.url, "Reader.One@example.org", "Rea Der")
        confirmation = wait_for(
            lambda: sorted((tmp_path / "outbox").rglob("*.eml")), "the confirmation mail"
        )
        link = link_in(read_mail(confirmation[0]), r"(http://127\.0\.0\.1:\d+/confirm/\S+)")
        assert status_of(tmp_path, "reader.one@example.org") is None  # pending: not on the list
        confirm_in_browser(page, link)
        wait_for(lambda: status_of(tmp_path, "reader.one@example.org") == "active", "active")

        issue = sample_issue(tmp_path)
        digest(tmp_path, "schedule", str(issue), "--at", "now")
        digest(tmp_path, "deliver")
        [delivered] = sorted((tmp_path / "outbox" / SLUG).rglob("*.eml"))
        message = read_mail(delivered)
        assert message["To"] == "Rea Der <reader.one@example.org>"
        view = link_in(message, r"View in browser: (\S+)")
        assert view == f"{served.url}/issues/{SLUG}"
        token = link_in(message, r"/unsubscribe/(\S+)")

        page.goto(view)
        assert page.title() == "Can Harbor Cities Hold the Line Against the Sea?"
        content = page.content()
        for personal in ("reader.one", "Rea Der", token, "Unsubscribe"):
            assert personal not in content, personal
        page.screenshot(path=str(ARTIFACTS / "archive-issue.png"), full_page=True)

        page.goto(f"{served.url}/issues/")
        page.click(f"a[href='{view}']")
        assert page.url == view
        page.goto(f"{served.url}/")
        assert page.locator("ol.dg-issues li").count() == 1
        page.screenshot(path=str(ARTIFACTS / "archive-home.png"), full_page=True)
        feed = feedparser.parse(httpx.get(f"{served.url}/feed.xml").content)
        assert not feed.bozo and [e.link for e in feed.entries] == [view]
    finally:
        context.close()
        log = served.stop()
    assert '"GET /confirm/[token] HTTP/1.1" 200' in log  # access log on, tokens out of it
    assert '"POST /confirm/[token] HTTP/1.1" 200' in log
    assert link.rsplit("/", 1)[1] not in log


def test_the_confirmation_goes_over_real_smtp_when_that_is_the_provider(
    tmp_path: Path, browser: Any
) -> None:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    (tmp_path / "config.yaml").write_text(
        f"web:\n  base_url: http://localhost:{port}\n"
        f"provider:\n  name: smtp\n  smtp:\n    host: 127.0.0.1\n    port: {smtp.port}\n"
        "    security: none\n"
    )
    served = Served(tmp_path, [])
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_up_in_browser(page, f"http://localhost:{port}", "smtp.reader@example.org", "")
        wait_for(lambda: inbox.messages, "the confirmation over SMTP")
        [(recipients, message)] = inbox.messages
        assert recipients == ["smtp.reader@example.org"]
        assert message["List-Unsubscribe"] is None
        confirm_in_browser(page, link_in(message, r"(http://localhost:\d+/confirm/\S+)"))
        wait_for(lambda: status_of(tmp_path, "smtp.reader@example.org") == "active", "active")
    finally:
        context.close()
        served.stop()
        smtp.stop()


def signups_from(url: str, forwarded_for: list[str]) -> list[int]:
    return [
        httpx.post(
            f"{url}/subscribe",
            data={"email": f"p{i}@example.org"},
            headers={"X-Forwarded-For": ip},
        ).status_code
        for i, ip in enumerate(forwarded_for)
    ]


def test_the_client_address_comes_from_forwarded_headers_only_of_trusted_proxies(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.yaml").write_text("web:\n  signups_per_ip_per_hour: 1\n")
    ips = ["203.0.113.1", "203.0.113.1", "203.0.113.2"]
    trusted = Served(tmp_path, ["--port", "0", "--proxy-headers", "--trusted-proxies", "127.0.0.1"])
    try:
        assert signups_from(trusted.url, ips) == [200, 429, 200]
    finally:
        trusted.stop()
    untrusted = Served(tmp_path, ["--port", "0"])  # no --proxy-headers: the header is a lie
    try:
        assert signups_from(untrusted.url, ips) == [200, 429, 429]
    finally:
        untrusted.stop()
    other = Served(tmp_path, ["--port", "0", "--proxy-headers", "--trusted-proxies", "10.0.0.1"])
    try:  # the peer (127.0.0.1) is not a trusted proxy
        assert signups_from(other.url, ips) == [200, 429, 429]
    finally:
        other.stop()


def test_the_app_factory_runs_under_uvicorn_and_serve_runs_several_workers(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.yaml").write_text("newsletter:\n  name: Factory Weekly\n")
    port = free_port()
    env = {**environment(), "DIGEST_CONFIG": str(tmp_path / "config.yaml")}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "digest.web:app", "--factory", "--port", str(port)],
        cwd=tmp_path.parent,  # not the config's folder: $DIGEST_CONFIG names it
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url + "/healthz"), "uvicorn with the factory")
        assert "Factory Weekly" in httpx.get(url + "/").text
    finally:
        server.terminate()
        server.wait(timeout=15)
    workers = Served(tmp_path, ["--port", "0", "--workers", "2"])
    try:
        pages = [httpx.get(workers.url + "/").text for _ in range(4)]
        assert all("Factory Weekly" in text for text in pages)
    finally:
        log = workers.stop()
    assert log.count("Started server process") == 2, log


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_behind_a_proxy_on_a_sub_path_the_app_answers_whether_or_not_it_strips_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.yaml").write_text("web:\n  base_url: https://example.org/digest\n")
    served = Served(tmp_path, ["--port", "0", "--root-path", "/digest"])
    try:
        for path in ("/healthz", "/digest/healthz", "/subscribe", "/digest/issues/"):
            assert httpx.get(served.url + path).status_code == 200, path
        home = httpx.get(served.url + "/digest/")
        assert 'action="https://example.org/digest/subscribe"' in home.text
        assert httpx.get(served.url + "/elsewhere/healthz").status_code == 404
    finally:
        served.stop()
