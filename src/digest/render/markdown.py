"""Inline Markdown from issue files -> safe HTML, and -> plain text.

Editors write excerpts and intros in inline Markdown. Raw HTML and images are disabled;
a link survives only with an absolute http, https or mailto target. Anything else stays
visible as literal text (and `digest check` reports it).
"""

from __future__ import annotations

import re
import string

from markdown_it.token import Token

from digest.inline_markdown import inline_tokens, is_safe_link, make_parser

__all__ = ["curly", "inline_html", "inline_text", "inline_tokens", "is_safe_link", "link_targets"]

# The same dialect, read for the reader: straight quotes in the text become curly ones
# (markdown-it's smartquotes: never in link targets or code). Composing and checking keep
# the plain parser, so an issue file reads back exactly as written.
TYPESET = make_parser(typographer=True)
_ESCAPE = str.maketrans({c: "\\" + c for c in string.punctuation if c not in "'\""})


def _typeset_tokens(text: str) -> list[Token]:
    tokens = TYPESET.parseInline(text)
    return tokens[0].children or [] if tokens else []


def inline_html(text: str) -> str:
    """Inline Markdown -> HTML (links, emphasis, code); everything else escaped."""
    return str(TYPESET.renderInline(text)).strip()


_LITERAL_LINK = re.compile(r"\]\(\s*<?(\S+?)>?\)(?=\s|$|[.,;:!?])")


def link_targets(text: str) -> list[str]:
    """Every link target an editor wrote, safe or not (for checks)."""
    targets = [t.attrGet("href") for t in inline_tokens(text) if t.type == "link_open"]
    found = [str(t) for t in targets if t is not None]
    # links markdown-it refused stay as literal "[text](target)": report those too
    refused = (m.group(1) for m in _LITERAL_LINK.finditer(text))
    found.extend(url for url in refused if url not in found)
    return found


def inline_text(text: str) -> str:
    """Inline Markdown -> plain text; a link becomes "text (URL)"."""
    out: list[str] = []
    href_stack: list[tuple[str, int]] = []
    for token in _typeset_tokens(text):
        if token.type == "link_open":
            href_stack.append((str(token.attrGet("href") or ""), len(out)))
        elif token.type == "link_close" and href_stack:
            href, start = href_stack.pop()
            label = "".join(out[start:])
            if href and href.removeprefix("mailto:") != label:
                out.append(f" ({href})")
        elif token.type in {"text", "code_inline"}:
            out.append(token.content)
        elif token.type in {"softbreak", "hardbreak"}:
            out.append(" ")
    return "".join(out)


def curly(text: str | None) -> str:
    """Plain text (a title, a name) with its straight quotes made curly, as the
    Markdown's are; nothing in it is read as Markdown."""
    if not text:
        return text or ""
    return inline_text(str(text).translate(_ESCAPE))
