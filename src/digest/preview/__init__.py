"""The editor's preview: a local web app that shows an issue as subscribers get it.

A watcher thread re-renders the issue whenever the issue file, config.yaml or a
template changes. A broken edit is shown as an error while the last good render stays.
The page polls ``/state`` and reloads its frames when the version moves on.

Routes: ``/`` (the app), ``/html``, ``/text``, ``/eml``, ``/checks`` (JSON), ``/state``
(JSON), and the app's own static files. Nothing else is served.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.utils import parseaddr
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import html as lxml_html
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.build import Build, build, notes_without_fields
from digest.config import load_settings
from digest.errors import DigestError
from digest.render.templates import template_folder

log = logging.getLogger("digest.preview")

# The email may reference remote images or fonts; the preview never loads them.
EMAIL_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:"
APP_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-src 'self'"
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}


@dataclass
class PreviewState:
    """The last good build, the current error if the latest edit broke it, and a version
    that moves on every time either changes."""

    issue_path: Path
    config_path: Path | None
    version: int = 0  # moves on with every render attempt
    good_version: int = 0  # moves on only when a render succeeds
    good: Build | None = None
    error: str | None = None
    signature: tuple[tuple[str, int, int], ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self) -> None:
        """Render again; the files' signature is taken first, so an edit made while
        rendering is seen by the next look."""
        self.signature = _signature(self.watched_files())
        try:
            settings = load_settings(self.config_path)
            result = build(self.issue_path, settings)
        except DigestError as err:
            self._set(None, str(err))
        except Exception as err:  # a preview must outlive any bad edit
            log.exception("unexpected error while rendering")
            self._set(None, f"{self.issue_path}: unexpected error: {err}")
        else:
            self._set(result, None)

    def _set(self, result: Build | None, error: str | None) -> None:
        with self.lock:
            self.version += 1
            if result is not None:
                self.good = result
                self.good_version = self.version
            self.error = error

    def watched_files(self) -> list[Path]:
        files = [self.issue_path]
        if self.config_path is not None:
            files.append(self.config_path)
        try:
            settings = load_settings(self.config_path)
            folder = template_folder(settings.render.templates)
            files.extend(sorted(p for p in folder.iterdir() if p.is_file()))
        except (DigestError, OSError):
            pass
        return files


def _signature(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for path in paths:
        try:
            stat = path.stat()
            out.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            out.append((str(path), -1, -1))
    return tuple(out)


def watch(state: PreviewState, stop: threading.Event, interval: float = 0.25) -> None:
    """Re-render whenever a watched file changes, until ``stop`` is set."""
    while not stop.wait(interval):
        if _signature(state.watched_files()) != state.signature:
            state.refresh()


def _links(result: Build) -> list[dict[str, str]]:
    doc: lxml_html.HtmlElement = lxml_html.document_fromstring(result.sample.html)
    return [
        {"href": a.get("href") or "", "text": " ".join(a.text_content().split())}
        for a in doc.iter("a")
    ]


def _headers(result: Build) -> list[list[str]]:
    message = email.message_from_bytes(result.eml, policy=email.policy.default)
    wanted = (
        "From",
        "Reply-To",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    )
    return [[key, str(message[key])] for key in wanted if message[key] is not None]


def state_json(state: PreviewState) -> dict[str, Any]:
    with state.lock:
        result, error, version, good = state.good, state.error, state.version, state.good_version
    body: dict[str, Any] = {
        "version": version,
        "good_version": good,
        "error": error,
        "issue": str(state.issue_path),
    }
    if result is None:
        return body | {"ready": False}
    name, address = parseaddr(result.sample.sender)
    return body | {
        "ready": True,
        "slug": result.slug,
        "inbox": {
            "from_name": name or address,
            "from_address": address,
            "subject": result.sample.subject,
            "preheader": result.rendered.preheader,
        },
        "headers": _headers(result),
        "links": _links(result),
        "findings": [{"level": f.level, "message": f.message} for f in result.findings],
        "text": result.sample.text,
        "html_bytes": len(result.sample.html.encode()),
        # where the templates use subscriber fields: what a reader without them gets
        "without_fields": result.without_fields is not None,
        "field_notes": notes_without_fields(result.rendered),
    }


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(
    issue_path: Path,
    config_path: Path | None,
    *,
    watch_interval: float = 0.25,
    hosts: tuple[str, ...] = LOCAL_HOSTS,
) -> Starlette:
    """The preview app. It answers only requests whose Host is one it is bound to (a web
    page elsewhere cannot reach it by pointing its own name at 127.0.0.1: DNS
    rebinding)."""
    state = PreviewState(issue_path, config_path)
    state.refresh()

    def current(request: Request) -> Build:
        if state.good is None:
            raise _NotReady(state.error or "not rendered yet")
        return state.good

    def artefact(make: Callable[[Build], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                return make(current(request))
            except _NotReady as err:
                return PlainTextResponse(str(err), status_code=503)

        return endpoint

    def html(request: Request) -> Response:
        """The email's HTML as the sample reader gets it, or (``?reader=bare``) as a
        subscriber without any field does."""
        try:
            result = current(request)
        except _NotReady as err:
            return PlainTextResponse(str(err), status_code=503)
        shown = result.sample
        if request.query_params.get("reader") == "bare" and result.without_fields:
            shown = result.without_fields
        return Response(
            shown.html, media_type="text/html", headers={"Content-Security-Policy": EMAIL_CSP}
        )

    def page(request: Request) -> Response:
        text = resources.files(__package__).joinpath("static/index.html").read_text("utf-8")
        return Response(text, media_type="text/html", headers={"Content-Security-Policy": APP_CSP})

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        data = resources.files(__package__).joinpath("static", name).read_bytes()
        return Response(data, media_type=STATIC[name])

    routes = [
        Route("/", page),
        Route("/html", html),
        Route("/text", artefact(lambda b: PlainTextResponse(b.sample.text))),
        Route(
            "/eml",
            artefact(
                lambda b: Response(
                    b.eml,
                    media_type="message/rfc822",
                    headers={"Content-Disposition": f'inline; filename="{b.slug}.eml"'},
                )
            ),
        ),
        Route(
            "/checks",
            artefact(
                lambda b: JSONResponse(
                    [{"level": f.level, "message": f.message} for f in b.findings]
                )
            ),
        ),
        Route(
            "/state",
            lambda request: JSONResponse(state_json(state), headers={"Cache-Control": "no-store"}),
        ),
        Route("/static/{name}", static),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = threading.Thread(target=watch, args=(state, stop, watch_interval), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=2)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))],
    )
    app.state.preview = state
    return app


class _NotReady(Exception):
    pass


def serve(
    issue_path: Path,
    config_path: Path | None,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
) -> None:
    """Serve the preview until interrupted; ``on_ready`` gets the address once listening."""
    import uvicorn

    from digest.web.server import listening_socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = listening_socket(host, port)
    bound_port = sock.getsockname()[1]
    app = create_app(issue_path, config_path, hosts=(*LOCAL_HOSTS, host))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets)
        on_ready(f"http://{shown_host}:{bound_port}/")

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])
