"""From the site's feed to a draft: `digest compose --feed` and `digest draft`, against a
real feed and real pages served on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.build import build
from digest.config import Settings
from digest.issuefile import load_issue
from tests.conftest import FIXTURES, SAMPLE, run
from tests.pages import PageServer

GRID = """<!doctype html><html lang="en"><head><title>Grid</title>
<meta property="og:title" content="Who Pays for the Grid?"></head><body><article>
<p class="series">Meridian Conversation</p>
<h1>Who Pays for the Grid?</h1>
<p>Utilities want more money to harden their lines against storms. Who should pay?</p>
<div class="response" id="r-ana"><p class="author">Ana Silva</p><p class="affiliation">Economist</p>
<p>Customers should pay for what they use. The rest is a public good.</p></div>
<div class="response" id="r-ben"><p class="author">Ben Okoro</p><p class="affiliation">Engineer</p>
<p>The utilities should pay first. They chose to underinvest.</p></div>
</article></body></html>"""

BROKEN = "<!doctype html><html><body><article><h1>Broken Page</h1><p>No experts here.</p></article></body></html>"


def rss(base: str, *, private: bool = True, broken: bool = True) -> str:
    items = [
        ("Who Pays for the Grid?", "/c/grid", "grid-1", "Thu, 26 Nov 2026 09:00:00 GMT"),
        (
            "Should Lighthouses Be Museums?",
            f"{base}/c/lighthouses",
            "lights-1",
            "Tue, 24 Nov 2026 09:00:00 GMT",
        ),
        ("Who Pays for the Grid?", "/c/grid", "grid-1", "Thu, 26 Nov 2026 09:00:00 GMT"),  # twice
        ("Can Harbor Cities Hold the Line?", "/c/harbor", "harbor-1", None),  # no date
        ("An Old One", "/c/old", "old-1", "Mon, 02 Nov 2026 09:00:00 GMT"),
    ]
    if broken:
        items.append(("Broken Page", "/c/broken", "broken-1", "Wed, 25 Nov 2026 09:00:00 GMT"))
    if private:
        items.append(
            ("Secret Page", "http://10.9.8.7/c/secret", "secret-1", "Wed, 25 Nov 2026 10:00:00 GMT")
        )
    body = "".join(
        f'<item><title>{t}</title><link>{link}</link><guid isPermaLink="false">{g}</guid>'
        + (f"<pubDate>{d}</pubDate>" if d else "")
        + "</item>"
        for t, link, g, d in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Meridian</title><link>{base}/</link><description>Conversations</description>"
        f"{body}</channel></rss>"
    )


def atom(base: str) -> str:
    entries = [
        ("Who Pays for the Grid?", "c/grid", "tag:example.org,2026:grid", "2026-11-26T09:00:00Z"),
        (
            "Should Lighthouses Be Museums?",
            "c/lighthouses",
            "tag:example.org,2026:lights",
            "2026-11-24T09:00:00Z",
        ),
    ]
    body = "".join(
        f'<entry><title>{t}</title><link rel="alternate" href="{href}"/><id>{i}</id><updated>{u}</updated></entry>'
        for t, href, i, u in entries
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="{base}/">'
        f"<title>Meridian</title><id>tag:example.org,2026:feed</id><updated>2026-11-26T09:00:00Z</updated>"
        f"{body}</feed>"
    )


@pytest.fixture
def site(page_server: PageServer, in_tmp: Path) -> PageServer:
    page_server.add("/c/grid", GRID)
    page_server.add("/c/lighthouses", (FIXTURES / "conversation-page.html").read_bytes())
    page_server.add(
        "/c/harbor",
        SAMPLE.read_bytes(),
        headers={"Content-Type": "text/markdown; charset=utf-8"},
    )
    page_server.add("/c/old", GRID.replace("Grid?", "Old Grid?"))
    page_server.add("/c/broken", BROKEN)
    xml = {"Content-Type": "application/rss+xml; charset=utf-8"}
    page_server.add("/feed.rss", rss(page_server.base), headers=xml)
    page_server.add(
        "/feed.atom", atom(page_server.base), headers={"Content-Type": "application/atom+xml"}
    )
    Path("config.yaml").write_text(
        "fetch:\n  allow_private_addresses: [127.0.0.1]\nstaff: [desk@example.org]\n",
        encoding="utf-8",
    )
    return page_server


def issue_files(folder: str = "issues") -> list[Path]:
    return sorted(Path(folder).glob("*.yaml"))


def test_an_rss_feed_becomes_one_issue_newest_first_skipping_what_fails(site: PageServer) -> None:
    result = run("compose", "--feed", site.url("/feed.rss"), "--since", "2026-11-20")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("'Broken Page'" in w and "no experts found" in w for w in warnings), warnings
    assert any("'Secret Page'" in w and "10.9.8.7" in w for w in warnings), warnings
    assert len(warnings) == 2
    (path,) = issue_files()
    issue = load_issue(path)
    assert [s.title for s in issue.sections] == [
        "Who Pays for the Grid?",  # newest
        "Should Lighthouses Be Museums?",
        "Can Harbor Cities Hold the Line Against the Sea?",  # no date: last
    ]
    assert [s.feed_entry for s in issue.sections] == ["grid-1", "lights-1", "harbor-1"]
    assert issue.feeds == (site.url("/feed.rss"),)
    assert issue.sections[0].url == site.url("/c/grid")  # the relative link made absolute
    assert not any("/c/old" in p for p, _ in site.requests)  # older than --since
    assert sum(p == "/c/grid" for p, _ in site.requests) == 1  # the duplicate read once
    built = build(path, Settings())
    assert "IN THIS ISSUE" in built.sample.text
    assert "1. Who Pays for the Grid?" in built.sample.text
    assert "3. Can Harbor Cities Hold the Line Against the Sea?" in built.sample.text
    for n in (1, 2, 3):
        assert (
            f'href="#section-{n}"' in built.sample.html and f'id="section-{n}"' in built.sample.html
        )


def test_a_second_run_finds_nothing_new_and_force_takes_the_entries_again(site: PageServer) -> None:
    feed = site.url("/feed.rss")
    assert run("compose", "--feed", feed, "--since", "2026-11-20").exit_code == 0
    again = run("compose", "--feed", feed)
    assert again.exit_code == 1
    assert "no new entries" in again.stderr and "Traceback" not in again.output
    assert len(issue_files()) == 1
    forced = run("compose", "--feed", feed, "--since", "2026-11-20", "--force")
    assert forced.exit_code == 0, forced.output
    assert len(load_issue(issue_files()[0]).sections) == 3


def test_since_last_issue_is_the_default(site: PageServer) -> None:
    # the first issue from the feed takes everything that composes, old entries included
    assert run("compose", "--feed", site.url("/feed.rss")).exit_code == 0
    (path,) = issue_files()
    assert "Who Pays for the Old Grid?" in [s.title for s in load_issue(path).sections]


def test_an_atom_feed_with_relative_links_max_and_match(site: PageServer) -> None:
    feed = site.url("/feed.atom")
    newest = run("compose", "--feed", feed, "--max", "1", "--out", "one")
    assert newest.exit_code == 0, newest.output
    (path,) = issue_files("one")
    assert [s.title for s in load_issue(path).sections] == ["Who Pays for the Grid?"]
    matched = run("compose", "--feed", feed, "--match", "lighthouse", "--out", "two")
    assert matched.exit_code == 0, matched.output
    (path,) = issue_files("two")
    sections = load_issue(path).sections
    assert [s.title for s in sections] == ["Should Lighthouses Be Museums?"]
    assert sections[0].feed_entry == "tag:example.org,2026:lights"


def test_a_feed_where_nothing_composes_is_refused_and_nothing_written(site: PageServer) -> None:
    only_bad = rss(site.base).split("<item>")[0] + "".join(
        "<item>" + part
        for part in rss(site.base).split("<item>")[1:]
        if "Broken" in part or "Secret" in part
    )
    if not only_bad.endswith("</rss>"):
        only_bad += "</channel></rss>"
    site.add("/bad.rss", only_bad, headers={"Content-Type": "application/rss+xml"})
    result = run("compose", "--feed", site.url("/bad.rss"))
    assert result.exit_code == 1
    assert "none of 2 new entries composed" in result.stderr
    assert "Traceback" not in result.output
    assert issue_files() == []


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        ("<html><body>hello</body></html>", "text/html", "is not an RSS or Atom feed"),
        ("this is not xml at all", "text/xml", "not an RSS or Atom feed"),
    ],
)
def test_a_page_that_is_not_a_feed_gets_one_line(
    site: PageServer, body: str, content_type: str, reason: str
) -> None:
    site.add("/nofeed", body, headers={"Content-Type": content_type})
    result = run("compose", "--feed", site.url("/nofeed"))
    assert result.exit_code == 1
    assert reason in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert issue_files() == []


def test_feed_options_need_a_feed_and_sources_or_a_feed(in_tmp: Path) -> None:
    assert run("compose").exit_code == 2
    assert run("compose", str(SAMPLE), "--max", "2").exit_code == 2
    bad_since = run("compose", "--feed", "feed.xml", "--since", "last-week")
    assert bad_since.exit_code == 2 and "last-issue" in bad_since.output


def outbox_messages() -> list[EmailMessage]:
    found = []
    for path in sorted(Path("outbox").rglob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def test_draft_sends_staff_one_draft_with_a_note_and_a_second_run_sends_nothing(
    site: PageServer,
) -> None:
    Path("config.yaml").write_text(
        "fetch:\n  allow_private_addresses: [127.0.0.1]\nstaff: [desk@example.org]\n"
        f"draft:\n  feeds: [{site.url('/feed.atom')}]\n",
        encoding="utf-8",
    )
    first = run("draft")
    assert first.exit_code == 0, first.output
    (path,) = issue_files()
    assert first.stdout.strip() == str(path)
    (message,) = outbox_messages()
    assert message["To"] == "desk@example.org"
    assert message["Subject"] == "[DRAFT] Who Pays for the Grid?"
    text = " ".join(message.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    assert "Draft for" in text and "2 conversations" in text
    assert f"digest preview {path}" in text and f"digest schedule {path}" in text
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Draft for" in html
    # nothing went to subscribers: no schedule, no database
    assert not Path("digest.sqlite3").exists()

    second = run("draft")
    assert second.exit_code == 0, second.output
    assert "nothing new" in second.stderr
    assert len(issue_files()) == 1 and len(outbox_messages()) == 1


def test_draft_without_feeds_says_which_setting_to_fill(in_tmp: Path) -> None:
    result = run("draft")
    assert result.exit_code == 1
    assert "draft.feeds" in result.stderr


def test_editor_note_shows_above_the_conversations_and_its_links_are_checked(
    issue_file: Path,
) -> None:
    from digest.config import Settings

    text = issue_file.read_text(encoding="utf-8")
    edited = text.replace(
        "sections:",
        "editor_note: A note from the *desk*. [Our policy](https://example.org/p).\nsections:",
        1,
    )
    issue_file.write_text(edited, encoding="utf-8")
    built = build(issue_file, Settings())
    assert built.sample.text.index("A note from the desk.") < built.sample.text.index("Ana Lúcia")
    assert "<em>desk</em>" in built.sample.html
    issue_file.write_text(
        edited.replace("https://example.org/p", "javascript:alert(1)"), encoding="utf-8"
    )
    assert any(
        "editor_note" in f.message and f.level == "error"
        for f in build(issue_file, Settings()).findings
    )
