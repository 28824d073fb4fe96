"""Conversations -> an issue: excerpts, read-more links, subject and preheader."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from digest.config import Settings
from digest.errors import ConfigError, DigestError, NothingNew, SourceError
from digest.excerpt import (
    excerpt,
    first_sentence,
    intro_excerpt,
    people_phrase,
    read_more_url,
    slugify,
    titles_phrase,
)
from digest.issuefile import Expert, Issue, Section, load_issue
from digest.links import utm_params
from digest.model import Conversation
from digest.sources import read_conversation
from digest.sources.feed import FeedEntry, newest_first, read_feed
from digest.sources.fetch import is_url, make_client


def issue_name(conversations: list[Conversation], today: dt.date) -> str:
    """``<yyyy-mm-dd>-<slug>``: the first conversation's date and title."""
    first = conversations[0]
    return f"{(first.date or today).isoformat()}-{slugify(first.title)}"


def section_for(conversation: Conversation, settings: Settings, slug: str) -> Section:
    compose = settings.compose
    if not conversation.url:
        raise SourceError(
            conversation.source,
            "no web address for the 'Read more' links; pass --url with the page's address",
        )
    utm = utm_params(compose.utm, slug)
    experts = []
    used: set[str] = set()
    for comment in conversation.comments:
        anchor = comment.anchor if comment.anchor not in used else None
        from_name = anchor is None
        if anchor is None:  # made from the name; never one another expert already has
            base = anchor = slugify(comment.name)
            count = 1
            while anchor in used:
                count += 1
                anchor = f"{base}-{count}"
        used.add(anchor)
        experts.append(
            Expert(
                name=comment.name,
                affiliation=comment.affiliation,
                headline=comment.headline,
                excerpt=excerpt(comment.paragraphs, compose.excerpt.words),
                read_more=read_more_url(
                    conversation.url,
                    name=comment.name,
                    anchor=anchor,
                    pattern=compose.read_more,
                    utm=utm,
                ),
                anchor_from_name=from_name and "{anchor}" in compose.read_more,
            )
        )
    intro = intro_excerpt(conversation.intro, compose.excerpt.intro_words) or None
    return Section(
        title=conversation.title,
        url=conversation.url,
        date=conversation.date,
        series=conversation.series,
        intro=intro,
        experts=tuple(experts),
    )


def preheader_for(conversations: list[Conversation], max_chars: int) -> str | None:
    """The inbox snippet after the subject: something the subject does not say, in whole
    words: who speaks (one conversation) or what else is inside (several); else the
    intro's first sentence if it fits whole."""
    first = conversations[0]
    if len(conversations) > 1:
        phrase = titles_phrase([c.title for c in conversations[1:]], max_chars)
    else:
        phrase = people_phrase([c.name for c in first.comments], max_chars)
    if phrase:
        return phrase
    sentence = first_sentence(first.intro or first.comments[0].paragraphs, 10_000)
    return sentence if sentence and len(sentence) <= max_chars else None


def build_issue(
    conversations: list[Conversation],
    settings: Settings,
    slug: str,
    today: dt.date,
    *,
    feeds: tuple[str, ...] = (),
    entry_ids: tuple[str | None, ...] = (),
) -> Issue:
    first = conversations[0]
    sections = [section_for(c, settings, slug) for c in conversations]
    for index, entry_id in enumerate(entry_ids):
        sections[index] = sections[index].model_copy(update={"feed_entry": entry_id})
    return Issue(
        subject=first.title,
        preheader=preheader_for(conversations, settings.compose.excerpt.preheader_chars),
        # a digest from feeds is dated the day it is composed; one conversation, its own day
        date=today if feeds else first.date or today,
        sections=tuple(sections),
        feeds=feeds,
    )


def compose(
    sources: list[str],
    settings: Settings,
    *,
    url: str | None = None,
    client: httpx.Client | None = None,
    today: dt.date | None = None,
    out_dir: Path | None = None,
) -> tuple[Issue, Path]:
    """Read every source and build one issue; returns it and the path it belongs at."""
    issue, path, _ = compose_read(
        sources, settings, url=url, client=client, today=today, out_dir=out_dir
    )
    return issue, path


def compose_read(
    sources: list[str],
    settings: Settings,
    *,
    url: str | None = None,
    client: httpx.Client | None = None,
    today: dt.date | None = None,
    out_dir: Path | None = None,
) -> tuple[Issue, Path, list[Conversation]]:
    """:func:`compose`, with the conversations as read (each expert's whole comment)."""
    if url and len(sources) > 1:
        raise SourceError(sources[1], "--url names one page; give it with a single source")
    today = today or dt.date.today()
    own_client = client is None and any(is_url(s) for s in sources)
    if own_client:
        client = make_client(settings.fetch)
    try:
        conversations = [
            read_conversation(s, settings=settings, url=url, client=client) for s in sources
        ]
    finally:
        if own_client and client is not None:
            client.close()
    name = issue_name(conversations, today)
    issue = build_issue(conversations, settings, name, today)
    directory = out_dir or Path(settings.compose.issues_dir)
    return issue, directory / f"{name}.yaml", conversations


