"""The public app under hostile load, against a real `digest serve`: every route reads at
most what it needs, JSON is bounded before it is parsed, and idle or half-sent
connections never starve real readers or flood the log."""

from __future__ import annotations

import os
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.store.sqlite import SQLiteStore
from digest.tokens import make_token
from tests.helpers import SIGNING_ENV, SIGNING_KEY, start_serve

MAILGUN_KEY = "mailgun-signing-key-0123"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Serve:
    def __init__(self, folder: Path, extra_config: str = "", limit: tuple[int, int] | None = None):
        (folder / "config.yaml").write_text(
            f"unsubscribe:\n  signing_key_env: {SIGNING_ENV}\n{extra_config}", encoding="utf-8"
        )
        self.store = SQLiteStore(folder / "digest.sqlite3")
        self.store.upsert_subscribers([("ann@example.org", None, {})], resubscribe=False)
        ann = self.store.get_subscriber("ann@example.org")
        assert ann is not None
        self.token = make_token(SIGNING_KEY.encode(), self.store.list_identity(), ann.uid)
        env = {**os.environ, SIGNING_ENV: SIGNING_KEY, "DIGEST_MAILGUN_WEBHOOK_KEY": MAILGUN_KEY}
        self.process, self.base = start_serve(folder, env, open_files=limit)
        host, port = self.base.removeprefix("http://").rstrip("/").split(":")
        self.address = (host, int(port))

    def stop(self) -> str:
        """Stop the server; what it logged."""
        self.process.terminate()
        _, err = self.process.communicate(timeout=20)
        self.store.close()
        return str(err)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    made = Serve(tmp_path)
    try:
        yield made
    finally:
        if made.process.poll() is None:
            made.stop()


def raw_request(address: tuple[str, int], head: bytes, body_chunks: Any = ()) -> bytes:
    """Send a request by hand; the server's answer (whatever it said before closing)."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what we want
        answer = b""
        try:
            while piece := sock.recv(65536):
                answer += piece
                if b"\r\n\r\n" in answer:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
        return answer


def test_a_huge_body_to_an_unsubscribe_link_is_refused_without_being_read(serve: Serve) -> None:
    path = f"/unsubscribe/{serve.token}".encode()
    before = rss_kib(serve.process.pid)
    declared = raw_request(
        serve.address,
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 400000000\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n",
        (b"x" * 1_000_000 for _ in range(50)),
    )
    assert declared.startswith(b"HTTP/1.1 413"), declared[:200]
    chunk = b"x" * 1_000_000
    chunked = raw_request(
        serve.address,
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        (b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(80)),
    )
    assert chunked.startswith(b"HTTP/1.1 413"), chunked[:200]
    assert rss_kib(serve.process.pid) - before < 20_000  # KiB: nothing like the body's size
    # the person is not unsubscribed by a refused request, and a real one-click still works
    one_click = httpx.post(
        serve.base + path.decode().lstrip("/"), content=b"List-Unsubscribe=One-Click", timeout=10
    )
    assert one_click.status_code == 200


def test_deeply_nested_json_to_a_webhook_is_a_400_with_one_log_line(serve: Serve) -> None:
    for _ in range(3):
        answer = httpx.post(serve.base + "webhooks/mailgun", content=b"[" * 100_000, timeout=10)
        assert answer.status_code == 400
    log = serve.stop()
    assert "Traceback" not in log and "RecursionError" not in log


def test_real_readers_are_answered_while_a_thousand_idle_connections_are_held(
    tmp_path: Path,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"this machine's hard limit on open files ({hard}) is below the test's")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))  # for our own sockets
    serve = Serve(tmp_path, limit=(1024, 4096))  # systemd's default soft limit
    idle: list[socket.socket] = []
    try:
        for _ in range(1100):
            sock = socket.create_connection(serve.address, timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # half a request, never finished
            idle.append(sock)
        started = time.monotonic()
        answered = 0
        while answered < 5 and time.monotonic() - started < 30:
            try:
                if httpx.get(serve.base + "healthz", timeout=5).status_code == 200:
                    answered += 1
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answered == 5, "readers were not answered while idle connections were held"
    finally:
        for sock in idle:
            sock.close()
        log = serve.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(log) < 200_000, f"the log grew to {len(log)} characters"


def test_a_connection_that_sends_half_a_request_is_closed_after_the_header_timeout(
    tmp_path: Path,
) -> None:
    serve = Serve(tmp_path, "web:\n  header_timeout: 1\n")
    try:
        with socket.create_connection(serve.address, timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            assert sock.recv(100) == b""  # closed by the server, not answered
            assert time.monotonic() - started < 8
        with socket.create_connection(serve.address, timeout=10) as sock:  # keep-alive too
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b"\r\n\r\nok"):
                answer += sock.recv(1000)
            assert answer.startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next request, never finished
            assert sock.recv(100) == b""
    finally:
        serve.stop()
