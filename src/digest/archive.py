"""The public archive: each sent issue's web version, an index, an Atom feed, and the
home page, as files.

An issue's web version is rendered when it is scheduled, beside the email, and frozen
with it: what subscribers got is what the archive shows. It is the email's HTML without
anything personal (no greeting name, no unsubscribe link or token), with a canonical
link, Open Graph tags and the page's language. ``Archive.files()`` is the whole archive
as path -> bytes: ``digest archive build`` writes them for a static host and ``digest
serve`` answers the same bytes for the same paths.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from digest.config import Settings
from digest.issuefile import Issue
from digest.render import web_path
from digest.render.pages import render_page
from digest.signup import HONEYPOT
from digest.store import Published

ATOM = "http://www.w3.org/2005/Atom"
INDEX = "issues/index.html"
FEED = "feed.xml"
HOME = "index.html"
FEED_IN_FULL = 20  # the newest issues the feed carries whole; older ones by summary


@dataclass(frozen=True)
class WebVersion:
    slug: str
    subject: str
    preheader: str
    date: str | None  # ISO date of the issue
    language: str
    html: str

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> WebVersion:
        return cls(**json.loads(text))


def web_version(issue: Issue, settings: Settings, slug: str) -> WebVersion:
    """The issue as the archive shows it: rendered like the email, nothing personal."""
    from digest.render import render_issue  # loads Jinja2, MJML and premailer

    settings = settings.for_newsletter(issue.newsletter)
    rendered = render_issue(issue, settings, slug, web_version=True)
    return WebVersion(
        slug=slug,
        subject=issue.subject,
        preheader=issue.preheader or "",
        date=issue.date.isoformat() if issue.date else None,
        language=settings.newsletter.language,
        html=rendered.html,
    )


@dataclass(frozen=True)
class Entry:
    version: WebVersion
    published_at: dt.datetime


class Archive:
    """The published issues (newest first) and the pages made from them."""

    def __init__(self, settings: Settings, published: Sequence[Published]) -> None:
        self.settings = settings
        self.entries = [Entry(WebVersion.from_json(p.web_json), p.published_at) for p in published]

    def url(self, path: str) -> str:
        return self.settings.web.url(path)

    def _listed(self, entries: Sequence[Entry]) -> list[dict[str, object]]:
        return [
            {
                "url": self.url(web_path(e.version.slug)),
                "subject": e.version.subject,
                "date": dt.date.fromisoformat(e.version.date) if e.version.date else None,
                "preheader": e.version.preheader,
            }
            for e in entries
        ]

    def home_page(self) -> str:
        shown = self.settings.web.latest_issues
        return render_page(
            self.settings,
            "home",
            canonical=self.url("/"),
            latest=self._listed(self.entries[:shown]) if shown else None,
            honeypot=HONEYPOT,
        )

    def index_page(self) -> str:
        return render_page(
            self.settings,
            "issues",
            canonical=self.url("/issues/"),
            entries=self._listed(self.entries),
        )

    def issue_page(self, slug: str) -> str | None:
        for entry in self.entries:
            if entry.version.slug == slug:
                return entry.version.html
        return None

    def feed(self) -> bytes:
        """An Atom feed (RFC 4287) of every published issue, each linking to its web version."""
        ET.register_namespace("", ATOM)
        newsletter = self.settings.newsletter
        root = ET.Element(f"{{{ATOM}}}feed")
        root.set("{http://www.w3.org/XML/1998/namespace}lang", newsletter.language)

        def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> None:
            child = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
            child.text = text

        add(root, "id", self.url("/"))
        add(root, "title", newsletter.name)
        newest = (
            self.entries[0].published_at if self.entries else dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        )
        add(root, "updated", _rfc3339(newest))
        add(root, "link", rel="self", href=self.url("/feed.xml"), type="application/atom+xml")
        add(root, "link", rel="alternate", href=self.url("/issues/"), type="text/html")
        author = ET.SubElement(root, f"{{{ATOM}}}author")
        add(author, "name", newsletter.name)
        for number, entry in enumerate(self.entries):
            version = entry.version
            item = ET.SubElement(root, f"{{{ATOM}}}entry")
            link = self.url(web_path(version.slug))
            add(item, "id", link)
            add(item, "title", version.subject)
            add(item, "link", rel="alternate", href=link, type="text/html")
            add(item, "updated", _rfc3339(entry.published_at))
            add(item, "published", _rfc3339(entry.published_at))
            if version.preheader:
                add(item, "summary", version.preheader)
            if number < FEED_IN_FULL:
                add(item, "content", feed_content(version.html), type="html")
        return (
            b'<?xml version="1.0" encoding="utf-8"?>\n'
            + ET.tostring(root, encoding="unicode").encode()
        )

    def files(self) -> dict[str, bytes]:
        """The whole archive as relative path -> bytes."""
        out = {
            HOME: self.home_page().encode(),
            INDEX: self.index_page().encode(),
            FEED: self.feed(),
        }
        for entry in self.entries:
            out[f"issues/{entry.version.slug}/index.html"] = entry.version.html.encode()
        return out


def feed_content(page: str) -> str:
    """An issue's web version as a feed entry's content: what its <body> shows, less the
    hidden preheader (feed readers drop the styles that hide it) and any <style>."""
    from lxml import html as lxml_html  # premailer's own dependency

    tree = lxml_html.document_fromstring(page)
    found = tree.xpath("//*[contains(@class,'dg-preheader')] | //style | //script")
    for hidden in found if isinstance(found, list) else []:
        if isinstance(hidden, lxml_html.HtmlElement):
            hidden.drop_tree()
    body = tree.find("body")
    if body is None:
        return ""
    head = body.text or ""
    return head + "".join(lxml_html.tostring(child, encoding="unicode") for child in body)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
