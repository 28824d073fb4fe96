"""An HTML conversation page -> Conversation.

Reading order:
1. metadata: og:title or <h1>; article:published_time or <time datetime>; rel=canonical;
2. site chrome (navigation, signup boxes, footers, related lists…) is cut away and the
   article element is chosen;
3. comments come from the site's CSS selectors in config.yaml when it has them, else
   from bylines (author elements with paragraphs), else from headings naming experts.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from cssselect import SelectorError
from lxml import etree, html

from digest.config import SiteSelectors
from digest.errors import ConfigError, SourceError
from digest.model import Comment, Conversation, Paragraph, plain_text
from digest.sources.blocks import (
    STOP_ATTRIBUTE,
    _is_whole,
    _strip_signoff,
    conversation_from_blocks,
    iter_blocks,
    join_broken_paragraphs,
)
from digest.sources.lines import COMMENTS_HEADINGS, looks_like_name, parse_date
from digest.sources.profiles import apply_profile
from digest.sources.rich import safe_href, text_of

CHROME_TAGS = ("nav", "footer", "aside", "form", "dialog")
CHROME_ROLES = frozenset({"navigation", "complementary", "contentinfo", "search", "banner"})
_CHROME_WORDS = (
    r"nav|navbar|navigation|menu|newsletter|signup|sign-up|subscribe|subscription|related"
    r"|recommended|more-stories|trending|share|sharing|social|promo|advert|ads?|sponsor"
    r"|sidebar|footer|breadcrumbs?|cookie|popup|modal|comment-form|paywall"
)
CHROME_CLASS = re.compile(rf"^(?:{_CHROME_WORDS})(?:$|[-_])|[-_](?:{_CHROME_WORDS})$", re.I)
BYLINE_CLASS = re.compile(
    r"(?:^|[-_])(?:author|byline|contributor|commenter|expert)(?:$|[-_])", re.I
)
AFFILIATION_CLASS = re.compile(
    r"(?:^|[-_])(?:affiliation|credentials?|position|job|role|bio|author-title)(?:$|[-_])", re.I
)

SelectorLookup = Callable[[str], SiteSelectors | None]


def _classes(el: etree._Element) -> list[str]:
    return (el.get("class") or "").split() + (el.get("id") or "").split()


def _xpath(el: etree._Element, path: str, **variables: str) -> list[etree._Element]:
    """Elements only, from an XPath query (lxml also returns strings and numbers)."""
    found = el.xpath(path, **variables)  # type: ignore[arg-type]
    return [x for x in found if isinstance(x, etree._Element)] if isinstance(found, list) else []


def _drop(el: etree._Element) -> None:
    """Remove ``el`` and its subtree, keeping the text that follows it."""
    cast(html.HtmlElement, el).drop_tree()


def _is_chrome(el: etree._Element) -> bool:
    if not isinstance(el.tag, str):
        return False
    if el.tag.lower() in CHROME_TAGS or (el.get("role") or "").lower() in CHROME_ROLES:
        return True
    return any(CHROME_CLASS.search(token) for token in _classes(el))


def _strip_chrome(root: etree._Element) -> None:
    """Remove chrome inside ``root``, never an element that holds most of its text."""
    total = len(text_of(root)) or 1
    for el in list(root.iter()):
        if el is root or el.getparent() is None or not _is_chrome(el):
            continue
        if len(text_of(el)) > total / 2:
            continue
        _drop(el)


def _meta(doc: etree._Element, *names: str) -> str | None:
    for name in names:
        for el in _xpath(doc, "//meta[@property=$n or @name=$n]", n=name):
            content = (el.get("content") or "").strip()
            if content:
                return content
    return None


STRUCTURED_BYTES = 200_000  # a JSON-LD block larger than this is not read
ARTICLE_TYPES = frozenset({"Article", "NewsArticle", "ReportageNewsArticle", "OpinionNewsArticle",
                           "AnalysisNewsArticle", "BlogPosting", "ScholarlyArticle", "WebPage"})  # fmt: skip


def structured_value(doc: etree._Element, key: str) -> str | None:
    """``key`` of the page's article in its JSON-LD (schema.org) blocks, when there is
    one; a block that is not valid JSON, or too large, is passed over."""
    import json

    for script in _xpath(doc, "//script[@type='application/ld+json']"):
        text = "".join(str(t) for t in script.itertext())
        if len(text) > STRUCTURED_BYTES:
            continue
        try:
            data = json.loads(text)
        except ValueError:
            continue
        for thing in _things(data):
            kinds = thing.get("@type")
            named = set(kinds) if isinstance(kinds, list) else {kinds}
            if named & ARTICLE_TYPES and isinstance(thing.get(key), str):
                return str(thing[key])
    return None


def _things(data: object) -> list[dict[str, object]]:
    """The objects of a JSON-LD document: itself, the items of a list, or its @graph."""
    items = data if isinstance(data, list) else [data]
    out: list[dict[str, object]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        graph = item.get("@graph")
        if isinstance(graph, list):
            out.extend(g for g in graph if isinstance(g, dict))
        else:
            out.append(item)
    return out


TITLE_SEPARATORS = (" | ", " — ", " – ", " - ", " :: ", " · ")


def _title(doc: etree._Element, root: etree._Element, body: etree._Element) -> str | None:
    """The headline a reader sees (the article's <h1>, else the page's); else the share
    title or the <title>, without the site's name after it."""
    h1 = next(root.iter("h1"), None)
    if h1 is None:
        h1 = next(body.iter("h1"), None)
    visible = text_of(h1).strip() if h1 is not None else ""
    if visible:
        return visible
    site = _meta(doc, "og:site_name", "application-name")
    title_el = doc.find(".//title")
    words = [str(t) for t in title_el.itertext()] if title_el is not None else []
    written = " ".join("".join(words).split())
    shared = _meta(doc, "og:title", "twitter:title")
    for candidate in (structured_value(doc, "headline"), shared, written):
        if candidate:
            return without_site_name(candidate, site)
    return None


