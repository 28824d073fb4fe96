"""Sources: a local file or an http(s) URL -> Conversation."""

from __future__ import annotations

import httpx

from digest.config import Settings
from digest.errors import SourceError
from digest.model import Conversation
from digest.sources.fetch import Document, fetch_url, is_url, read_file
from digest.sources.html import parse_html
from digest.sources.markdown import parse_markdown
from digest.sources.rich import safe_href

__all__ = ["conversation_from", "read_conversation", "read_document"]


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
    document = read_document(source, settings=settings, url=url, client=client)
    return conversation_from(document, settings=settings, url=url)


def read_document(
    source: str, *, settings: Settings, url: str | None = None, client: httpx.Client | None = None
) -> Document:
    """The text of ``source`` (a file, or a page fetched with ``client``), unread."""
    if (url is not None and safe_href(url, None) is None) or (url and not is_url(url)):
        raise SourceError(source, f"--url {url!r} is not an absolute http(s) address")
    if is_url(source):
        if client is None:
            raise SourceError(source, "no HTTP client to fetch it with")
        return fetch_url(source, client, settings.fetch)
    if "://" in source:
        raise SourceError(source, "only http and https addresses can be fetched")
    return read_file(source)


def conversation_from(document: Document, *, settings: Settings, url: str | None) -> Conversation:
    """Read the conversation in ``document``; ``url`` as for :func:`read_conversation`."""
    page_url = url or document.url
    if document.kind == "html":
        return parse_html(
            document.text,
            source=document.source,
            url=page_url,
            selectors_for=settings.selectors_for,
        )
    return parse_markdown(document.text, source=document.source, url=page_url)
