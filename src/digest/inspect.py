"""How a conversation page was read, before anything is composed from it: what ``digest
inspect`` prints, so that an editor sees a misreading (a missing expert, a caption in a
comment, the wrong title) before it reaches an issue."""

from __future__ import annotations

from typing import Any

from digest.excerpt import sentences
from digest.model import Conversation, plain_text

PREVIEW_WORDS = 30


def _words(text: str, limit: int = PREVIEW_WORDS) -> str:
    words = text.split()
    return " ".join(words[:limit]) + (" …" if len(words) > limit else "")


def describe(conversation: Conversation) -> dict[str, Any]:
    """The conversation as plain data: title, date, address, series, intro, and each
    expert with their affiliation, anchor, headline, length and first sentence."""
    intro = " ".join(plain_text(p) for p in conversation.intro)
    experts = []
    for comment in conversation.comments:
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
    }


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
    lines += [f"note: {note}" for note in described["notes"]]
    return "\n".join(lines) + "\n"
