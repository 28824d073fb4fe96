"""Conversations -> an issue: excerpts, read-more links, subject and preheader."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx

from digest.config import Settings
from digest.errors import SourceError
from digest.excerpt import (
    excerpt,
    first_sentence,
    intro_excerpt,
    people_phrase,
    read_more_url,
    slugify,
    titles_phrase,
)
from digest.issuefile import Expert, Issue, Section
from digest.model import Conversation
from digest.sources import read_conversation
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
    utm = None
    if compose.utm is not None:
        utm = {
            "utm_source": compose.utm.source,
            "utm_medium": compose.utm.medium,
            "utm_campaign": compose.utm.campaign.format(slug=slug),
        }
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
    conversations: list[Conversation], settings: Settings, slug: str, today: dt.date
) -> Issue:
    first = conversations[0]
    return Issue(
        subject=first.title,
        preheader=preheader_for(conversations, settings.compose.excerpt.preheader_chars),
        date=first.date or today,
        sections=tuple(section_for(c, settings, slug) for c in conversations),
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
    return issue, directory / f"{name}.yaml"
