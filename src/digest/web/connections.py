"""Connections to the public app: bounded in number and in how long a request may take
to arrive, so idle or half-sent connections never starve real readers, and a log that
says each trouble once a minute rather than once a connection.

- The limit on open files is raised to what the system allows (systemd's default soft
  limit is 1,024; its hard limit is far higher): every connection is an open file.
- At most ``web.max_connections`` connections at once (and never so many that the
  process would run out of files): one over that is closed as soon as it is accepted,
  which costs nothing and keeps accept() working for everyone else.
- A connection gets ``web.header_timeout`` seconds to send a request's headers, first
  or next; one that sends half a request and waits is closed then.
- Repeated log lines (the same message from the same logger) are written once a minute,
  with a count of those left out.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

FILES_KEPT = 64  # open files left for the database, logs and templates


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a connection cap and a header timeout."""

    max_connections: ClassVar[int] = 1000
    header_timeout: ClassVar[float] = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _cycle_before: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("too many connections (over %d): new ones are closed", self.max_connections)
            transport.close()
            return
        self._await_headers()

    def _await_headers(self) -> None:
        self._cycle_before = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        if self.cycle is self._cycle_before and not self.transport.is_closing():
            self.transport.close()  # half a request (or none) after header_timeout seconds

    def handle_events(self) -> None:
        super().handle_events()
        timer = self._header_timer
        if timer is not None and self.cycle is not self._cycle_before:
            timer.cancel()  # the headers arrived; the app takes it from here
            self._header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._await_headers()  # the next request on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)


def configure(max_connections: int, header_timeout: float) -> int:
    """Set the limits for this process (raising its open-files limit first); the number
    of connections it will hold."""
    files = raise_open_files_limit()
    GuardedH11Protocol.max_connections = max(16, min(max_connections, files - FILES_KEPT))
    GuardedH11Protocol.header_timeout = header_timeout
    return GuardedH11Protocol.max_connections


class OncePerInterval(logging.Filter):
    """Lets a message (logger and format string) through once per ``interval`` seconds;
    the next one through says how many were left out meanwhile."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self.last: dict[tuple[str, str], float] = {}
        self.dropped: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True  # access lines and the like are not repeated trouble
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self.last.get(key, -self.interval) < self.interval:
            self.dropped[key] = self.dropped.get(key, 0) + 1
            return False
        self.last[key] = now
        left_out = self.dropped.pop(key, 0)
        if left_out:
            record.msg = f"{record.msg} (and {left_out} more like it in the last minute)"
        record.exc_info = record.exc_info if not left_out else None
        return True


log = logging.getLogger("digest.web")
_THROTTLED = ("uvicorn.error", "asyncio", "digest.web")


def throttle_logs(interval: float = 60.0) -> None:
    for name in _THROTTLED:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OncePerInterval) for f in logger.filters):
            logger.addFilter(OncePerInterval(interval))
