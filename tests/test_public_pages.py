"""The public pages (home, archive, signup, confirm, unsubscribe, their notices) as a
reader sees them: Jinja2 templates a site can override one by one, in the email's look,
never a dead end; and the Atom feed with each issue in full."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from lxml import html as lxml_html
from starlette.testclient import TestClient

from digest.render.templates import bundled_templates
from digest.store.sqlite import SQLiteStore
from digest.tokens import TEST_TOKEN, make_confirm_token, make_token
from tests.helpers import SIGNING_ENV, SIGNING_KEY
from tests.test_archive import Setup, make_settings

KEY = SIGNING_KEY.encode()


@pytest.fixture(autouse=True)
def signing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    built = Setup(tmp_path, make_settings(tmp_path))
    yield built
    built.store.close()


def every_page(setup: Setup, client: TestClient) -> dict[str, tuple[int, str]]:
    """Each kind of public page a reader can land on, by what it is."""
    store: SQLiteStore = setup.store
    sub = store.get_subscriber("ann.reader@example.org")
    assert sub is not None
    unsubscribe = make_token(KEY, store.list_identity(), sub.uid)
    confirm = make_confirm_token(KEY, store.list_identity(), sub.uid, 1e12)
    pages = {
        "home": client.get("/digest/"),
        "all issues": client.get("/digest/issues/"),
        "signup form": client.get("/digest/subscribe"),
        "check your inbox": client.post(
            "/digest/subscribe", data={"email": "new.reader@example.org"}
        ),
        "bad address": client.post("/digest/subscribe", data={"email": "not an address"}),
        "confirm button": client.get(f"/digest/confirm/{confirm}"),
        "confirmed": client.post(f"/digest/confirm/{confirm}"),
        "broken confirm link": client.get("/digest/confirm/nonsense"),
        "unsubscribe button": client.get(f"/digest/unsubscribe/{unsubscribe}"),
        "unsubscribed": client.post(f"/digest/unsubscribe/{unsubscribe}", data={"via": "page"}),
        "broken unsubscribe link": client.get("/digest/unsubscribe/nonsense"),
        "test send's link": client.get(f"/digest/unsubscribe/{TEST_TOKEN}"),
        "not found": client.get("/digest/issues/no-such-issue"),
    }
    return {what: (r.status_code, r.text) for what, r in pages.items()}


def test_every_public_page_wears_the_emails_look_with_masthead_and_a_way_home(
    setup: Setup,
) -> None:
    """A reader who clicks from the email lands on a page of the same publication: the
    email's serif, the newsletter's name on top linking home, the archive a click away."""
    with setup.client() as client:
        pages = every_page(setup, client)
    font = setup.settings.render.font_family
    for what, (status, text) in pages.items():
        assert status < 500, what
        tree = lxml_html.document_fromstring(text)
        style = " ".join(tree.xpath("//style/text()"))
        assert f"font-family:{font}" in style.replace(": ", ":"), what
        [masthead] = tree.xpath("//header[contains(@class,'dg-masthead')]")
        home = masthead.xpath(".//a[@href]")[0]
        assert home.get("href") == "https://news.example.org/digest/", what
        assert home.text_content().strip() == "The Conversation Digest", what
        nav = tree.xpath("//nav//a/@href")
        assert "https://news.example.org/digest/issues/" in nav, what
        assert len(tree.findall(".//main")) == 1, what


def test_after_confirming_or_leaving_a_reader_is_sent_on_to_the_archive(setup: Setup) -> None:
    """'You are subscribed' and 'You are unsubscribed' are not dead ends: the page itself
    (not only its navigation) invites the reader to the past issues."""
    with setup.client() as client:
        pages = every_page(setup, client)
    for what in ("check your inbox", "confirmed", "unsubscribed"):
        main = lxml_html.document_fromstring(pages[what][1]).find(".//main")
        assert main is not None
        assert "https://news.example.org/digest/issues/" in main.xpath(".//a/@href"), what


def test_a_site_overrides_one_public_page_and_keeps_the_bundled_rest(setup: Setup) -> None:
    own = setup.folder / "own-templates"
    shutil.copytree(bundled_templates(), own)
    (own / "pages" / "subscribed.html.j2").write_text(
        '{% extends "pages/base.html.j2" %}{% block content %}'
        "<h1>Welcome aboard</h1><p>Our own words for {{ newsletter.name }}.</p>"
        "{% endblock %}",
        encoding="utf-8",
    )
    for name in list((own / "pages").iterdir()):
        if name.name not in ("subscribed.html.j2",):
            name.unlink()  # only the one page of its own; the rest come from the bundle
    render = setup.settings.render.model_copy(update={"templates": str(own)})
    setup.settings = setup.settings.model_copy(update={"render": render})
    with setup.client() as client:
        pages = every_page(setup, client)
    assert "Our own words for The Conversation Digest." in pages["confirmed"][1]
    assert "dg-masthead" in pages["confirmed"][1]  # the bundled base it extends
    assert "Press the button" in pages["confirm button"][1]  # bundled, not overridden


def test_a_reader_cannot_inject_markup_into_a_page(setup: Setup) -> None:
    """Pages are autoescaped: a newsletter name with markup shows as text."""
    newsletter = setup.settings.newsletter.model_copy(update={"name": "<script>x</script> News"})
    setup.settings = setup.settings.model_copy(update={"newsletter": newsletter})
    with setup.client() as client:
        text = client.get("/digest/subscribe").text
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt; News" in text


def test_the_feed_carries_each_issue_in_full_without_anything_hidden_or_personal(
    setup: Setup,
) -> None:
    setup.schedule()
    setup.deliver()
    with setup.client() as client:
        feed = feedparser.parse(client.get("/digest/feed.xml").content)
    assert not feed.bozo, feed.bozo_exception
    [entry] = feed.entries
    [content] = entry.content
    assert content.type == "text/html"
    body = content.value
    assert "Read more from" in body and "Read the whole conversation" in body
    for absent in ("dg-preheader", "<script", "Annabel", "__DIGEST_", "<style", "Unsubscribe"):
        assert absent not in body, absent
    assert entry.summary  # the preheader, for readers that show summaries only
    assert re.search(r"harbor", body, re.IGNORECASE)


def test_every_public_page_has_one_main_landmark_holding_its_heading_and_content(
    setup: Setup,
) -> None:
    """Screen readers jump to <main>; a public page without one makes a reader hunt."""
    with setup.client() as client:
        pages = every_page(setup, client)
    for what, (_status, text) in pages.items():
        [main] = lxml_html.document_fromstring(text).findall(".//main")
        assert main.xpath(".//h1"), what
