"""Running the public app: a listening socket tuned for small requests, uvicorn with
access logs (personal tokens taken out of them), proxies and workers."""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from digest.errors import DigestError
from digest.web.connections import GuardedH11Protocol, configure, throttle_logs

# Unsubscribe and confirmation links name a person: their tokens never reach a log.
_TOKEN_PATH = re.compile(r"/(unsubscribe|confirm)/[^/?\s\"]+")


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_PATH.sub(r"/\1/[token]", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def redact_access_log() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound socket with TCP_NODELAY, which accepted connections inherit: without it
    each small answer on a kept-alive connection waits ~40 ms for a delayed ACK."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        # listening at once: a client that connects as soon as the address is printed
        # waits in the backlog while the app starts, instead of being refused
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise DigestError(f"cannot listen on {host}:{port} ({err.strerror})") from None
    return sock


@dataclass(frozen=True)
class Options:
    root_path: str = ""
    proxy_headers: bool = False
    trusted_proxies: str = "127.0.0.1"  # whose X-Forwarded-For / -Proto to believe
    access_log: bool = True
    workers: int = 1
    max_connections: int = 1000
    header_timeout: float = 10.0


def _config(app: ASGIApp | str, options: Options) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        log_level="info" if options.access_log else "warning",
        access_log=options.access_log,
        root_path=options.root_path,
        proxy_headers=options.proxy_headers,
        forwarded_allow_ips=options.trusted_proxies if options.proxy_headers else "",
        workers=options.workers,
        server_header=False,
        http=GuardedH11Protocol,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16_384,  # request line and headers
        backlog=2048,
    )


def run(app: ASGIApp, sock: socket.socket, options: Options = Options()) -> None:
    configure(options.max_connections, options.header_timeout)
    throttle_logs()
    config = _config(app, options)
    redact_access_log()
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(sock: socket.socket, options: Options) -> None:
    """Several worker processes on one socket, each making the app with the factory
    (``digest.web:app``; the config path goes to them in $DIGEST_CONFIG)."""
    from uvicorn.supervisors import Multiprocess

    config = _config("digest.web:app", options)
    redact_access_log()
    Multiprocess(config, sockets=[sock]).run()
