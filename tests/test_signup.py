"""Signup with double opt-in, through the public app in process (Starlette's TestClient)
over a real SQLite store; confirmation mail through the outbox provider."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from digest.config import Delivery, Settings, Unsubscribe, Web
from digest.config import Provider as ProviderSettings
from digest.store.sqlite import SQLiteStore
from digest.tokens import make_confirm_token, make_token
from digest.web import create_app

KEY = b"signup-test-key-0123456789"
BASE = "https://news.example.org/digest"


def make_settings(folder: Path, **web: object) -> Settings:
    return Settings(
        web=Web(base_url=BASE, **web),  # type: ignore[arg-type]
        unsubscribe=Unsubscribe(signing_key_env="UNUSED_IN_PROCESS"),
        delivery=Delivery(database=str(folder / "digest.sqlite3")),
        provider=ProviderSettings(name="outbox", outbox_dir=str(folder / "outbox")),
    )


class Site:
    def __init__(self, folder: Path, client: TestClient, store: SQLiteStore) -> None:
        self.folder, self.client, self.store = folder, client, store

    def signup(self, address: str, name: str = "", **extra: str) -> tuple[int, str]:
        response = self.client.post("/subscribe", data={"email": address, "name": name, **extra})
        return response.status_code, response.text

    def mails(self) -> list[EmailMessage]:
        found = []
        for path in sorted((self.folder / "outbox").rglob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            found.append(message)
        return found

    def settle(self, mails: int | None = None, timeout: float = 5.0) -> list[EmailMessage]:
        """Wait until the app's background work has applied the inbox (and, with
        ``mails``, until that many confirmation mails are out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.store.inbox_waiting() == 0 and (mails is None or len(self.mails()) >= mails):
                time.sleep(0.3)  # one more round of the background task
                return self.mails()
            time.sleep(0.05)
        raise AssertionError(f"not settled: {len(self.mails())} mail(s)")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    store = SQLiteStore(tmp_path / "digest.sqlite3")
    app = create_app(make_settings(tmp_path), (KEY,))
    with TestClient(app, base_url="https://news.example.org") as client:
        yield Site(tmp_path, client, store)
    store.close()


def confirm_link(message: EmailMessage) -> str:
    text = message.get_body(("plain",))
    assert text is not None
    match = re.search(r"https://\S+/confirm/\S+", text.get_content())
    assert match, text.get_content()
    return match.group(0)


def test_signup_keeps_the_address_pending_and_mails_a_confirmation_with_text_and_html(
    site: Site,
) -> None:
    status, page = site.signup("New.Reader@Example.org", "Nora Reader")
    assert status == 200 and "Check your inbox" in page
    [mail] = site.settle(mails=1)
    # the address as the list stores it; no submitted name (anyone may type one)
    assert mail["To"] == "new.reader@example.org"
    assert mail["Subject"] == "Confirm your subscription to The Conversation Digest"
    assert mail["List-Unsubscribe"] is None  # a message to one person, not list mail
    html_part, text_part = mail.get_body(("html",)), mail.get_body(("plain",))
    assert html_part is not None and text_part is not None
    link = confirm_link(mail)
    assert link.startswith(f"{BASE}/confirm/")
    assert link in html_part.get_content()
    assert [s.email for s in site.store.signups()] == ["new.reader@example.org"]
    assert site.store.count_subscribers() == {"pending": 1}
    assert list(site.store.iter_subscribers("active")) == []


def test_the_confirmation_mail_carries_no_text_the_submitter_typed(site: Site) -> None:
    spam = "CHEAP PILLS at https://evil.example"
    status, _ = site.signup("victim@example.org", spam)
    assert status == 200
    [mail] = site.settle(mails=1)
    raw = mail.as_string()
    assert "CHEAP" not in raw and "evil.example" not in raw
    assert mail["To"] == "victim@example.org"
    link = confirm_link(mail)
    assert site.client.post(link.removeprefix(BASE)).status_code == 200
    site.settle()
    confirmed = site.store.get_subscriber("victim@example.org")
    assert confirmed is not None and confirmed.status == "active"
    assert confirmed.name == spam  # kept, and used only once the owner has confirmed


def test_confirm_page_changes_nothing_on_get_or_head_and_post_makes_the_reader_active(
    site: Site,
) -> None:
    site.signup("ann@example.org", "Ann")
    path = confirm_link(site.settle(mails=1)[0]).removeprefix("https://news.example.org")
    page = site.client.get(path)
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert site.client.head(path).status_code == 200
    site.settle()
    assert site.store.get_subscriber("ann@example.org") is None  # scanners confirm nobody
    assert site.client.post(path).status_code == 200
    site.settle()
    subscriber = site.store.get_subscriber("ann@example.org")
    assert subscriber is not None and (subscriber.status, subscriber.name) == ("active", "Ann")
    assert site.store.signups() == []
    assert site.client.post(path).status_code == 200  # twice is harmless
    site.settle()
    assert site.store.count_subscribers() == {"active": 1}


