"""Reading a source's bytes: a local file or one http(s) URL, never anything else."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from digest.config import Fetch
from digest.errors import SourceError
from digest.sources.guard import AddressPolicy, AddressRefused, GuardedBackend, Resolver, deadline

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
MARKDOWN_TYPES = frozenset({"text/markdown", "text/x-markdown", "text/plain"})
FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/xml", "text/xml", "text/plain"}
)
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".mdown"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})


@dataclass(frozen=True)
class Document:
    """A source's text and what kind of text it is."""

    source: str  # as the user named it, for messages
    text: str
    kind: str  # "markdown" or "html"
    url: str | None  # the address it was fetched from (after redirects), if any


def is_url(source: str) -> bool:
    return source.strip().lower().startswith(("http://", "https://"))


def _decode(source: str, data: bytes, encoding: str | None = None) -> str:
    if not data.strip():
        raise SourceError(source, "empty file")
    if b"\x00" in data[:8192]:
        raise SourceError(source, "binary file, not Markdown or HTML")
    try:
        return data.decode(encoding or "utf-8").removeprefix("\ufeff")
    except (UnicodeDecodeError, LookupError):
        raise SourceError(source, f"not valid {encoding or 'UTF-8'} text") from None


def _sniff(text: str) -> str:
    head = text.lstrip()[:2048].lower()
    if head.startswith(("<!doctype html", "<html")) or "<body" in head or "<article" in head:
        return "html"
    return "markdown"


def read_file(source: str) -> Document:
    path = Path(source)
    if not path.exists():
        raise SourceError(source, "no such file")
    if not path.is_file():
        raise SourceError(source, "not a regular file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SourceError(source, f"cannot read ({err.strerror})") from None
    text = _decode(source, data)
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        kind = "html"
    elif suffix in MARKDOWN_SUFFIXES:
        kind = "markdown" if _sniff(text) == "markdown" or suffix != ".txt" else "html"
    else:
        kind = _sniff(text)
    return Document(source, text, kind, None)


def make_client(settings: Fetch, resolver: Resolver | None = None) -> httpx.Client:
    """The one HTTP client for fetching sources: bounded time, redirects and identity,
    and connections only to addresses the policy allows (see sources.guard). No proxy
    from the environment: it would be connected to instead of the checked address."""
    backend = GuardedBackend(AddressPolicy(settings.allow_private_addresses))
    if resolver is not None:
        backend.resolver = resolver
    transport = httpx.HTTPTransport()
    # httpx takes no network backend of its own; its connection pool does
    transport._pool._network_backend = backend
    return httpx.Client(
        transport=transport,
        trust_env=False,
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        headers={
            "User-Agent": settings.user_agent,
            "Accept": "text/html,application/xhtml+xml,text/markdown;q=0.9,text/plain;q=0.8",
        },
    )


@dataclass(frozen=True)
class Fetched:
    data: bytes
    media: str  # the content type, without parameters
    charset: str | None
    url: str  # after redirects


def fetch_bytes(
    source: str, client: httpx.Client, settings: Fetch, accept: frozenset[str], what: str
) -> Fetched:
    """GET one address within ``total_timeout``; refuse errors, content types not in
    ``accept`` (``what`` names them in the message), bodies over ``max_bytes`` and
    addresses the policy refuses."""
    max_bytes = settings.max_bytes
    try:
        with deadline(settings.total_timeout), client.stream("GET", source) as response:
            if response.status_code >= 400:
                phrase = response.reason_phrase or "error"
                raise SourceError(source, f"HTTP {response.status_code} {phrase}")
            media = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if media not in accept:
                raise SourceError(source, f"content type {media or '(none)'!r} is not {what}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise SourceError(source, f"larger than the {max_bytes}-byte limit")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise SourceError(source, f"larger than the {max_bytes}-byte limit")
                chunks.append(chunk)
            return Fetched(b"".join(chunks), media, response.charset_encoding, str(response.url))
    except httpx.TooManyRedirects:
        raise SourceError(source, "too many redirects") from None
    except AddressRefused as err:
        raise SourceError(source, str(err)) from None
    except httpx.TimeoutException:
        raise SourceError(
            source, f"timed out (fetch.total_timeout is {settings.total_timeout:g}s)"
        ) from None
    except httpx.UnsupportedProtocol:
        raise SourceError(source, "redirected to an address that is not http or https") from None
    except httpx.HTTPError as err:
        raise SourceError(source, f"cannot fetch ({type(err).__name__}: {err})") from None
    except (httpx.InvalidURL, ValueError) as err:  # "http://[::1", "http://a:b:c/"
        raise SourceError(source, f"not a valid web address ({err})") from None


def fetch_url(source: str, client: httpx.Client, settings: Fetch) -> Document:
    """One conversation page (HTML or Markdown), within the fetch limits."""
    fetched = fetch_bytes(source, client, settings, HTML_TYPES | MARKDOWN_TYPES, "HTML or Markdown")
    kind = "html" if fetched.media in HTML_TYPES else "markdown"
    return Document(source, _decode(source, fetched.data, fetched.charset), kind, fetched.url)
