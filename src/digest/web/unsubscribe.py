"""Personal unsubscribe pages and RFC 8058 one-click unsubscribe.

``GET|HEAD <unsubscribe path>/<token>``  a page with one button; changes nothing
``POST     <unsubscribe path>/<token>``  unsubscribes at once (List-Unsubscribe=One-Click)

No cookies, no login. Only POST acts: mail scanners that follow links with GET or HEAD
unsubscribe nobody. A token that does not verify gets 400 and a page that says nothing
about who is subscribed; a genuine token for someone already gone gets the same success
page as anyone else; unsubscribing twice is harmless. The staff test send's token leads
to a page that says so. The request is recorded in the store's inbox, which never waits
on a long write, and applied to the list as soon as the database is free.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.config import Settings
from digest.tokens import TEST_TOKEN, read_token
from digest.web.pages import page, read_body
from digest.web.state import WebState

DEFAULT_ROUTE = "/unsubscribe/{token:str}"
ONE_CLICK_BODY = 1000  # bytes: "List-Unsubscribe=One-Click", or the button's field


def unsubscribe_routes(settings: Settings) -> list[str]:
    """Where unsubscribe links point, relative to web.base_url, with {token} as a
    parameter: /unsubscribe/<token>, and the path of a configured unsubscribe.url."""
    paths = [DEFAULT_ROUTE]
    if settings.unsubscribe.url:
        path = urlsplit(settings.unsubscribe.url).path or "/"
        base = urlsplit(settings.web.base_url).path.rstrip("/")
        if base and path.startswith(base + "/"):
            path = path[len(base) :]
        paths.append(path.replace("{token}", "{token:str}"))
    return list(dict.fromkeys(paths))


def routes(state: WebState) -> list[Route]:
    settings = state.settings

    async def unsubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        if token == TEST_TOKEN:
            return page(settings, "test_link")
        uid = read_token(state.keys, state.list_id, token)
        if uid is None:
            return page(settings, "problem", 400, problem="bad_unsubscribe")
        if request.method != "POST":
            return page(settings, "unsubscribe")
        # RFC 8058 clients post "List-Unsubscribe=One-Click"; the page's button posts "via=page"
        body = await read_body(request, ONE_CLICK_BODY) or b""
        channel = "one-click" if b"List-Unsubscribe=One-Click" in body else "link"
        await state.request_unsubscribe(uid, channel)
        return page(settings, "unsubscribed")

    return [
        Route(path, unsubscribe, methods=["GET", "POST"]) for path in unsubscribe_routes(settings)
    ]
