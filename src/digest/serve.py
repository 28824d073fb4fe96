"""The public endpoints: personal unsubscribe pages and RFC 8058 one-click unsubscribe.

``GET  <unsubscribe path>/<token>``  a confirmation page with one button
``POST <unsubscribe path>/<token>``  unsubscribes at once (List-Unsubscribe=One-Click, or the button)

No cookies, no login. A token that does not verify gets 400 and a page that says nothing
about who is subscribed; a genuine token for someone already gone gets the same success
page as anyone else. Unsubscribing twice is harmless.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.config import Settings
from digest.store import Store
from digest.tokens import read_token

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#1d1c1a}}
button{{font-size:1.05rem;padding:.8rem 1.4rem;min-height:44px;border-radius:6px;border:0;background:#7a2e12;color:#fff;cursor:pointer}}</style>
</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"""
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def unsubscribe_route(settings: Settings) -> str:
    """The path part of the configured unsubscribe URL, with {token} as a parameter."""
    path = urlsplit(settings.unsubscribe.url).path or "/"
    return path.replace("{token}", "{token:str}")


def create_app(store: Store, settings: Settings, key: bytes) -> Starlette:
    name = html.escape(settings.newsletter.name)

    def invalid() -> HTMLResponse:
        return _page(
            "This link does not work",
            "<p>This unsubscribe link is not valid. It may have been copied incompletely. Use the "
            "link in the newsletter's footer, or reply to the newsletter and we will remove you.</p>",
            status=400,
        )

    async def unsubscribe(request: Request) -> Response:
        subscriber_id = read_token(key, request.path_params["token"])
        if subscriber_id is None:
            return invalid()
        if request.method == "GET":
            return _page(
                f"Unsubscribe from {settings.newsletter.name}",
                f"<p>Press the button to stop receiving {name}.</p>"
                '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
                '<button type="submit">Unsubscribe</button></form>',
            )
        store.unsubscribe_id(subscriber_id)
        return _page("You are unsubscribed", f"<p>You will not receive {name} any more.</p>")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route(unsubscribe_route(settings), unsubscribe, methods=["GET", "POST"]),
            Route("/healthz", health),
        ]
    )
