"""The public web app: everything readers and providers reach from outside.

One module per concern: ``archive`` (the home page, past issues, the feed),
``signup`` (the form and double opt-in), ``unsubscribe`` (personal pages and one-click
unsubscribe), ``webhooks`` (provider events and the mailto unsubscribe), ``pages`` (the
look and limits they share), ``state`` (settings, keys, the store off the event loop and
the background work), ``server`` (the listening socket, access logs, running it).

Paths are relative to ``web.base_url``: with ``https://example.org/digest`` the app
answers ``/subscribe`` both when a proxy strips ``/digest`` (say so with ``--root-path
/digest``) and when it passes the whole path on.

For an ASGI server of one's own: ``uvicorn 'digest.web:app' --factory`` reads
``$DIGEST_CONFIG`` (or ./config.yaml) and the keys from the environment.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from digest.config import Settings
from digest.errors import StoreError
from digest.web import archive, signup, unsubscribe, webhooks
from digest.web.limits import BodyLimit
from digest.web.pages import page
from digest.web.state import WebState

CONFIG_ENV = "DIGEST_CONFIG"
log = logging.getLogger("digest.web")


async def store_unavailable(request: Request, error: Exception) -> Response:
    """The database cannot be reached (down, restarting, refusing connections): a page
    saying to try again, and 503 with Retry-After, which one-click unsubscribes and
    provider webhooks retry on; one line in the log (the path is left out: it may
    carry a reader's token)."""
    log.warning("%s request not served: %s", request.method, error)
    settings: Settings = request.app.state.settings
    return page(settings, "problem", 503, headers={"Retry-After": "60"}, problem="unavailable")


class BasePath:
    """Takes the base URL's path off requests that still carry it (a proxy that passes
    the whole path on), so routes match either way."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.prefix:
            root = scope.get("root_path", "")
            path: str = scope["path"]
            local = path[len(root) :] if root and path.startswith(root) else path
            if local == self.prefix or local.startswith(self.prefix + "/"):
                scope = dict(scope, path=(root + local[len(self.prefix) :]) or "/")
        await self.app(scope, receive, send)


def create_app(settings: Settings, keys: tuple[bytes, ...]) -> ASGIApp:
    from digest.api.routes import routes as api_routes  # the API builds on this package

    state = WebState(settings, keys)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            *archive.routes(state),
            *signup.routes(state),
            *unsubscribe.routes(state),
            *webhooks.routes(state),
            *api_routes(state),
            Route("/healthz", health),
        ],
        lifespan=state.lifespan,
        exception_handlers={StoreError: store_unavailable},
    )
    app.state.settings = settings
    if settings.desk.path:  # the operator asked for the desk here too, under its path
        from starlette.routing import Mount

        from digest.desk.app import create_desk_app
        from digest.store import open_database

        store = open_database(
            settings.delivery.database, password_env=settings.delivery.password_env
        )
        desk = create_desk_app(settings, store, mounted=True)  # type: ignore[arg-type]
        app.router.routes.insert(0, Mount(settings.desk.path, app=desk))
    bounded = BodyLimit(
        app, settings.webhooks.max_body_bytes, api_limit=settings.api.max_body_bytes
    )
    return BasePath(bounded, urlsplit(settings.web.base_url).path.rstrip("/"))


def app() -> ASGIApp:
    """The app factory for ASGI servers: ``uvicorn 'digest.web:app' --factory``."""
    from digest.config import load_settings
    from digest.storeconfig import resolve_config_path
    from digest.tokens import signing_keys
    from digest.web.connections import configure, throttle_logs
    from digest.web.server import redact_access_log

    settings = load_settings(resolve_config_path(os.environ.get(CONFIG_ENV)))
    configure(settings.web.max_connections, settings.web.header_timeout)  # this worker's
    throttle_logs()
    redact_access_log()
    return create_app(settings, signing_keys(settings))


__all__ = ["app", "create_app"]