def test_the_answer_is_the_same_whatever_the_address_and_only_the_right_people_get_mail(
    site: Site,
) -> None:
    store = site.store
    store.upsert_subscribers(
        [(f"{s}@example.org", None, {}) for s in ("active", "gone", "bounced", "complained")],
        resubscribe=False,
    )
    store.set_status("gone@example.org", "unsubscribed")
    store.set_status("bounced@example.org", "bounced")
    store.set_status("complained@example.org", "complained")
    site.signup("pending@example.org")
    site.settle(mails=1)
    answers = {
        who: site.signup(f"{who}@example.org")
        for who in ("new", "pending", "active", "gone", "bounced", "complained")
    }
    assert len(set(answers.values())) == 1, answers  # no enumeration
    mails = site.settle(mails=4)
    time.sleep(1.2)  # a round more: nothing else goes out
    mailed = sorted(m["To"] for m in site.mails())
    # pending: already mailed this hour; active: subscribed; complained: never mailed
    assert mailed == sorted(
        ["pending@example.org", "new@example.org", "gone@example.org", "bounced@example.org"]
    ), mails
    statuses = {s.email: s.status for s in store.iter_subscribers()}
    assert statuses["gone@example.org"] == "unsubscribed"  # not re-activated silently
    assert statuses["bounced@example.org"] == "bounced"


