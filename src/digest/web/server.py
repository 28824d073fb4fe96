"""Running the public app: a listening socket tuned for small requests, and uvicorn."""

from __future__ import annotations

import socket

import uvicorn
from starlette.applications import Starlette

from digest.errors import DigestError


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound socket with TCP_NODELAY, which accepted connections inherit: without it
    each small answer on a kept-alive connection waits ~40 ms for a delayed ACK."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise DigestError(f"cannot listen on {host}:{port} ({err.strerror})") from None
    return sock


def run(app: Starlette, sock: socket.socket) -> None:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
