"""Where a fetch may connect, and for how long in all.

Every connection the composer opens goes through :class:`GuardedBackend`: the host name
is resolved here, each address is checked against the policy, and the socket connects
to an address that passed, so what was checked is what is connected to (a name that
resolves to something else a moment later changes nothing). By default loopback,
private, link-local, multicast and reserved addresses are refused, first request or
redirect alike; ``fetch.allow_private_addresses`` turns that off (``true``) or allows
listed addresses and networks.

The same backend holds a fetch to ``fetch.total_timeout``: every read and write gets
at most the time left, so a server dripping a byte at a time cannot keep it waiting.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpcore
from httpcore._backends.sync import SyncStream

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
Connector = Callable[[tuple[str, int], float | None], socket.socket]

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "digest_fetch_deadline", default=None
)


class AddressRefused(Exception):
    """A fetch would connect to an address the policy refuses."""

    def __init__(self, host: str, address: str, kind: str) -> None:
        self.host, self.address, self.kind = host, address, kind
        named = host if host == address else f"{host} ({address})"
        super().__init__(
            f"refused to connect to {named}: a {kind} address "
            "(fetch.allow_private_addresses allows it)"
        )


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise httpcore.ConnectError(f"cannot resolve {host} ({err.strerror})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _connect(address: tuple[str, int], timeout: float | None) -> socket.socket:
    return socket.create_connection(address, timeout)


class AddressPolicy:
    """Which addresses a fetch may connect to."""

    def __init__(self, allow: bool | Iterable[str] = False) -> None:
        self.allow_all = allow is True
        listed = [] if isinstance(allow, bool) else list(allow)
        self.allowed = [ipaddress.ip_network(item, strict=False) for item in listed]

    def refusal(self, address: str) -> str | None:
        """What kind of address this is when it is refused, else None."""
        if self.allow_all:
            return None
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed):
            return None
        for kind, flag in (
            ("loopback", ip.is_loopback),
            ("link-local", ip.is_link_local),
            ("multicast", ip.is_multicast),
            ("unspecified", ip.is_unspecified),
            ("private", ip.is_private),
            ("reserved", ip.is_reserved or not ip.is_global),
        ):
            if flag:
                return kind
        return None


class _DeadlineStream(SyncStream):
    """A socket stream whose reads and writes never outlast the fetch's deadline."""

    @staticmethod
    def _bounded(timeout: float | None) -> float | None:
        deadline = _deadline.get()
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the fetch ran past fetch.total_timeout")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return super().read(max_bytes, self._bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        super().write(buffer, self._bounded(timeout))

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        """The TLS stream keeps the deadline too (httpcore's own would not): an HTTPS
        server that drips bytes is cut off like a plain one."""
        upgraded = super().start_tls(ssl_context, server_hostname, self._bounded(timeout))
        sock = upgraded.get_extra_info("socket")
        return _DeadlineStream(sock) if isinstance(sock, ssl.SSLSocket) else upgraded


class GuardedBackend(httpcore.NetworkBackend):
    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver = system_resolver,
        connect: Connector = _connect,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.connect = connect

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.resolver(host, port)
        for address in addresses:  # every address, before any connection
            kind = self.policy.refusal(address)
            if kind is not None:
                raise AddressRefused(host, address, kind)
        last: OSError | None = None
        for address in addresses:
            try:
                sock = self.connect((address, port), _DeadlineStream._bounded(timeout))
            except TimeoutError:
                raise httpcore.ConnectTimeout(f"connecting to {host} timed out") from None
            except OSError as err:
                last = err
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _DeadlineStream(sock)
        raise httpcore.ConnectError(f"cannot connect to {host} ({last or 'no address'})")


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every connection, read and write of the fetches inside ends within ``seconds``."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)
