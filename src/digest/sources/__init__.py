"""Sources: a local file or an http(s) URL -> Conversation."""

from __future__ import annotations

import httpx

from digest.config import Settings
from digest.errors import SourceError
from digest.model import Conversation
from digest.sources.fetch import fetch_url, is_url, read_file
from digest.sources.html import parse_html
from digest.sources.markdown import parse_markdown
from digest.sources.rich import safe_href

__all__ = ["read_conversation"]


def read_conversation(
    source: str,
    *,
    settings: Settings,
    url: str | None = None,
    client: httpx.Client | None = None,
) -> Conversation:
    """Read one conversation from ``source`` (a path or an http(s) URL).

    ``url`` is the public address of a local file's conversation; for a fetched page the
    page's own canonical address wins. ``client`` is used for http(s) sources and must be
    given for them.
    """
    if (url is not None and safe_href(url, None) is None) or (url and not is_url(url)):
        raise SourceError(source, f"--url {url!r} is not an absolute http(s) address")
    if is_url(source):
        if client is None:
            raise SourceError(source, "no HTTP client to fetch it with")
        document = fetch_url(source, client, settings.fetch)
    elif "://" in source:
        raise SourceError(source, "only http and https addresses can be fetched")
    else:
        document = read_file(source)
    page_url = url or document.url
    if document.kind == "html":
        return parse_html(
            document.text, source=source, url=page_url, selectors_for=settings.selectors_for
        )
    return parse_markdown(document.text, source=source, url=page_url)
