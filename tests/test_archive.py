"""The public archive: web versions, "View in browser", the index, the Atom feed, the
static build, and the app's paths under a base URL."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import feedparser
import pytest
from starlette.testclient import TestClient

from digest.config import Settings, Web
from digest.delivery import QuietProgress, deliver_due
from digest.providers import make_http_client
from digest.schedule import schedule
from digest.store.sqlite import SQLiteStore
from digest.web import create_app
from digest.web.server import RedactTokens
from tests.conftest import run
from tests.helpers import NOW, SIGNING_ENV, SIGNING_KEY, sample_issue, yaml_config
from tests.helpers import settings as helper_settings

BASE = "https://news.example.org/digest"
SLUG = "2026-03-04-can-harbor-cities-hold-the-line-against-the-sea"


@pytest.fixture(autouse=True)
def signing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)


def make_settings(folder: Path, **web: object) -> Settings:
    values = helper_settings(folder)
    unsubscribe = values.unsubscribe.model_copy(update={"url": None})
    return values.model_copy(
        update={"web": Web(base_url=BASE, **web), "unsubscribe": unsubscribe}  # type: ignore[arg-type]
    )


class Setup:
    def __init__(self, folder: Path, values: Settings) -> None:
        self.folder, self.settings = folder, values
        self.store = SQLiteStore(values.delivery.database)
        self.store.upsert_subscribers(
            [("ann.reader@example.org", "Annabel Quince", {})], resubscribe=False
        )
        self.issue = sample_issue(folder)

    def schedule(self, at: str = "now") -> None:
        schedule(self.store, self.issue, self.settings, at, "UTC", NOW)

    def run_delivery(self, now: dt.datetime = NOW) -> None:
        with make_http_client(self.settings) as client:
            deliver_due(
                self.store,
                self.settings,
                client=client,
                progress=QuietProgress(),
                clock=lambda: now,
            )

    def deliver(self) -> EmailMessage:
        self.run_delivery()
        [path] = (self.folder / "outbox").rglob("*.eml")
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message

    def client(self) -> TestClient:
        keys = (SIGNING_KEY.encode(),)
        return TestClient(create_app(self.settings, keys), base_url="https://news.example.org")


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    built = Setup(tmp_path, make_settings(tmp_path))
    yield built
    built.store.close()


def view_link(message: EmailMessage) -> str:
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    found = re.search(r'href="([^"]+)"[^>]*>View in browser<', html_part.get_content())
    assert found, "no View in browser link in the HTML"
    assert f"View in browser: {found.group(1)}" in text_part.get_content()
    return found.group(1)


def test_a_delivered_message_links_to_its_web_version_which_has_nothing_personal(
    setup: Setup,
) -> None:
    setup.schedule()
    message = setup.deliver()
    link = view_link(message)
    assert link == f"{BASE}/issues/{SLUG}"
    token = re.search(r"/unsubscribe/([^\s\"<>]+)", message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert token
    with setup.client() as client:
        page = client.get(link.removeprefix("https://news.example.org"))
    assert page.status_code == 200
    text = page.text
    for personal in (token.group(1), "Annabel", "ann.reader", "__DIGEST_", "Unsubscribe"):
        assert personal not in text, personal
    assert f'<link rel="canonical" href="{link}">' in text
    assert (
        '<meta property="og:title" content="Can Harbor Cities Hold the Line Against the Sea?">'
        in text
    )
    assert '<html lang="en"' in text
    assert f'href="{BASE}/subscribe"' in text
    assert "View in browser" not in text
    assert "Read more from" in text  # the issue itself


def test_an_issue_is_published_when_its_delivery_begins_not_when_only_scheduled(
    setup: Setup,
) -> None:
    setup.schedule("2026-12-24 07:00")
    with setup.client() as client:
        assert client.get(f"/digest/issues/{SLUG}").status_code == 404
        assert SLUG not in client.get("/digest/issues/").text
    setup.schedule("now")
    setup.deliver()
    with setup.client() as client:  # a new app: pages are kept a few seconds
        assert client.get(f"/digest/issues/{SLUG}").status_code == 200
        assert f"{BASE}/issues/{SLUG}" in client.get("/digest/issues/").text


def test_with_publish_scheduled_an_issue_appears_as_soon_as_it_is_scheduled(
    tmp_path: Path,
) -> None:
    built = Setup(tmp_path, make_settings(tmp_path, publish="scheduled"))
    built.schedule("2026-12-24 07:00")
    with built.client() as client:
        assert client.get(f"/digest/issues/{SLUG}").status_code == 200
    run_unschedule = built.store.cancel_schedule(SLUG)
    assert run_unschedule
    with built.client() as client:  # cancelled before it began: gone again
        assert client.get(f"/digest/issues/{SLUG}").status_code == 404
    built.store.close()


def test_the_feed_is_valid_atom_linking_each_entry_to_its_web_version(setup: Setup) -> None:
    setup.schedule()
    setup.deliver()
    with setup.client() as client:
        response = client.get("/digest/feed.xml")
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    assert feed.feed.title == "The Conversation Digest"
    [entry] = feed.entries
    assert entry.title == "Can Harbor Cities Hold the Line Against the Sea?"
    assert entry.link == f"{BASE}/issues/{SLUG}"
    assert entry.id == entry.link and entry.updated_parsed is not None


def test_an_empty_archive_still_has_a_valid_feed_and_pages(setup: Setup) -> None:
    with setup.client() as client:
        feed = feedparser.parse(client.get("/digest/feed.xml").content)
        assert not feed.bozo and feed.entries == []
        assert "No issues yet" in client.get("/digest/issues/").text
        assert "No issues yet" in client.get("/digest/").text


def test_archive_build_writes_the_same_bytes_the_app_serves(setup: Setup, in_tmp: Path) -> None:
    setup.schedule()
    setup.deliver()
    (in_tmp / "config.yaml").write_text(yaml_config(setup.settings), encoding="utf-8")
    result = run("archive", "build", "--out", "site")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote 1 issue(s), 4 file(s) to site")
    written = {
        str(p.relative_to(in_tmp / "site")): p.read_bytes()
        for p in (in_tmp / "site").rglob("*")
        if p.is_file()
    }
    assert sorted(written) == sorted(
        ["index.html", "issues/index.html", f"issues/{SLUG}/index.html", "feed.xml"]
    )
    paths = {
        "index.html": "/digest/",
        "issues/index.html": "/digest/issues/",
        f"issues/{SLUG}/index.html": f"/digest/issues/{SLUG}",
        "feed.xml": "/digest/feed.xml",
    }
    with setup.client() as client:
        for file, path in paths.items():
            assert client.get(path).content == written[file], file


def test_paths_answer_with_or_without_the_base_urls_path_and_under_a_root_path(
    setup: Setup,
) -> None:
    with setup.client() as client:
        for path in ("/digest/healthz", "/healthz", "/digest/subscribe", "/subscribe"):
            assert client.get(path).status_code == 200, path
        assert client.get("/digestx/healthz").status_code == 404
    app = create_app(setup.settings, (SIGNING_KEY.encode(),))
    with TestClient(app, root_path="/digest") as client:  # a proxy that strips /digest
        assert client.get("/healthz").status_code == 200
        assert client.get("/subscribe").status_code == 200


def test_check_warns_that_a_local_base_url_needs_https_for_real_readers(in_tmp: Path) -> None:
    issue = sample_issue(in_tmp)
    local = run("check", str(issue))
    assert local.exit_code == 0
    assert "warning: web.base_url (http://127.0.0.1:8026) is on this machine" in local.output
    (in_tmp / "config.yaml").write_text(f"web:\n  base_url: {BASE}\n")
    public = run("check", str(issue))
    assert public.exit_code == 0 and "web.base_url" not in public.output


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("http://news.example.org", "must be an https:// URL"),
        ("ftp://news.example.org", "must be an https:// URL"),
        ("https://news.example.org/?a=1", "must not have a ?query"),
        ("news.example.org", "must be an https:// URL"),
    ],
)
def test_a_base_url_that_cannot_serve_readers_is_a_config_error(
    in_tmp: Path, value: str, reason: str
) -> None:
    (in_tmp / "config.yaml").write_text(f"web:\n  base_url: '{value}'\n")
    result = run("check", str(sample_issue(in_tmp)))
    assert result.exit_code == 1
    assert "config.yaml:2: web.base_url:" in result.output and reason in result.output


def test_access_logs_never_show_unsubscribe_or_confirmation_tokens() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/digest/unsubscribe/abcDEF123456.sig-nature_xyz?x=1", "1.1", 200),
        None,
    )  # fmt: skip
    RedactTokens().filter(record)
    line = record.getMessage()
    assert "abcDEF123456" not in line and "/digest/unsubscribe/[token]?x=1" in line
    record.args = ("127.0.0.1:5000", "GET", "/confirm/uid12345.k3x9.signature", "1.1", 200)
    RedactTokens().filter(record)
    assert record.getMessage().count("[token]") == 1 and "uid12345" not in record.getMessage()


def test_pending_signups_never_receive_issues(setup: Setup) -> None:
    setup.store.request_signup("waiting@example.org", "Wai Ting")
    setup.store.apply_inbox()
    setup.schedule()
    message = setup.deliver()  # exactly one message: the active subscriber's
    assert message["To"] == "Annabel Quince <ann.reader@example.org>"


def test_deliver_forgets_signups_older_than_the_confirmation_window(setup: Setup) -> None:
    setup.store.request_signup("stale@example.org", None)
    setup.store.apply_inbox()
    setup.run_delivery(NOW + dt.timedelta(days=400))  # the signup was made today
    assert setup.store.signups() == []


def test_an_issue_named_in_another_script_has_a_percent_encoded_link_that_works(
    setup: Setup,
) -> None:
    named = setup.issue.with_name("2026-03-04-海港.yaml")
    setup.issue.rename(named)
    setup.issue = named
    setup.schedule()
    link = view_link(setup.deliver())
    assert link == f"{BASE}/issues/2026-03-04-%E6%B5%B7%E6%B8%AF"
    with setup.client() as client:
        page = client.get(link.removeprefix("https://news.example.org"))
        assert page.status_code == 200 and f'<link rel="canonical" href="{link}">' in page.text
        assert f'href="{link}"' in client.get("/digest/issues/").text
