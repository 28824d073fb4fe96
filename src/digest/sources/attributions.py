""" "Experts react" pages: a headline for each expert's part, and the expert named in an
attribution sentence, either closing the part ("—**Name** is a senior fellow at …") or
opening it ("**Name** is a professor of … at …").

Such a page has no name headings, so the block pass finds no experts in it. Read here,
each part becomes a comment: the headline is the comment's headline, the bold name the
expert, the rest of the sentence a short affiliation ("Senior fellow, Institute"), and
the attribution sentence leaves the comment's text. The page's own furniture before the
first part (a byline, a "Jump to" list) leaves the intro.
"""

from __future__ import annotations

import re

from digest.model import Comment, Paragraph
from digest.sources.blocks import Block
from digest.sources.lines import COMMENTS_HEADINGS, looks_like_name

VERB = re.compile(r"^\s*,?\s*(?:is|was|serves as)\s+(?P<role>(?:an?|the)\s+.+?)\s*\.?\s*$", re.I)
BYLINE = re.compile(r"^(by|words by|edited by)\s+\S", re.I)
JUMP = re.compile(r"^(jump to|skip to|in this (article|piece))\b", re.I)
STOP_HEADINGS = COMMENTS_HEADINGS | {"reader comments", "related", "related stories", "more"}


def _attribution(block: Block) -> tuple[str, str] | None:
    """(name, affiliation) when ``block`` is an attribution sentence with a bold name."""
    if block.kind != "p":
        return None
    spans = [s for s in block.para if s.text.strip()]
    lead = 1 if spans and spans[0].text.strip() in {"—", "–", "-"} and not spans[0].strong else 0
    if len(spans) <= lead or not spans[lead].strong:
        return None
    name = spans[lead].text.strip().lstrip("—–- ").strip()
    rest = "".join(s.text for s in spans[lead + 1 :])
    found = VERB.match(rest)
    if not found or not looks_like_name(name):
        return None
    return name, short_affiliation(found["role"])


def short_affiliation(role: str) -> str:
    """'a senior fellow at the Harbor Institute' -> 'Senior fellow, Harbor Institute'."""
    text = re.sub(r"^(an?|the)\s+", "", role.strip().rstrip("."), flags=re.I)
    for joint in (" at ", " with "):
        head, found, tail = text.partition(joint)
        if found and head and tail:
            organisation = re.sub(r"^the\s+", "", tail.strip(), flags=re.I)
            text = f"{head.strip()}, {organisation}"
            break
    return text[:1].upper() + text[1:]


def attributed(blocks: list[Block]) -> tuple[list[Paragraph], list[Comment]] | None:
    """The intro and the comments of an "experts react" page; None when ``blocks`` (the
    page after its title) are not one: fewer than two parts carry an attribution."""
    parts: list[tuple[Block, list[Block]]] = []
    intro: list[Block] = []
    for block in blocks:
        if block.kind == "h" and block.level >= 2:
            if block.text.strip().lower() in STOP_HEADINGS:
                break
            parts.append((block, []))
        elif parts:
            parts[-1][1].append(block)
        else:
            intro.append(block)
    comments = []
    for heading, body in parts:
        paragraphs = [b for b in body if b.kind in {"p", "li", "quote"}]
        if not paragraphs:
            continue
        for where in (paragraphs[-1], paragraphs[0]):  # closing first, then opening
            if (found := _attribution(where)) is not None:
                name, affiliation = found
                text = [b.para for b in paragraphs if b is not where]
                if text:
                    comments.append(
                        Comment(
                            name, affiliation, tuple(text), heading.anchor, heading.text.strip()
                        )
                    )
                break
    if len(comments) < 2:
        return None
    kept = [
        b.para
        for b in intro
        if b.kind == "p" and not BYLINE.match(b.text.strip()) and not JUMP.match(b.text.strip())
    ]
    return kept, comments


__all__ = ["attributed", "short_affiliation"]
