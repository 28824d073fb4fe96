"""Markdown in the shape of a published conversation -> Conversation.

The Markdown is rendered to HTML with raw HTML disabled (so markup in the source stays
text), then read by the same block pass as HTML pages. A heading (or a "Name:" line) may
end with the page's anchor for it, `### Ana Lúcia Ferreira {#ana-ferreira}`: it becomes
the element's id, so "Read more" links to that expert's comment use the page's anchor.
"""

from __future__ import annotations

import dataclasses
import re
from itertools import pairwise

from lxml import html
from markdown_it import MarkdownIt
from markdown_it.token import Token

from digest.model import Conversation
from digest.sources.blocks import conversation_from_blocks, iter_blocks
from digest.sources.plaintext import copy_to_markdown, is_plain_copy

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


_HEADING_ID = re.compile(r"\s*\{#([A-Za-z][\w.:-]*)\}\s*$")


def _block_ids(tokens: list[Token]) -> None:
    """Move a trailing `{#anchor}` of a heading or paragraph into its id attribute."""
    for opening, inline in pairwise(tokens):
        if opening.type not in {"heading_open", "paragraph_open"} or not inline.children:
            continue
        last = inline.children[-1]
        match = _HEADING_ID.search(last.content) if last.type == "text" else None
        if match:
            last.content = last.content[: match.start()]
            opening.attrSet("id", match.group(1))


def parse_markdown(text: str, *, source: str, url: str | None) -> Conversation:
    if is_plain_copy(text):  # a page's text copied from a browser: given its shape first
        shaped, kicker, description = copy_to_markdown(text)
        conversation = _parse(shaped, source=source, url=url)
        notes = ("read as a plain-text copy of a page", *conversation.notes)
        if not kicker:
            return dataclasses.replace(conversation, notes=notes)
        return dataclasses.replace(
            conversation, series=kicker, series_description=description, notes=notes
        )
    return _parse(text, source=source, url=url)


def _parse(text: str, *, source: str, url: str | None) -> Conversation:
    tokens = _MD.parse(text)
    _block_ids(tokens)
    rendered = _MD.renderer.render(tokens, _MD.options, {})
    root = html.fragment_fromstring(rendered or "<p></p>", create_parent="div")
    blocks = list(iter_blocks(root, url))
    return conversation_from_blocks(blocks, source=source, url=url)