def without_site_name(title: str, site: str | None) -> str:
    """``title`` less a trailing " | Site" (any pipe), or " — Site" when Site is the
    site's own name; a dash that is part of the title stays."""
    for separator in TITLE_SEPARATORS:
        head, found, tail = title.rpartition(separator)
        if not found or not head.strip():
            continue
        if separator == " | " or (site and tail.strip().casefold() == site.strip().casefold()):
            return head.strip()
    return title


def _page_date(doc: etree._Element) -> dt.date | None:
    published = _meta(doc, "article:published_time", "datePublished", "date")
    if published and (found := parse_date(published)):
        return found
    if (found := parse_date(structured_value(doc, "datePublished") or "")) is not None:
        return found
    for el in doc.iter("time"):
        if (found := parse_date(el.get("datetime") or "")) or (found := parse_date(text_of(el))):
            return found
    return None


def _article_root(body: etree._Element) -> etree._Element:
    candidates = _xpath(
        body, "//*[@itemprop='articleBody'] | //article | //main | //*[@role='main']"
    )

    def weight(el: etree._Element) -> int:
        # paragraph text as lxml reads it (C speed); only candidates are compared with it
        return sum(len(cast(html.HtmlElement, p).text_content()) for p in el.iter("p"))

    best = max(candidates, key=weight, default=None)
    return best if best is not None and weight(best) > 0 else body


def _byline_name(el: etree._Element) -> str | None:
    text = re.sub(r"^\s*by\s+", "", text_of(el), flags=re.I).strip().rstrip(":").strip()
    return text if looks_like_name(text) else None


def _first(el: etree._Element, selector: str | None) -> etree._Element | None:
    if not selector:
        return None
    try:
        found = el.cssselect(selector)
    except SelectorError as err:
        raise ConfigError(f"config.yaml: sites: bad CSS selector {selector!r} ({err})") from None
    return found[0] if found else None


def _paragraphs(
    el: etree._Element, base_url: str | None, *drop: etree._Element | None
) -> list[Paragraph]:
    clone = copy.deepcopy(el)
    # Drop the byline/affiliation elements in the clone by their position in the tree.
    paths = [el.getroottree().getpath(d) for d in drop if d is not None]
    base = el.getroottree().getpath(el)
    doomed = [m for path in paths for m in _xpath(clone, "." + path[len(base) :])]
    for match in doomed:
        if match is not clone and match.getparent() is not None:
            _drop(match)
    blocks = [b for b in iter_blocks(_wrap(clone), base_url) if b.kind != "hr"]
    return join_broken_paragraphs([b.para for b in blocks])


def _wrap(el: etree._Element) -> etree._Element:
    holder = etree.Element("div")
    holder.append(el)
    return holder


def _comment_from(
    container: etree._Element,
    name: str,
    base_url: str | None,
    author_el: etree._Element | None,
    affiliation_el: etree._Element | None,
    body_el: etree._Element | None,
) -> Comment:
    affiliation = text_of(affiliation_el).strip() or None if affiliation_el is not None else None
    if body_el is not None:
        paras = _paragraphs(body_el, base_url)
    else:
        paras = _paragraphs(container, base_url, author_el, affiliation_el)
    anchor = container.get("id") or (author_el.get("id") if author_el is not None else None)
    return Comment(name, affiliation, tuple(paras), anchor or None)


Found = list[tuple[etree._Element, Comment]]


def _by_selectors(root: etree._Element, site: SiteSelectors, base_url: str | None) -> Found:
    try:
        containers = root.cssselect(site.comment)
    except SelectorError as err:
        raise ConfigError(
            f"config.yaml: sites: bad CSS selector {site.comment!r} ({err})"
        ) from None
    comments: Found = []
    for container in containers:
        author = _first(container, site.author)
        if author is None:
            continue
        name = re.sub(r"^\s*by\s+", "", text_of(author), flags=re.I).strip().rstrip(":")
        if not name:
            continue
        comment = _comment_from(
            container, name, base_url, author,
            _first(container, site.affiliation), _first(container, site.body),
        )  # fmt: skip
        if comment.paragraphs:
            comments.append((container, comment))
    return comments


