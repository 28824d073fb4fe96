"""HTML pages fetched over real HTTP from a server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from digest.config import Fetch, Settings, SiteSelectors
from digest.errors import SourceError
from digest.model import plain_text
from digest.sources import read_conversation
from digest.sources.fetch import make_client
from tests.conftest import FIXTURES
from tests.pages import PageServer

LOCAL = ("127.0.0.1",)  # the test servers' address, which fetches refuse by default
SETTINGS = Settings(fetch=Fetch(allow_private_addresses=LOCAL))


def fetch(url: str, settings: Settings = SETTINGS) -> object:
    with make_client(settings.fetch) as client:
        return read_conversation(url, settings=settings, client=client)


def test_page_with_site_chrome_yields_only_the_article_comments(page_server: PageServer) -> None:
    url = page_server.add("/c/lighthouses", (FIXTURES / "conversation-page.html").read_bytes())
    conv = fetch(url)
    assert conv.title == "Should Lighthouses Be Museums?"
    assert conv.date == dt.date(2025, 10, 2)
    assert conv.url == page_server.url("/conversations/lighthouses")  # canonical, made absolute
    assert [c.name for c in conv.comments] == ["Ingrid Solberg", "Kofi A. Oduya"]
    assert [c.affiliation for c in conv.comments] == [
        "Keeper, Lindesnes Light (retired)",
        "Curator, Coastal Heritage Trust",
    ]
    assert [c.anchor for c in conv.comments] == ["comment-ingrid", "comment-oduya"]
    intro = plain_text(conv.intro[0])
    assert intro.startswith("Automated beacons") and "Editors" not in intro
    everything = " ".join(plain_text(p) for c in conv.comments for p in c.paragraphs)
    for chrome in ("Sign up", "Another story", "Copyright", "About Us"):
        assert chrome not in everything


def test_hostile_markup_in_comments_never_gets_through(page_server: PageServer) -> None:
    url = page_server.add("/c/lighthouses", (FIXTURES / "conversation-page.html").read_bytes())
    conv = fetch(url)
    spans = [s for c in conv.comments for p in c.paragraphs for s in p]
    text = " ".join(s.text for s in spans)
    assert "alert" not in text and "color: red" not in text
    hrefs = {s.href for s in spans if s.href}
    assert hrefs == {page_server.url("/reports/beacons.pdf"), "mailto:keepers@example.org"}
    assert "boats & kayaks" in text  # entities decoded to text
    assert "here and there" in text  # the text of javascript: and # links stays, unlinked
    # only the page itself was requested: no stylesheet, script, image or frame
    assert [path for path, _ in page_server.requests] == ["/c/lighthouses"]


def test_fetch_sends_a_real_user_agent(page_server: PageServer) -> None:
    url = page_server.add("/c/lighthouses", (FIXTURES / "conversation-page.html").read_bytes())
    fetch(url)
    headers = page_server.requests[0][1]
    assert headers["User-Agent"].startswith("digest/")


def test_headings_naming_experts_inside_main_and_section_ids_as_anchors(
    page_server: PageServer,
) -> None:
    url = page_server.add("/trains", (FIXTURES / "heading-page.html").read_bytes())
    conv = fetch(url)
    assert conv.title == "Are Night Trains Back for Good?"
    assert [c.name for c in conv.comments] == ["Lena Fischer", "Marco Bellini"]
    assert [c.anchor for c in conv.comments] == ["lena-fischer", "marco-bellini"]
    assert conv.comments[0].affiliation == "Rail Economist, Example University"


def test_site_selectors_in_config_override_the_heuristics(page_server: PageServer) -> None:
    page = """<html><head><meta property="og:title" content="Custom Layout"></head><body>
      <div class="story"><p>Intro text here.</p>
        <div class="x-resp" id="r1"><span class="who">Ada Quill</span><em class="org">Example Org</em>
          <div class="txt"><p>First comment sentence.</p></div></div>
        <div class="x-resp" id="r2"><span class="who">Ben Ore</span>
          <div class="txt"><p>Second comment.</p></div></div>
      </div></body></html>"""
    url = page_server.add("/custom", page)
    site = SiteSelectors(
        host="127.0.0.1", comment=".x-resp", author=".who", affiliation=".org", body=".txt"
    )
    conv = fetch(url, Settings(sites=(site,), fetch=SETTINGS.fetch))
    assert [(c.name, c.affiliation, c.anchor) for c in conv.comments] == [
        ("Ada Quill", "Example Org", "r1"),
        ("Ben Ore", None, "r2"),
    ]
    assert plain_text(conv.comments[0].paragraphs[0]) == "First comment sentence."
    assert plain_text(conv.intro[0]) == "Intro text here."


@pytest.mark.parametrize(
    "status, headers, body, reason",
    [
        (404, {"Content-Type": "text/html"}, b"<h1>gone</h1>", "HTTP 404"),
        (503, {"Content-Type": "text/html"}, b"busy", "HTTP 503"),
        (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4", "content type 'application/pdf'"),
        (200, {"Content-Type": "image/png"}, b"\x89PNG", "is not HTML"),
    ],
)
def test_http_errors_and_non_html_are_refused(
    page_server: PageServer, status: int, headers: dict[str, str], body: bytes, reason: str
) -> None:
    url = page_server.add("/p", body, status=status, headers=headers)
    with pytest.raises(SourceError, match=reason) as err:
        fetch(url)
    assert str(err.value).startswith(url)


def test_oversized_page_is_refused(page_server: PageServer) -> None:
    url = page_server.add("/big", b"<p>" + b"x" * 20_000 + b"</p>")
    settings = Settings(fetch=Fetch(max_bytes=5_000, allow_private_addresses=LOCAL))
    with pytest.raises(SourceError, match="larger than the 5000-byte limit"):
        fetch(url, settings)


def test_slow_page_times_out(page_server: PageServer) -> None:
    url = page_server.add("/slow", b"<p>late</p>", delay=2.0)
    settings = Settings(fetch=Fetch(read_timeout=0.3, allow_private_addresses=LOCAL))
    with pytest.raises(SourceError, match="timed out"):
        fetch(url, settings)


def test_redirect_loops_stop_after_the_limit(page_server: PageServer) -> None:
    for i in range(10):
        page_server.add(f"/r{i}", b"", status=302, headers={"Location": f"/r{i + 1}"})
    with pytest.raises(SourceError, match="too many redirects"):
        fetch(page_server.url("/r0"))
    assert len(page_server.requests) == 6  # the first request and 5 redirects


def test_unreachable_address_is_refused_with_the_reason() -> None:
    server = PageServer()
    url = server.url("/gone")
    server.close()
    with pytest.raises(SourceError, match="cannot fetch"):
        fetch(url)


def test_other_schemes_are_never_fetched() -> None:
    with pytest.raises(SourceError, match="only http and https"):
        read_conversation("ftp://example.org/x.html", settings=SETTINGS, client=httpx.Client())


def lighthouse_page(head: str, h1: str | None = "Should Lighthouses Be Museums?") -> bytes:
    """The lighthouse fixture with its own <head> and <h1> (or none)."""
    page = (FIXTURES / "conversation-page.html").read_text(encoding="utf-8")
    start, end = page.index("<head>") + len("<head>"), page.index("</head>")
    page = page[:start] + head + page[end:]
    old = "<h1>Should Lighthouses Be Museums?</h1>"
    page = page.replace(old, f"<h1>{h1}</h1>" if h1 else "")
    return page.encode()


@pytest.mark.parametrize(
    ("head", "h1", "title"),
    [
        # the visible headline, not the share title with the site's name after it
        (
            '<meta property="og:title" content="Should Lighthouses Be Museums? | Harbor Review">',
            "Should Lighthouses Be Museums?",
            "Should Lighthouses Be Museums?",
        ),
        # no <h1>: the share title, less the site's name
        (
            '<meta property="og:title" content="Should Lighthouses Be Museums? | Harbor Review">'
            '<meta property="og:site_name" content="Harbor Review">',
            None,
            "Should Lighthouses Be Museums?",
        ),
        # only a <title>: its site suffix goes, whatever the dash
        (
            "<title>Should Lighthouses Be Museums? — Harbor Review</title>"
            '<meta property="og:site_name" content="Harbor Review">',
            None,
            "Should Lighthouses Be Museums?",
        ),
        (
            "<title>Should Lighthouses Be Museums? | Harbor Review</title>",
            None,
            "Should Lighthouses Be Museums?",
        ),
        # structured data's headline before a shortened <title>
        (
            '<script type="application/ld+json">{"@type": "Article", "headline":'
            ' "Should Lighthouses Be Museums?"}</script><title>Lighthouses | Harbor</title>',
            None,
            "Should Lighthouses Be Museums?",
        ),
        # a dash that belongs to the title stays
        (
            "<title>Lighthouses - Museums or Beacons?</title>",
            None,
            "Lighthouses - Museums or Beacons?",
        ),
    ],
)
def test_the_title_is_the_visible_headline_without_the_sites_name(
    page_server: PageServer, head: str, h1: str | None, title: str
) -> None:
    url = page_server.add("/c/lighthouses", lighthouse_page(head, h1))
    assert fetch(url).title == title  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "head",
    [
        # structured data only (JSON-LD), as many publishers give it
        '<script type="application/ld+json">{"@context": "https://schema.org", "@type":'
        ' "NewsArticle", "headline": "Should Lighthouses Be Museums?", "datePublished":'
        ' "2025-10-02T09:30:00+02:00"}</script>',
        # a graph of several things, the article among them
        '<script type="application/ld+json">{"@graph": [{"@type": "WebSite", "name": "Harbor"},'
        ' {"@type": "Article", "datePublished": "2025-10-02"}]}</script>',
    ],
)
def test_the_date_comes_from_structured_data_when_the_page_has_it(
    page_server: PageServer, head: str
) -> None:
    page = lighthouse_page(head).replace(
        b'<p class="dateline"><time datetime="2025-10-02">October 2, 2025</time></p>', b""
    )
    url = page_server.add("/c/lighthouses", page)
    assert str(fetch(url).date) == "2025-10-02"  # type: ignore[attr-defined]


def test_broken_structured_data_is_ignored_not_fatal(page_server: PageServer) -> None:
    head = '<script type="application/ld+json">{"datePublished": </script>'
    url = page_server.add("/c/lighthouses", lighthouse_page(head))
    assert fetch(url).title == "Should Lighthouses Be Museums?"  # type: ignore[attr-defined]
