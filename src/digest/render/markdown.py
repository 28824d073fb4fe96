"""Inline Markdown from issue files -> safe HTML, and -> plain text.

Editors write excerpts and intros in inline Markdown. Raw HTML and images are disabled;
a link survives only with an absolute http, https or mailto target. Anything else stays
visible as literal text (and `digest check` reports it).
"""

from __future__ import annotations

import re

from digest.inline_markdown import PARSER, inline_tokens, is_safe_link

__all__ = ["inline_html", "inline_text", "inline_tokens", "is_safe_link", "link_targets"]


def inline_html(text: str) -> str:
    """Inline Markdown -> HTML (links, emphasis, code); everything else escaped."""
    return str(PARSER.renderInline(text)).strip()


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
    for token in inline_tokens(text):
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
