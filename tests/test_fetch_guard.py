"""Fetches go only where they are allowed, and end within fetch.total_timeout.

No test here opens a connection outside 127.0.0.0/8: private and link-local addresses
come from a fake resolver and are refused before any connection is attempted (the fake
connector would record one)."""

from __future__ import annotations

import socket

import pytest

from digest.config import Fetch, Settings
from digest.errors import SourceError
from digest.sources import read_conversation
from digest.sources.fetch import make_client
from tests.conftest import FIXTURES
from tests.pages import PageServer


def settings_allowing(*addresses: str, **fetch: object) -> Settings:
    return Settings(fetch=Fetch(allow_private_addresses=addresses, **fetch))  # type: ignore[arg-type]


def test_a_redirect_to_another_loopback_address_is_refused(page_server: PageServer) -> None:
    inside = PageServer(host="127.0.0.2")
    try:
        secret = inside.add("/admin", (FIXTURES / "conversation-page.html").read_bytes())
        start = page_server.add("/go", status=302, headers={"Location": secret})
        settings = settings_allowing("127.0.0.1")
        with make_client(settings.fetch) as client, pytest.raises(SourceError) as refused:
            read_conversation(start, settings=settings, client=client)
        assert "127.0.0.2" in str(refused.value) and "loopback" in str(refused.value)
        assert inside.requests == []  # never reached
    finally:
        inside.close()


def test_the_allowed_address_itself_is_fetched(page_server: PageServer) -> None:
    url = page_server.add("/c", (FIXTURES / "conversation-page.html").read_bytes())
    settings = settings_allowing("127.0.0.1")
    with make_client(settings.fetch) as client:
        conversation = read_conversation(url, settings=settings, client=client)
    assert conversation.comments


def test_by_default_a_name_that_resolves_to_loopback_is_refused() -> None:
    settings = Settings()
    with (
        make_client(settings.fetch, resolver=lambda host, port: ["127.0.0.1"]) as client,
        pytest.raises(SourceError, match=r"news\.example\.org \(127\.0\.0\.1\).*loopback"),
    ):
        read_conversation("http://news.example.org/c", settings=settings, client=client)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.5", "private"),
        ("192.168.1.20", "private"),
        ("172.16.9.9", "private"),
        ("169.254.169.254", "link-local"),
        ("fd00::1", "private"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "reserved"),
        ("::ffff:10.0.0.5", "private"),
    ],
)
def test_private_link_local_and_reserved_addresses_are_refused_before_any_connection(
    address: str, kind: str
) -> None:
    attempts: list[tuple[str, int]] = []

    def never(target: tuple[str, int], timeout: float | None) -> socket.socket:
        attempts.append(target)
        raise AssertionError("a connection was attempted")

    settings = Settings()
    client = make_client(settings.fetch, resolver=lambda host, port: ["93.184.215.14", address])
    client._transport._pool._network_backend.connect = never  # type: ignore[attr-defined]
    with client, pytest.raises(SourceError, match=kind):
        read_conversation("https://metadata.example.org/latest", settings=settings, client=client)
    assert attempts == []


def test_a_server_that_drips_bytes_is_cut_off_at_the_total_timeout(
    page_server: PageServer,
) -> None:
    url = page_server.add("/slow", b"<html><body>" + b" " * 40 + b"</body></html>", drip=0.2)
    settings = settings_allowing("127.0.0.1", total_timeout=1.0, read_timeout=5.0)
    with make_client(settings.fetch) as client, pytest.raises(SourceError) as stopped:
        read_conversation(url, settings=settings, client=client)
    assert "total_timeout" in str(stopped.value)


def test_allowed_networks_must_be_addresses() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        Fetch(allow_private_addresses=("intranet",))


def test_an_https_server_that_drips_bytes_is_cut_off_at_the_total_timeout() -> None:
    import ssl
    import time

    import trustme

    ca = trustme.CA()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    server = PageServer(tls=server_context)
    try:
        url = server.add("/slow", b"<html><body>" + b" " * 200 + b"</body></html>", drip=0.2)
        assert url.startswith("https://")
        settings = settings_allowing("127.0.0.1", total_timeout=1.5, read_timeout=5.0)
        client = make_client(settings.fetch)
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        client._transport._pool._ssl_context = trusting  # type: ignore[attr-defined]
        started = time.monotonic()
        with client, pytest.raises(SourceError) as stopped:
            read_conversation(url, settings=settings, client=client)
        assert "total_timeout" in str(stopped.value)
        assert time.monotonic() - started < 10  # the body alone would take 40 s
    finally:
        server.close()