def test_confirming_resubscribes_the_unsubscribed_but_never_one_who_complained(
    site: Site,
) -> None:
    store = site.store
    store.upsert_subscribers([("gone@example.org", None, {})], resubscribe=False)
    store.set_status("gone@example.org", "unsubscribed")
    site.signup("gone@example.org")
    link = confirm_link(site.settle(mails=1)[0]).removeprefix("https://news.example.org")
    store.set_status("gone@example.org", "complained")  # complained after asking
    site.client.post(link)
    site.settle()
    assert store.get_subscriber("gone@example.org").status == "complained"  # type: ignore[union-attr]
    store.set_status("gone@example.org", "unsubscribed")
    site.signup("gone@example.org")  # within the hour: no second mail, but the link works
    site.settle()
    site.client.post(link)
    site.settle()
    assert store.get_subscriber("gone@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_a_forgotten_address_that_signs_up_and_confirms_is_on_the_list_again(site: Site) -> None:
    store = site.store
    store.upsert_subscribers([("old@example.org", None, {})], resubscribe=False)
    store.forget("old@example.org")
    site.signup("old@example.org")
    site.client.post(confirm_link(site.settle(mails=1)[0]))
    site.settle()
    assert store.get_subscriber("old@example.org").status == "active"  # type: ignore[union-attr]
    assert not store.is_suppressed("old@example.org")


def test_at_most_one_confirmation_per_address_per_hour(site: Site) -> None:
    for _ in range(3):
        site.signup("eager@example.org")
    site.settle(mails=1)
    time.sleep(1.2)
    assert len(site.mails()) == 1


def test_expired_forged_and_unsubscribe_tokens_do_not_confirm(site: Site) -> None:
    site.signup("late@example.org")
    site.settle(mails=1)
    [signup] = site.store.signups()
    identity = site.store.list_identity()
    expired = make_confirm_token(KEY, identity, signup.uid, time.time() - 1)
    assert site.client.get(f"/confirm/{expired}").status_code == 410
    assert site.client.post(f"/confirm/{expired}").status_code == 410
    good = make_confirm_token(KEY, identity, signup.uid, time.time() + 3600)
    forged = [
        good[:-1] + ("A" if good[-1] != "A" else "B"),
        make_confirm_token(b"another-key-0123456789", identity, signup.uid, time.time() + 3600),
        make_token(KEY, identity, signup.uid),  # an unsubscribe token is not a confirm token
        good.replace(good.split(".")[1], "zzzzzz"),  # a later expiry, not signed
        "../../etc/passwd",
    ]
    for token in forged:
        assert site.client.post(f"/confirm/{token}").status_code in (400, 404), token
    site.settle()
    assert site.store.get_subscriber("late@example.org") is None


def test_honeypot_bad_address_oversized_body_and_wrong_type_record_nothing(site: Site) -> None:
    status, page = site.signup("bot@example.org", website="http://spam.example")
    assert status == 200 and "Check your inbox" in page  # the same answer as anyone's
    assert site.signup("not-an-address")[0] == 400
    big = site.client.post("/subscribe", data={"email": "a@example.org", "name": "x" * 20_000})
    assert big.status_code == 413
    wrong = site.client.post("/subscribe", json={"email": "json@example.org"})
    assert wrong.status_code == 415
    site.settle()
    time.sleep(1.2)
    assert site.store.signups() == [] and site.mails() == []


def test_signups_from_one_client_address_are_limited_per_hour(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "digest.sqlite3")
    app = create_app(make_settings(tmp_path, signups_per_ip_per_hour=2), (KEY,))
    with TestClient(app) as client:
        codes = [
            client.post("/subscribe", data={"email": f"r{i}@example.org"}).status_code
            for i in range(4)
        ]
    assert codes == [200, 200, 429, 429]
    store.apply_inbox()
    assert len(store.signups()) == 2


def test_the_form_page_and_home_page_set_no_cookies_and_load_nothing_from_outside(
    site: Site,
) -> None:
    for path in ("/subscribe", "/"):
        response = site.client.get(path)
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "<script" not in response.text
        assert f'action="{BASE}/subscribe"' in response.text
        assert 'name="website"' in response.text  # the honeypot


def test_pending_signups_are_purged_after_the_expiry(site: Site) -> None:
    import datetime as dt

    site.signup("slow@example.org")
    site.settle(mails=1)
    assert site.store.purge_signups(dt.datetime.now(dt.UTC) - dt.timedelta(days=7)) == 0
    assert site.store.purge_signups(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 1
    assert site.store.signups() == []


def test_cli_lists_counts_and_purges_pending_signups_and_prints_the_form(in_tmp: Path) -> None:
    from tests.conftest import run

    (in_tmp / "config.yaml").write_text(f"web:\n  base_url: {BASE}\n  confirm_days: 0.0001\n")
    store = SQLiteStore(in_tmp / "digest.sqlite3")
    store.upsert_subscribers([("on@example.org", None, {})], resubscribe=False)
    store.request_signup("wait@example.org", "Wai Ting")
    store.apply_inbox()
    store.close()
    listed = run("subscribers", "list", "--status", "pending")
    assert listed.exit_code == 0
    assert listed.output.startswith("wait@example.org\tpending\tWai Ting\t")
    assert "on@example.org" not in listed.output
    assert "wait@example.org" not in run("subscribers", "list").output  # the list proper
    counted = run("subscribers", "count").output
    assert "active\t1" in counted and "pending\t1" in counted and "total\t1" in counted
    time.sleep(0.1)  # older than 0.0001 days (8.6 s)? not yet
    assert "purged 0" in run("subscribers", "purge-pending").output
    form = run("subscribers", "form")
    assert form.exit_code == 0
    assert f'action="{BASE}/subscribe"' in form.output and "<script" not in form.output
    assert "form-action" in form.output  # what the site's CSP needs, said


def test_a_broken_confirmation_template_never_stops_unsubscribes_being_applied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from digest.render.templates import bundled_templates

    folder = tmp_path / "templates"
    folder.mkdir()
    for name in ("email.mjml.j2", "email.txt.j2", "confirm.txt.j2"):
        (folder / name).write_text((bundled_templates() / name).read_text())
    (folder / "confirm.mjml.j2").write_text("<mjml>{{ no_such_value }}</mjml>")
    values = make_settings(tmp_path).model_copy(
        update={"render": Settings().render.model_copy(update={"templates": str(folder)})}
    )
    store = SQLiteStore(tmp_path / "digest.sqlite3")
    store.upsert_subscribers([("stay@example.org", None, {})], resubscribe=False)
    uid = store.get_subscriber("stay@example.org").uid  # type: ignore[union-attr]
    with TestClient(create_app(values, (KEY,))) as client:
        client.post("/subscribe", data={"email": "new@example.org"})
        time.sleep(1.5)  # the confirmation fails to render, round after round
        token = make_token(KEY, store.list_identity(), uid)
        assert client.post(f"/unsubscribe/{token}").status_code == 200
        deadline = time.monotonic() + 5
        while store.get_subscriber("stay@example.org").status != "unsubscribed":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the background task died"
            time.sleep(0.05)
    assert "no_such_value" in caplog.text
    store.close()


def test_rate_limits_count_an_ipv6_client_by_its_64_block() -> None:
    from starlette.requests import Request

    from digest.web.signup import client_key

    def key(host: str) -> str:
        return client_key(Request({"type": "http", "client": (host, 1234), "headers": []}))

    assert key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("203.0.113.7") == "203.0.113.7"