def _by_bylines(root: etree._Element, base_url: str | None) -> Found:
    bylines = [
        el
        for el in root.iter()
        if isinstance(el.tag, str)
        and any(BYLINE_CLASS.search(t) for t in _classes(el))
        and not any(AFFILIATION_CLASS.search(t) for t in _classes(el))
        and _byline_name(el)
    ]
    # Keep the outermost byline element of nested ones (<div class=author><span class=author-name>).
    # Ancestry is walked upwards (a few levels), never by scanning subtrees: linear in the page.
    marked = set(bylines)
    bylines = [b for b in bylines if not any(a in marked for a in b.iterancestors())]
    holding: dict[etree._Element, int] = {}  # element -> how many bylines it contains
    for b in bylines:
        for ancestor in b.iterancestors():
            holding[ancestor] = holding.get(ancestor, 0) + 1
    comments: Found = []
    seen: set[int] = set()
    for byline in bylines:
        container = byline.getparent()
        while container is not None and container is not root:
            if holding.get(container, 0) > 1:  # another expert's byline is in here too
                container = None
                break
            if any(
                p is not byline and byline not in p.iterancestors() for p in container.iter("p")
            ):
                break
            container = container.getparent()
        if container is None or container is root or id(container) in seen:
            continue
        seen.add(id(container))
        affiliation = next(
            (
                el
                for el in container.iter()
                if el is not byline
                and isinstance(el.tag, str)
                and any(AFFILIATION_CLASS.search(t) for t in _classes(el))
            ),
            None,
        )
        name = _byline_name(byline) or ""
        comment = _comment_from(container, name, base_url, byline, affiliation, None)
        if comment.paragraphs:
            comments.append((container, comment))
    return comments


def _is_label(text: str) -> bool:
    """A short line with no sentence punctuation: "Meridian Conversation"."""
    return 0 < len(text.split()) <= 6 and text.rstrip()[-1:] not in ".!?:"


def _intro(
    root: etree._Element, found: Found, base_url: str | None
) -> tuple[list[Paragraph], str | None, str | None]:
    """The paragraphs before the first comment, less headings and date lines; and the
    series label (a short line just before the title, e.g. <p class="series">) with its
    description (a wholly italic paragraph right after the title), which are not intro."""
    first, *rest = [container for container, _ in found]
    for container in rest:
        if container.getparent() is not None:
            _drop(container)
    first.set(STOP_ATTRIBUTE, "")
    paras: list[Paragraph] = []
    series = description = None
    after_title = False
    for block in iter_blocks(root, base_url):
        if block.kind == "stop" or (
            block.kind == "h" and block.text.strip().lower() in COMMENTS_HEADINGS
        ):
            break
        if block.kind == "h" and block.level == 1 and not after_title:
            # what came before the title is a kicker, a breadcrumb or the series label
            if paras and _is_label(block_text := plain_text(paras[-1])):
                series = block_text.strip()
            paras, after_title = [], True
            continue
        if block.kind in {"h", "hr"} or parse_date(block.text):
            continue
        if series and not paras and description is None and _is_whole(block.para, "em"):
            description = block.text.strip()
            continue
        paras.append(block.para)
    return join_broken_paragraphs(_strip_signoff(paras)), series, description


def parse_html(
    text: str, *, source: str, url: str | None, selectors_for: SelectorLookup
) -> Conversation:
    try:
        doc = html.document_fromstring(text)
    except (etree.ParserError, ValueError) as err:
        raise SourceError(source, f"not parseable HTML ({err})") from None
    canonical = next(
        (safe_href(el.get("href"), url) for el in _xpath(doc, "//link[@rel='canonical']")), None
    )
    page_url = canonical if canonical and urlsplit(canonical).scheme.startswith("http") else url
    site = selectors_for(urlsplit(page_url or "").hostname or "") if page_url else None
    profiled = apply_profile(doc, site) if site else None
    date = (profiled and profiled.date) or _page_date(doc)
    body = doc.find("body")
    if body is None:
        raise SourceError(source, "no <body> in the page")
    _strip_chrome(body)
    root = _article_root(body)
    title = (profiled and profiled.title) or _title(doc, root, body)
    found = _by_selectors(doc, site, page_url) if site else _by_bylines(root, page_url)
    if not found:
        if site:
            raise SourceError(source, f"no comments matched the selectors for {site.host}")
        blocks = list(iter_blocks(_wrap(copy.deepcopy(root)), page_url))
        return conversation_from_blocks(blocks, source=source, url=page_url, title=title, date=date)
    if not title:
        raise SourceError(source, "no title found (no og:title, <h1> or <title>)")
    intro, series, description = _intro(root, found, page_url)
    if profiled and profiled.intro is not None:
        intro = _paragraphs(profiled.intro, page_url)
    return Conversation(
        notes=(f"read with the site profile for {site.host} (config.yaml sites)",) if site else (),
        title=title,
        url=page_url,
        date=date,
        intro=tuple(intro),
        comments=tuple(comment for _, comment in found),
        series=series,
        series_description=description,
        source=source,
    )
