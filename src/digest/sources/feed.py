"""An RSS 2.0 or Atom feed (a file or an http(s) URL) -> its entries, newest first.

The feed is read with feedparser from bytes this module fetched itself, through the same
fetcher, limits and address policy as any page: feedparser is never handed a URL, so it
fetches nothing. An entry's link is made absolute against the feed's address (or its
own <link> when read from a file); entries without an http(s) link are left out and said.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx

from digest.config import Settings
from digest.errors import SourceError
from digest.sources.fetch import FEED_TYPES, fetch_bytes, is_url


@dataclass(frozen=True)
class FeedEntry:
    id: str  # the entry's guid or id; its link when it has none
    link: str  # absolute http(s)
    title: str
    published: dt.datetime | None  # UTC; None when the feed gives no date


@dataclass(frozen=True)
class Feed:
    source: str
    title: str
    entries: tuple[FeedEntry, ...]  # newest first, undated last, each id once
    notes: tuple[str, ...]  # entries left out, and why


def newest_first(entries: Iterable[FeedEntry]) -> list[FeedEntry]:
    """Newest first; entries without a date after every dated one."""
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(
        entries, key=lambda e: (e.published is not None, e.published or oldest), reverse=True
    )


def _when(entry: Any) -> dt.datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            return dt.datetime.fromtimestamp(calendar.timegm(value), dt.UTC)
    return None


def _bytes(source: str, settings: Settings, client: httpx.Client | None) -> tuple[bytes, str]:
    if is_url(source):
        if client is None:
            raise SourceError(source, "no HTTP client to fetch it with")
        fetched = fetch_bytes(source, client, settings.fetch, FEED_TYPES, "an RSS or Atom feed")
        return fetched.data, fetched.url
    if "://" in source:
        raise SourceError(source, "only http and https addresses can be fetched")
    path = Path(source)
    try:
        if path.stat().st_size > settings.fetch.max_bytes:
            raise SourceError(source, f"larger than the {settings.fetch.max_bytes}-byte limit")
        return path.read_bytes(), ""
    except FileNotFoundError:
        raise SourceError(source, "no such file") from None
    except OSError as err:
        raise SourceError(source, f"cannot read ({err.strerror})") from None


def read_feed(source: str, *, settings: Settings, client: httpx.Client | None = None) -> Feed:
    data, base = _bytes(source, settings, client)
    if not data.strip():
        raise SourceError(source, "empty feed")
    parsed = feedparser.parse(data, response_headers={"content-location": base} if base else {})
    if not parsed.get("version") and not parsed.entries:
        reason = str(parsed.get("bozo_exception") or "no RSS or Atom elements")
        raise SourceError(source, f"not an RSS or Atom feed ({reason.splitlines()[0][:120]})")
    base = base or str(parsed.feed.get("link") or "")
    entries: dict[str, FeedEntry] = {}
    notes: list[str] = []
    for raw in parsed.entries:
        title = " ".join(str(raw.get("title") or "").split()) or "(untitled)"
        link = urljoin(base, str(raw.get("link") or "").strip()) if raw.get("link") else ""
        if urlsplit(link).scheme not in {"http", "https"} or not urlsplit(link).hostname:
            notes.append(f"{title!r}: no http(s) link")
            continue
        entry_id = str(raw.get("id") or "").strip() or link
        if entry_id in entries or any(e.link == link for e in entries.values()):
            continue  # the same entry twice in one feed
        entries[entry_id] = FeedEntry(entry_id, link, title, _when(raw))
    ordered = newest_first(entries.values())
    title = " ".join(str(parsed.feed.get("title") or "").split()) or source
    return Feed(source, title, tuple(ordered), tuple(notes))
