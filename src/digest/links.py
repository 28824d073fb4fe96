"""Links the newsletter sends readers along: query parameters set on a URL, and the UTM
tags that tell a publisher's analytics the visit came from this newsletter."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from digest.config import Utm


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` set in its query string; other parameters and the fragment kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def utm_params(utm: Utm | None, slug: str) -> dict[str, str] | None:
    """The UTM tags configured under compose.utm for the issue ``slug`` (None: off)."""
    if utm is None:
        return None
    return {
        "utm_source": utm.source,
        "utm_medium": utm.medium,
        "utm_campaign": utm.campaign.format(slug=slug),
    }


def tracked(url: str, utm: dict[str, str] | None) -> str:
    """``url`` with the UTM tags, when there are any."""
    return with_query(url, utm) if utm else url
