"""The public app's responses: pages from the templates of :mod:`digest.render.pages`,
with safe headers, and request bodies read within a limit."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from digest.config import Settings
from digest.render.pages import page_images, render_page

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def content_policy(settings: Settings) -> str:
    """Nothing runs; styles are the page's own (and the configured web fonts'); the only
    image is the configured logo."""
    fonts = settings.render.fonts
    return (
        f"default-src 'none'; style-src 'unsafe-inline'{' https:' if fonts else ''};"
        f"{' font-src https:;' if fonts else ''} img-src {page_images(settings)};"
        " form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def page(
    settings: Settings,
    name: str,
    status: int = 200,
    *,
    headers: dict[str, str] | None = None,
    **context: object,
) -> HTMLResponse:
    """The page ``pages/<name>.html.j2``, kept out of search engines: these pages are
    personal."""
    return HTMLResponse(
        render_page(settings, name, robots="noindex", **context),
        status_code=status,
        headers=HEADERS | {"Content-Security-Policy": content_policy(settings)} | (headers or {}),
    )


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is over ``limit`` bytes (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)
