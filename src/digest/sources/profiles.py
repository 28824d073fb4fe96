"""A site profile (config.yaml ``sites:``) beyond the comments: the title, the date and
the intro where the site keeps them, and elements to remove before anything is read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cssselect import SelectorError
from lxml import etree

from digest.config import SiteSelectors
from digest.errors import ConfigError
from digest.sources.lines import parse_date
from digest.sources.rich import text_of


def _select(doc: etree._Element, selector: str) -> list[etree._Element]:
    try:
        return list(doc.cssselect(selector))
    except SelectorError as err:
        raise ConfigError(f"config.yaml: sites: bad CSS selector {selector!r} ({err})") from None


@dataclass(frozen=True)
class Profiled:
    title: str | None
    date: dt.date | None
    intro: etree._Element | None


def apply_profile(doc: etree._Element, site: SiteSelectors) -> Profiled:
    """Remove what ``site.drop`` names, then read its title, date and intro elements."""
    for selector in site.drop:
        for element in _select(doc, selector):
            parent = element.getparent()
            if parent is not None:
                element.drop_tree()  # type: ignore[attr-defined]
    title = date = intro = None
    if site.title and (found := _select(doc, site.title)):
        title = text_of(found[0]).strip() or None
    if site.date and (found := _select(doc, site.date)):
        date = parse_date(found[0].get("datetime") or "") or parse_date(text_of(found[0]))
    if site.intro and (found := _select(doc, site.intro)):
        intro = found[0]
    return Profiled(title, date, intro)
