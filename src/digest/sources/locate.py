"""Where on a page each part of a reading came from, and a site profile that would read
the page: what ``digest inspect`` shows so that an editor can see why a page was read
as it was, and steer a misread one with a ``sites:`` entry in config.yaml.

Nothing here changes how a page is read; it looks at the page again after reading."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from lxml import etree, html

from digest.config import SiteSelectors
from digest.errors import DigestError
from digest.excerpt import sentences
from digest.model import Comment, Conversation, plain_text
from digest.sources.lines import looks_like_name
from digest.sources.rich import text_of

PATH_DEPTH = 4
_SKIPPED = ("script", "style", "template", "noscript")


@dataclass(frozen=True)
class Whereabouts:
    """Where one expert's name, affiliation and comment were found: a short CSS path
    on an HTML page, a line number in a text copy, ``None`` where not found."""

    name: str | None
    affiliation: str | None
    comment: str | None


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def path_of(el: etree._Element) -> str:
    """A short CSS path to ``el``: its tag with an id or first class, and up to
    PATH_DEPTH ancestors, stopping at the first id (ids are unique on a page)."""
    parts: list[str] = []
    at: etree._Element | None = el
    while at is not None and isinstance(at.tag, str) and at.tag not in {"body", "html"}:
        el = at
        part = el.tag
        if el.get("id"):
            parts.append(f"{part}#{el.get('id')}")
            break
        classes = (el.get("class") or "").split()
        part = f"{part}.{classes[0]}" if classes else part
        parent = el.getparent()
        twins = [s for s in parent if s.tag == el.tag] if parent is not None else [el]
        if len(twins) > 1:
            part += f":nth-of-type({twins.index(el) + 1})"
        parts.append(part)
        if len(parts) == PATH_DEPTH:
            break
        at = parent
    return " > ".join(reversed(parts))


def _elements(doc: etree._Element) -> list[tuple[etree._Element, str]]:
    body = doc.find("body")
    found = []
    for el in (body if body is not None else doc).iter():
        if not isinstance(el.tag, str) or el.tag in _SKIPPED:
            continue
        if any(a.tag in _SKIPPED for a in el.iterancestors()):
            continue
        found.append((el, _fold("".join(str(t) for t in el.itertext()))))
    return found


def _holders(elements: list[tuple[etree._Element, str]], text: str | None) -> list[int]:
    """Positions (in document order) of the innermost elements holding the first words
    of ``text``: a holder none of whose children holds them too."""
    wanted = " ".join(_fold(text or "").split()[:6])
    if not wanted:
        return []
    holding = [i for i, (_, content) in enumerate(elements) if wanted in content]
    inner = []
    for i in holding:
        el = elements[i][0]
        if not any(elements[j][0].getparent() is el for j in holding):
            inner.append(i)
    return inner


def _html_whereabouts(text: str, conversation: Conversation) -> list[Whereabouts]:
    doc = html.document_fromstring(text)
    elements = _elements(doc)
    found = []
    for comment in conversation.comments:
        first = _first_sentence(comment)
        comments = _holders(elements, first)
        at = comments[0] if comments else len(elements)
        # The name is its last mention before the comment (an intro may name everyone).
        names = _holders(elements, comment.name)
        before = [i for i in names if i < at]
        name = before[-1] if before else (names[0] if names else None)
        affiliations = _holders(elements, (comment.affiliation or "").split(",")[0])
        near = name if name is not None else at
        affiliation = min(affiliations, key=lambda i: abs(i - near), default=None)
        found.append(
            Whereabouts(
                *(path_of(elements[i][0]) if i is not None else None
                  for i in (name, affiliation, comments[0] if comments else None))
            )
        )  # fmt: skip
    return found


def _first_sentence(comment: Comment) -> str:
    said = sentences(plain_text(comment.paragraphs[0])) if comment.paragraphs else []
    return said[0] if said else ""


def _line_of(lines: list[str], text: str | None, after: int = 0) -> int | None:
    if not text:
        return None
    wanted = _fold(text)[:60]
    for number, line in enumerate(lines[after:], after + 1):
        if wanted and wanted in _fold(line):
            return number
    return None


def _text_whereabouts(text: str, conversation: Conversation) -> list[Whereabouts]:
    lines = text.splitlines()
    found = []
    for comment in conversation.comments:
        first = _first_sentence(comment)
        comment_line = _line_of(lines, first)
        # The name is the last mention before the comment begins (a teaser or an intro
        # may name everyone earlier).
        name_line = None
        for number, line in enumerate(lines[: (comment_line or len(lines))], 1):
            if _fold(comment.name) in _fold(line):
                name_line = number
        if name_line is None:  # named after the comment ("—Name is a fellow at …")
            name_line = _line_of(lines, comment.name, comment_line or 0)
        affiliation = (comment.affiliation or "").split(",")[0]
        affiliation_line = _line_of(lines, affiliation, (name_line or 1) - 1)
        found.append(
            Whereabouts(
                *(f"line {n}" if n else None for n in (name_line, affiliation_line, comment_line))
            )
        )
    return found


def whereabouts(text: str, kind: str, conversation: Conversation) -> list[Whereabouts]:
    """Where each expert of ``conversation`` was found in the page ``text``."""
    if kind == "html":
        return _html_whereabouts(text, conversation)
    return _text_whereabouts(text, conversation)


# --- a site profile guessed from the page's repeated shape ---------------------------


def _key(el: etree._Element) -> str:
    classes = (el.get("class") or "").split()
    return f"{el.tag}.{classes[0]}" if classes else str(el.tag)


def _name_element(container: etree._Element) -> etree._Element | None:
    for el in container.iterdescendants():
        if not isinstance(el.tag, str) or el.tag in _SKIPPED:
            continue
        words = text_of(el).strip()
        if words and len(words) < 60 and looks_like_name(words.removeprefix("By ").strip()):
            # the outermost element holding just the name
            while (parent := el.getparent()) is not container and parent is not None:
                if text_of(parent).strip() != words:
                    break
                el = parent
            return el
        if len(words.split()) > 12 and el.tag in {"p", "blockquote"}:
            return None  # the comment began before any name
    return None


def _next_short(container: etree._Element, after: etree._Element) -> etree._Element | None:
    seen = False
    for el in container.iterdescendants():
        if el is after:
            seen = True
            continue
        if not seen or not isinstance(el.tag, str) or after in el.iterancestors():
            continue
        words = text_of(el).strip()
        if not words:
            continue
        return el if len(words) < 100 and not words.endswith((".", "?", "!")) else None
    return None


def _common(elements: list[etree._Element | None]) -> str | None:
    keys = {_key(el) for el in elements if el is not None}
    if len(keys) == 1 and all(el is not None for el in elements):
        key = keys.pop()
        return key if "." in key else None  # a bare tag is too loose to steer with
    return None


def guess_profile(text: str, host: str) -> SiteSelectors | None:
    """Selectors for the page's repeated comment blocks: elements sharing a tag and
    class, each holding a name-like element (the author), perhaps a short element after
    it (the affiliation) and some paragraphs. ``None`` when the page has no such shape."""
    try:
        doc = html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return None
    groups: dict[str, list[etree._Element]] = defaultdict(list)
    for el, _ in _elements(doc):
        if el.get("class") and el.tag not in {"p", "span", "a", "li", "h1", "h2", "h3", "h4"}:
            groups[_key(el)].append(el)
    best: tuple[int, SiteSelectors] | None = None
    for key, members in groups.items():
        if len(members) < 2 or any(m in members for el in members for m in el.iterancestors()):
            continue
        names = [_name_element(m) for m in members]
        author = _common(names)
        if author is None:
            continue
        words = [len(text_of(m).split()) for m in members]
        if min(words) < 12:
            continue
        affiliations = [
            _next_short(m, n) for m, n in zip(members, names, strict=True) if n is not None
        ]
        profile = SiteSelectors(
            host=host, comment=key, author=author, affiliation=_common(affiliations)
        )
        if best is None or len(members) > best[0]:
            best = (len(members), profile)
    return best[1] if best else None


def reads_with(text: str, profile: SiteSelectors, source: str) -> Conversation | None:
    """The page read with ``profile``, or ``None`` when the profile reads no comments."""
    from digest.sources.html import parse_html

    try:
        return parse_html(
            text, source=source, url=f"https://{profile.host}/", selectors_for=lambda _: profile
        )
    except DigestError:
        return None
