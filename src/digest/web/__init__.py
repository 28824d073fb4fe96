"""The public web app: everything readers and providers reach from outside.

One module per concern: ``unsubscribe`` (personal pages and one-click unsubscribe),
``webhooks`` (provider events and the mailto unsubscribe),
``pages`` (the look they share), ``state`` (settings, keys and store access off the
event loop), ``server`` (the listening socket and running it).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from digest.config import Settings
from digest.web import unsubscribe, webhooks
from digest.web.state import WebState


def create_app(settings: Settings, keys: tuple[bytes, ...]) -> Starlette:
    state = WebState(settings, keys)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[*unsubscribe.routes(state), *webhooks.routes(state), Route("/healthz", health)],
        lifespan=state.lifespan,
    )


__all__ = ["create_app"]