# --- from feeds -------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedIssue:
    issue: Issue
    path: Path
    skipped: tuple[str, ...]  # entries that did not compose, each with its reason
    conversations: tuple[Conversation, ...] = ()  # as read: each expert's whole comment


def _page_key(url: str) -> str:
    """An address without fragment, query or trailing slash, to recognise a page."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment="", path=parts.path.rstrip("/")))


@dataclass
class _History:
    """What earlier issue files in the folder already used."""

    entry_ids: set[str]
    pages: set[str]
    last_date: dict[str, dt.date]  # feed -> the newest issue composed from it


def _history(folder: Path) -> _History:
    history = _History(set(), set(), {})
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            issue = load_issue(path)
        except DigestError:
            continue  # a broken file is `digest check`'s business, not a reason to stop
        for section in issue.sections:
            if section.feed_entry:
                history.entry_ids.add(section.feed_entry)
            if section.url:
                history.pages.add(_page_key(section.url))
        for feed in issue.feeds:
            if feed not in history.last_date or history.last_date[feed] < issue.date:
                history.last_date[feed] = issue.date
    return history


def compose_from_feeds(
    feeds: list[str],
    settings: Settings,
    *,
    since: dt.date | None = None,
    max_entries: int | None = None,
    match: str | None = None,
    force: bool = False,
    client: httpx.Client | None = None,
    today: dt.date | None = None,
    out_dir: Path | None = None,
    entry_ids: Collection[str] | None = None,
) -> FeedIssue:
    """One multi-section issue from the entries of ``feeds`` that are new (only those of
    ``entry_ids``, when given): published since
    ``since`` (default: the date of the last issue composed from the same feed) and not
    used by an earlier issue in the folder (by entry id, then page address) unless
    ``force``. Entries that fail are skipped and said; none composing is an error."""
    today = today or dt.date.today()
    folder = out_dir or Path(settings.compose.issues_dir)
    history = _history(folder)
    try:
        pattern = re.compile(match) if match else None
    except re.error as err:
        raise DigestError(f"--match {match!r} is not a regular expression ({err})") from None
    own_client = client is None
    client = client or make_client(settings.fetch)
    try:
        candidates, skipped = _candidates(feeds, settings, client, history, since, pattern, force)
        if entry_ids is not None:  # the entries an editor ticked
            candidates = {k: v for k, v in candidates.items() if k in entry_ids}
        chosen = newest_first(candidates.values())[: max_entries or None]
        if not chosen:
            raise NothingNew(f"{', '.join(feeds)}: no new entries to compose")
        conversations: list[Conversation] = []
        used_ids: list[str | None] = []
        for entry in chosen:
            try:
                conversation = read_conversation(entry.link, settings=settings, client=client)
            except ConfigError:
                raise
            except DigestError as err:
                reason = err.reason if isinstance(err, SourceError) else str(err)
                skipped.append(f"{entry.title!r} ({entry.link}): {reason}")
                continue
            if not force and _page_key(conversation.url or entry.link) in history.pages:
                continue  # the page was used before under another feed address
            conversations.append(conversation)
            used_ids.append(entry.id)
    finally:
        if own_client:
            client.close()
    if not conversations:
        first = skipped[0] if skipped else "nothing was new"
        raise SourceError(
            ", ".join(feeds), f"none of {len(chosen)} new entries composed; first: {first}"
        )
    name = issue_name(conversations, today)
    issue = build_issue(
        conversations, settings, name, today, feeds=tuple(feeds), entry_ids=tuple(used_ids)
    )
    return FeedIssue(issue, folder / f"{name}.yaml", tuple(skipped), tuple(conversations))


def _candidates(
    feeds: list[str],
    settings: Settings,
    client: httpx.Client,
    history: _History,
    since: dt.date | None,
    pattern: re.Pattern[str] | None,
    force: bool,
) -> tuple[dict[str, FeedEntry], list[str]]:
    """The new entries of ``feeds`` by id, and notes about what could not be read."""
    candidates: dict[str, FeedEntry] = {}
    skipped: list[str] = []
    for source in feeds:
        feed = read_feed(source, settings=settings, client=client)
        skipped.extend(f"{source}: {note}" for note in feed.notes)
        start = since if since is not None else history.last_date.get(source)
        for entry in feed.entries:
            if start and entry.published and entry.published.date() < start:
                continue
            if not force and (
                entry.id in history.entry_ids or _page_key(entry.link) in history.pages
            ):
                continue
            if pattern and not (pattern.search(entry.link) or pattern.search(entry.title)):
                continue
            candidates.setdefault(entry.id, entry)
    return candidates, skipped


def new_feed_entries(
    feeds: list[str], settings: Settings, *, out_dir: Path | None = None
) -> list[FeedEntry]:
    """The entries of ``feeds`` no issue in the folder used yet, newest first: what the
    desk offers to tick for a new issue."""
    history = _history(out_dir or Path(settings.compose.issues_dir))
    with make_client(settings.fetch) as client:
        candidates, _ = _candidates(feeds, settings, client, history, None, None, False)
    return newest_first(candidates.values())
