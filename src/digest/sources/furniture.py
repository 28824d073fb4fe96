"""A page's furniture around a conversation, which is never anyone's words: the headings
after the last comment where reading stops, image credits, and in the intro the
editor's byline and a teaser list of the experts' names."""

from __future__ import annotations

import re

from digest.model import LIST_BULLET, Paragraph, plain_text

# headings where the conversation is over and the page goes on: nothing after them is read
AFTER_COMMENTS = frozenset(
    {"about the author", "about the authors", "about the contributors", "contributors",
     "author bio", "about the host", "disclosure statement", "disclosure statements",
     "disclosures", "reader comments", "join the conversation", "related", "related stories",
     "读者评论", "网友评论", "相关阅读", "相关文章"}
)  # fmt: skip
CREDIT = re.compile(r"^\s*(photo|photograph|image|illustration|credit|source)s?( by)?\s*:", re.I)


INTRO_BYLINE = re.compile(r"^(by|words by|edited by|introduced by)\s+\S", re.I)


def clean_intro(intro: list[Paragraph], names: set[str]) -> list[Paragraph]:
    """The intro without the page's furniture: the editor's byline, a teaser list of the
    experts' names and the short line leading into it ("In this conversation:")."""
    kept = []
    for para in intro:
        text = plain_text(para).strip()
        bare = text.removeprefix(LIST_BULLET.strip()).strip()
        if INTRO_BYLINE.match(text) and len(text.split()) <= 12:
            continue
        if bare in names or (text.endswith(":") and len(text.split()) <= 6):
            continue
        kept.append(para)
    return kept
