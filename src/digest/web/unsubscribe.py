"""Personal subscription pages and RFC 8058 one-click unsubscribe.

``GET|HEAD <unsubscribe path>/<token>``  the subscription page (web/preferences.py);
                                         changes nothing
``POST     <unsubscribe path>/<token>``  unsubscribes at once (List-Unsubscribe=One-Click),
                                         or records the choices made on the page

No cookies, no login. Only POST acts: mail scanners that follow links with GET or HEAD
unsubscribe nobody. A token that does not verify gets 400 and a page that says nothing
about who is subscribed; a genuine token for someone already gone gets the same success
page as anyone else; unsubscribing twice is harmless. The staff test send's token leads
to a page that says so. The request is recorded in the store's inbox, which never waits
on a long write, and applied to the list as soon as the database is free. Where several
newsletters are declared, each message's link names its newsletter (``?newsletter=``)
and leaving through it leaves that one only.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.config import Settings
from digest.tokens import TEST_TOKEN, read_token
from digest.web.pages import page, read_body
from digest.web.preferences import link_newsletter, page_context, read_choice
from digest.web.state import WebState

DEFAULT_ROUTE = "/unsubscribe/{token:str}"
FORM_BODY = 4000  # bytes: the one-click body, the button, or the choices form


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
        left = link_newsletter(settings, request.query_params.get("newsletter"))
        if request.method != "POST":
            found = await state.subscription(uid)
            context = page_context(settings, found, left)
            context["managing"] = "manage" in request.query_params and context["known"]
            return page(settings, "unsubscribe", **context)
        body = await read_body(request, FORM_BODY) or b""  # too long: read as the button
        action, choice = read_choice(settings, body)
        if action == "save":
            found = await state.subscription(uid)
            await state.request_choice(uid, choice)
            context = page_context(settings, found, left) | {"choice": choice}
            return page(settings, "preferences_saved", **context)
        everything = action == "leave_all" or left is None
        channel = {"one-click": "one-click", "leave": "link"}.get(action, "page")
        await state.request_unsubscribe(uid, channel, None if everything else left.key)  # type: ignore[union-attr]
        return page(
            settings, "unsubscribed", leaving=None if everything else left,
            several=len(settings.newsletter_keys) > 1,
        )  # fmt: skip

    return [
        Route(path, unsubscribe, methods=["GET", "POST"]) for path in unsubscribe_routes(settings)
    ]
