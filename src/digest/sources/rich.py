"""Untrusted HTML elements -> safe rich text (tuples of Span).

This is the one gate every source's content passes through. It keeps text, links and
emphasis and drops everything else: scripts, styles, frames, forms, event handlers and
any link that is not absolute http, https or mailto after resolving against the page URL.
Nothing is ever fetched here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

from lxml import etree, html

from digest.model import Paragraph, Span

# Elements whose whole subtree is never content.
SKIPPED_TAGS = frozenset(
    {
        "script", "style", "noscript", "template", "iframe", "frame", "frameset", "object",
        "embed", "applet", "svg", "math", "form", "input", "button", "select", "textarea",
        "canvas", "audio", "video", "picture", "img", "head", "title", "meta", "link", "base",
    }
)  # fmt: skip
EMPHASIS_TAGS = frozenset({"em", "i", "cite", "q"})
STRONG_TAGS = frozenset({"strong", "b"})
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})

_WS = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_href(raw: str | None, base_url: str | None) -> str | None:
    """An absolute http(s)/mailto URL for ``raw``, or None when the link must go.

    Placeholder links (``#``, empty, ``#!``) and any other scheme (javascript:, data:,
    file:, vbscript: …) become None, so the link text stays as plain text.
    """
    if raw is None:
        return None
    href = _CONTROL.sub("", raw).strip()
    if href in {"", "#", "#!", "/#"} or href.lower().startswith("javascript"):
        return None
    if href.startswith("#") and base_url is None:
        return None
    scheme = urlsplit(href).scheme.lower()
    if not scheme:
        if base_url is None:
            return None
        href = urljoin(base_url, href)
        scheme = urlsplit(href).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return None
    parts = urlsplit(href)
    if scheme in {"http", "https"} and not parts.hostname:
        return None
    if scheme == "mailto" and "@" not in parts.path:
        return None
    return href


def _walk(
    el: etree._Element, base_url: str | None, href: str | None, em: bool, strong: bool
) -> Iterator[Span]:
    tag = el.tag.lower() if isinstance(el.tag, str) else ""
    if tag in SKIPPED_TAGS or not isinstance(el.tag, str):
        # comments and processing instructions carry no content, but their tail does
        if el.tail:
            yield Span(el.tail, href, em, strong)
        return
    inner_href, inner_em, inner_strong = href, em, strong
    if tag == "a":
        inner_href = safe_href(el.get("href"), base_url)
    elif tag in EMPHASIS_TAGS:
        inner_em = True
    elif tag in STRONG_TAGS:
        inner_strong = True
    if tag == "br":
        yield Span(" ", href, em, strong)
    if el.text:
        yield Span(el.text, inner_href, inner_em, inner_strong)
    for child in el:
        yield from _walk(child, base_url, inner_href, inner_em, inner_strong)
    if el.tail:
        yield Span(el.tail, href, em, strong)


def normalise(spans: list[Span] | tuple[Span, ...]) -> Paragraph:
    """Collapse white space, merge neighbours with equal formatting, trim both ends."""
    merged: list[Span] = []
    for span in spans:
        text = _WS.sub(" ", span.text.replace("\u00a0", " "))
        if not text:
            continue
        if merged and merged[-1].text.endswith(" ") and text.startswith(" "):
            text = text[1:]
            if not text:
                continue
        last = merged[-1] if merged else None
        if last and (last.href, last.em, last.strong) == (span.href, span.em, span.strong):
            merged[-1] = Span(last.text + text, span.href, span.em, span.strong)
        else:
            merged.append(Span(text, span.href, span.em, span.strong))
    if merged:
        first = merged[0]
        merged[0] = Span(first.text.lstrip(), first.href, first.em, first.strong)
        last = merged[-1]
        merged[-1] = Span(last.text.rstrip(), last.href, last.em, last.strong)
    return tuple(s for s in merged if s.text)


def paragraph_of(el: etree._Element, base_url: str | None) -> Paragraph:
    """The safe rich text inside one element (its tail excluded)."""
    spans: list[Span] = []
    tag = el.tag.lower() if isinstance(el.tag, str) else ""
    if tag in SKIPPED_TAGS:
        return ()
    href = safe_href(el.get("href"), base_url) if tag == "a" else None
    em, strong = tag in EMPHASIS_TAGS, tag in STRONG_TAGS
    if el.text:
        spans.append(Span(el.text, href, em, strong))
    for child in el:
        spans.extend(_walk(child, base_url, href, em, strong))
    return normalise(spans)


def fragment_paragraph(fragment: str, base_url: str | None = None) -> Paragraph:
    """Rich text of an HTML fragment, e.g. a heading's inner HTML."""
    if not fragment.strip():
        return ()
    wrapper = html.fragment_fromstring(fragment, create_parent="div")
    return paragraph_of(wrapper, base_url)


def text_of(el: etree._Element) -> str:
    """Visible text of an element with skipped subtrees removed, white space folded."""
    return "".join(span.text for span in paragraph_of(el, None))
