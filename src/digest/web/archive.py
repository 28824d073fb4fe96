"""The archive, served: the same bytes ``digest archive build`` writes, per path.

``GET /``                   the home page: the newsletter's name, the signup form, the latest issues
``GET /issues/``            every published issue, newest first
``GET /issues/<slug>``      an issue's web version ("View in browser" links here)
``GET /feed.xml``           an Atom feed of them

Pages are made from the store (off the event loop) and kept for a few seconds, so a
burst of readers costs one query; an issue not among them is looked for again (at most
once a second), so the first reader of a newly sent issue never gets a stale 404.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.archive import FEED, HOME, INDEX, Archive
from digest.web.pages import page
from digest.web.state import WebState

KEEP_SECONDS = 5.0
MISSING_RECHECK = 1.0  # an issue not among the kept pages is looked for again after this
PUBLIC_HEADERS = {
    # the email's own HTML: inline styles, https images of a template of one's own
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:;"
        " form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Content-Type-Options": "nosniff",
}
TYPES = {FEED: "application/atom+xml; charset=utf-8"}
# an issue's web version stays as it is once published; the lists change with each issue
CACHING = {HOME: "no-cache", INDEX: "no-cache", FEED: "public, max-age=300"}
ISSUE_CACHING = "public, max-age=3600"


@dataclass
class _Kept:
    """The archive's pages as last made, and when."""

    at: float = -KEEP_SECONDS
    files: dict[str, bytes] = field(default_factory=dict)


def routes(state: WebState) -> list[Route]:
    kept = _Kept()

    async def files(older_than: float = KEEP_SECONDS) -> dict[str, bytes]:
        if time.monotonic() - kept.at > older_than:
            kept.files = Archive(state.settings, await state.published()).files()
            kept.at = time.monotonic()
        return kept.files

    async def serve(request: Request, path: str) -> Response:
        body = (await files()).get(path)
        if body is None:  # published since the pages were made? at most one look a second
            body = (await files(MISSING_RECHECK)).get(path)
        if body is None:
            return page(state.settings, "problem", 404, problem="not_found")
        kind = TYPES.get(path, "text/html; charset=utf-8")
        caching = {"Cache-Control": CACHING.get(path, ISSUE_CACHING)}
        return Response(body, headers=PUBLIC_HEADERS | caching, media_type=kind)

    async def home(request: Request) -> Response:
        return await serve(request, HOME)

    async def index(request: Request) -> Response:
        return await serve(request, INDEX)

    async def feed(request: Request) -> Response:
        return await serve(request, FEED)

    async def issue(request: Request) -> Response:
        return await serve(request, f"issues/{request.path_params['slug']}/index.html")

    return [
        Route("/", home, methods=["GET"]),
        Route("/issues/", index, methods=["GET"]),
        Route("/issues", index, methods=["GET"]),
        Route("/feed.xml", feed, methods=["GET"]),
        Route("/issues/{slug:str}", issue, methods=["GET"]),
        Route("/issues/{slug:str}/", issue, methods=["GET"]),
    ]
