"""The public app's responses: pages in the one look of :mod:`digest.render.page`,
with safe headers, and request bodies read within a limit."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from digest.render.page import document

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none';"
        " frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def page(
    title: str, body_html: str, status: int = 200, *, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """A page titled ``title`` (escaped here) around ``body_html`` (already safe HTML);
    kept out of search engines: these pages are personal."""
    return HTMLResponse(
        document(title, body_html, robots="noindex"),
        status_code=status,
        headers=HEADERS | (headers or {}),
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
