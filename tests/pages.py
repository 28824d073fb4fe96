"""A real HTTP server on 127.0.0.1 that serves whatever pages a test sets up."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Page:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(
        default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"}
    )
    delay: float = 0.0  # seconds to wait before answering
    drip: float = 0.0  # send the body one byte at a time, this many seconds apart


class PageServer:
    """Serves ``pages[path]``; records every request path it was asked for."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.pages: dict[str, Page] = {}
        self.closed = threading.Event()
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                page = server.pages.get(
                    self.path, Page(b"not here", 404, {"Content-Type": "text/plain"})
                )
                if page.delay:
                    time.sleep(page.delay)
                try:
                    self.send_response(page.status)
                    for key, value in page.headers.items():
                        self.send_header(key, value)
                    if "Content-Length" not in page.headers:
                        self.send_header("Content-Length", str(len(page.body)))
                    self.end_headers()
                    if not page.drip:
                        self.wfile.write(page.body)
                    for byte in page.body if page.drip else b"":
                        if server.closed.is_set():
                            break  # the test is over: stop dripping into its successors
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(page.drip)
                except OSError:  # the client went away (a broken pipe, a TLS EOF): fine
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hung up is not the test's business; nothing on stderr

        self._httpd = QuietServer((host, 0), Handler)
        self.scheme = "https" if tls is not None else "http"
        if tls is not None:  # HTTPS with a test CA's certificate
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", **kwargs: object) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.pages[path] = Page(data, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def close(self) -> None:
        self.closed.set()
        self._httpd.shutdown()
        self._httpd.server_close()
