"""Markdown in the shape of a published conversation -> Conversation.

The Markdown is rendered to HTML with raw HTML disabled (so markup in the source stays
text), then read by the same block pass as HTML pages.
"""

from __future__ import annotations

from lxml import html
from markdown_it import MarkdownIt

from digest.model import Conversation
from digest.sources.blocks import conversation_from_blocks, iter_blocks

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def parse_markdown(text: str, *, source: str, url: str | None) -> Conversation:
    rendered = _MD.render(text)
    root = html.fragment_fromstring(rendered or "<p></p>", create_parent="div")
    blocks = list(iter_blocks(root, url))
    return conversation_from_blocks(blocks, source=source, url=url)
