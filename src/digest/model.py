"""The conversation model: plain, immutable data with no I/O.

Rich text is a tuple of :class:`Span` runs. A span is a piece of text with at most one
link and two emphasis flags. Sources produce spans only from an allow-list (text, links
with http/https/mailto targets, emphasis), so nothing executable can be represented here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    text: str
    href: str | None = None
    em: bool = False
    strong: bool = False


Paragraph = tuple[Span, ...]

LIST_BULLET = "• "  # a list item is a paragraph that starts with this


def plain_text(paragraph: Paragraph) -> str:
    return "".join(span.text for span in paragraph)


@dataclass(frozen=True)
class Comment:
    """One expert's contribution to a conversation."""

    name: str
    affiliation: str | None
    paragraphs: tuple[Paragraph, ...]
    anchor: str | None = None  # the source's own id for this comment, if any
    headline: str | None = None  # a bold first line, kept apart from the body


@dataclass(frozen=True)
class Conversation:
    """An editors' question and the experts' comments, as read from one source."""

    title: str
    url: str | None
    date: dt.date | None
    intro: tuple[Paragraph, ...]
    comments: tuple[Comment, ...]
    series: str | None = None
    series_description: str | None = None
    source: str = ""  # where it was read from, for messages
    notes: tuple[str, ...] = field(default=())  # warnings about how it was read
