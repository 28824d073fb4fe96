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
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from digest.config import Settings
from digest.issuefile import Issue
from digest.render import web_path
from digest.render.page import document
from digest.signup import signup_form
from digest.store import Published

ATOM = "http://www.w3.org/2005/Atom"
INDEX = "issues/index.html"
FEED = "feed.xml"
HOME = "index.html"


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

    rendered = render_issue(issue, settings, slug, web_version=True)
    return WebVersion(
        slug=slug,
        subject=issue.subject,
        preheader=issue.preheader or "",
        date=issue.date.isoformat() if issue.date else None,
        language=settings.newsletter.language,
        html=rendered.html,
    )


def _long_date(iso: str | None) -> str:
    if not iso:
        return ""
    day = dt.date.fromisoformat(iso)
    return f"{day:%B} {day.day}, {day.year}"


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

    def _list(self, entries: Sequence[Entry]) -> str:
        if not entries:
            return '<p class="dg-small">No issues yet.</p>'
        items = "".join(
            f'<li><a href="{html.escape(self.url(web_path(e.version.slug)))}">'
            f"{html.escape(e.version.subject)}</a>"
            f'<br><span class="dg-small">{html.escape(_long_date(e.version.date))}'
            f"{' · ' if e.version.date and e.version.preheader else ''}"
            f"{html.escape(e.version.preheader)}</span></li>"
            for e in entries
        )
        return f'<ol class="dg-issues" reversed>{items}</ol>'

    def _head(self, canonical: str) -> str:
        name = html.escape(self.settings.newsletter.name)
        return (
            f'<link rel="canonical" href="{html.escape(canonical)}">'
            f'<link rel="alternate" type="application/atom+xml" title="{name}"'
            f' href="{html.escape(self.url("/feed.xml"))}">'
        )

    def home_page(self) -> str:
        newsletter = self.settings.newsletter
        latest = self.entries[: self.settings.web.latest_issues]
        body = (
            f"<p>Subscribe to get {html.escape(newsletter.name)} by email.</p>"
            f"{signup_form(self.settings)}"
        )
        if self.settings.web.latest_issues:
            body += f"<h2>Latest issues</h2>{self._list(latest)}"
        body += (
            f'<p><a href="{html.escape(self.url("/issues/"))}">All issues</a> · '
            f'<a href="{html.escape(self.url("/feed.xml"))}">Feed</a></p>'
        )
        return document(
            newsletter.name, body, language=newsletter.language, head_html=self._head(self.url("/"))
        )

    def index_page(self) -> str:
        newsletter = self.settings.newsletter
        body = (
            f"{self._list(self.entries)}"
            f'<p><a href="{html.escape(self.url("/subscribe"))}">Subscribe</a> · '
            f'<a href="{html.escape(self.url("/feed.xml"))}">Feed</a></p>'
        )
        return document(
            f"{newsletter.name}: all issues",
            body,
            language=newsletter.language,
            head_html=self._head(self.url("/issues/")),
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
        for entry in self.entries:
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


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
