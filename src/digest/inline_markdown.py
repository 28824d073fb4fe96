"""The inline Markdown of issue files, as one parser: CommonMark with raw HTML and images
off, and links only to absolute http, https or mailto targets.

Composing writes this dialect (:mod:`digest.excerpt`) and checks that it reads back as
written; rendering reads it (:mod:`digest.render.markdown`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})


def is_safe_link(url: str) -> bool:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return False
    if scheme == "mailto":
        return "@" in parts.path
    return bool(parts.hostname)


def make_parser(*, typographer: bool = False) -> MarkdownIt:
    """The dialect; with ``typographer``, straight quotes in text come out curly."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": typographer})
    md.disable(["image", "html_inline", "html_block"])
    if typographer:
        md.enable("smartquotes")
    md.validateLink = is_safe_link  # type: ignore[method-assign]
    return md


PARSER = make_parser()


def inline_tokens(text: str) -> list[Token]:
    tokens = PARSER.parseInline(text)
    return tokens[0].children or [] if tokens else []


def visible_text(text: str) -> str:
    """What a reader sees of inline Markdown: its text, without any markup or link targets."""
    parts = []
    for token in inline_tokens(text):
        if token.type in {"text", "code_inline"}:
            parts.append(token.content)
        elif token.type in {"softbreak", "hardbreak"}:
            parts.append(" ")
    return "".join(parts)
