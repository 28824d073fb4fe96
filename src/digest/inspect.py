"""How a conversation page was read, before anything is composed from it: what ``digest
inspect`` prints, so that an editor sees a misreading (a missing expert, a caption in a
comment, the wrong title) before it reaches an issue."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from digest.config import Settings, SiteSelectors
from digest.errors import SourceError
from digest.excerpt import sentences
from digest.model import Conversation, plain_text
from digest.sources import conversation_from, read_document
from digest.sources.locate import Whereabouts, guess_profile, reads_with, whereabouts

PREVIEW_WORDS = 30


def _words(text: str, limit: int = PREVIEW_WORDS) -> str:
    words = text.split()
    return " ".join(words[:limit]) + (" …" if len(words) > limit else "")


def inspect_source(
    source: str, *, settings: Settings, url: str | None, client: httpx.Client
) -> dict[str, Any]:
    """Read ``source`` as composing would and describe the reading. A page that cannot be
    read raises its error, with a site profile that would read it when one can be guessed."""
    document = read_document(source, settings=settings, url=url, client=client)
    host = urlsplit(url or document.url or "").hostname or "news.example"
    suggestion = guess_profile(document.text, host) if document.kind == "html" else None
    if suggestion is not None:
        read = reads_with(document.text, suggestion, source)
        if read is None or len(read.comments) < 2:
            suggestion = None
    try:
        conversation = conversation_from(document, settings=settings, url=url)
    except SourceError as err:
        if suggestion is None:
            raise
        raise SourceError(
            source,
            err.reason,
            details=[
                "a site profile in config.yaml reads this page's repeated comment blocks:",
                *("  " + line for line in profile_lines(suggestion)),
            ],
        ) from None
    found = whereabouts(document.text, document.kind, conversation)
    if suggestion is not None and conversation.url:  # profiles go by the canonical host
        host = urlsplit(conversation.url).hostname or host
        suggestion = suggestion.model_copy(update={"host": host})
    return describe(conversation, found, suggestion)


def profile_lines(profile: SiteSelectors) -> list[str]:
    """``profile`` as the lines of a config.yaml ``sites:`` entry."""
    lines = ["sites:", f"  - host: {profile.host}"]
    for key in ("comment", "author", "affiliation", "body"):
        if value := getattr(profile, key):
            lines.append(f'    {key}: "{value}"')
    return lines


def describe(
    conversation: Conversation,
    found: list[Whereabouts] | None = None,
    suggestion: SiteSelectors | None = None,
) -> dict[str, Any]:
    """The conversation as plain data: title, date, address, series, intro, and each
    expert with their affiliation, anchor, headline, length, first sentence and where on
    the page each was found; and a site profile that reads the page, if one was guessed."""
    intro = " ".join(plain_text(p) for p in conversation.intro)
    experts = []
    for number, comment in enumerate(conversation.comments):
        text = " ".join(plain_text(p) for p in comment.paragraphs)
        first = sentences(text)
        experts.append(
            {
                "name": comment.name,
                "affiliation": comment.affiliation,
                "anchor": comment.anchor,
                "headline": comment.headline,
                "paragraphs": len(comment.paragraphs),
                "words": len(text.split()),
                "first_sentence": first[0].strip() if first else "",
                "found": _found(found[number]) if found else None,
            }
        )
    return {
        "source": conversation.source,
        "title": conversation.title,
        "date": conversation.date.isoformat() if conversation.date else None,
        "url": conversation.url,
        "series": conversation.series,
        "intro": intro,
        "experts": experts,
        "notes": list(conversation.notes),
        "suggested_profile": _profile(suggestion),
    }


def _found(where: Whereabouts) -> dict[str, str | None]:
    return {"name": where.name, "affiliation": where.affiliation, "comment": where.comment}


def _profile(profile: SiteSelectors | None) -> dict[str, str] | None:
    if profile is None:
        return None
    keys = ("host", "comment", "author", "affiliation", "body")
    return {key: value for key in keys if (value := getattr(profile, key))}


def as_text(described: dict[str, Any]) -> str:
    lines = [
        f"title:   {described['title']}",
        f"date:    {described['date'] or '(none found: composing uses today)'}",
        f"address: {described['url'] or '(none: pass --url)'}",
    ]
    if described["series"]:
        lines.append(f"series:  {described['series']}")
    lines.append(f"intro:   {_words(described['intro']) or '(none found)'}")
    lines.append(f"experts: {len(described['experts'])}")
    for number, expert in enumerate(described["experts"], 1):
        lines.append(f"  {number}. {expert['name']}")
        lines.append(f"     affiliation: {expert['affiliation'] or '(none found)'}")
        if expert["headline"]:
            lines.append(f"     headline:    {expert['headline']}")
        lines.append(f"     anchor:      #{expert['anchor']}" if expert["anchor"] else
                     "     anchor:      (none on the page: made from the name)")  # fmt: skip
        lines.append(
            f"     comment:     {expert['words']} words in {expert['paragraphs']} paragraph(s)"
        )
        lines.append(f"     begins:      {_words(expert['first_sentence'])}")
        if found := expert["found"]:
            lines.append("     found at:    " + "; ".join(
                f"{part} {found[part]}" for part in ("name", "affiliation", "comment")
                if found[part]
            ))  # fmt: skip
    lines += [f"note: {note}" for note in described["notes"]]
    if profile := described["suggested_profile"]:
        lines.append("if this reading is wrong, a site profile in config.yaml can steer it,")
        lines.append("for example (it reads the page's repeated comment blocks):")
        lines += ["  " + line for line in profile_lines(SiteSelectors(**profile))]
    return "\n".join(lines) + "\n"
