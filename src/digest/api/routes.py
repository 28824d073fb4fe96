"""The API's routes: each endpoint behind its token check, rate and audit entry."""

from __future__ import annotations

import contextlib
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from digest import __version__
from digest.api.auth import Buckets, allowed, bearer, problem
from digest.api.endpoints import ENDPOINTS, BadInput, Endpoint
from digest.api.openapi import document
from digest.errors import DigestError
from digest.store.api_tokens import ApiToken
from digest.web.state import WebState

log = logging.getLogger("digest.api")
PREFIX = "/api/v1"


def routes(state: WebState) -> list[Route]:
    buckets = Buckets(state.settings.api.burst, state.settings.api.per_second)
    reader = state.requests.token_reader()  # on SQLite: no worker thread per check

    async def token_of(given: str) -> ApiToken | None:
        if reader is not None:
            with contextlib.suppress(DigestError):
                return reader(given)
        return await run_in_threadpool(state.requests.api_token, given)

    def wrap(endpoint: Endpoint) -> object:
        async def call(request: Request) -> Response:
            store = state.requests
            given = bearer(request)
            token = await token_of(given) if given else None
            if token is None and not await run_in_threadpool(store.has_api_tokens):
                return problem(404, "not_found", "no API here: no API token exists")
            refused = allowed(token, endpoint.scope)
            if refused is not None:
                return refused
            assert token is not None
            wait = buckets.take(token.name)
            if wait:
                return problem(429, "too_many", "slow down", **{"Retry-After": str(int(wait) + 1)})
            try:
                response = await endpoint.handler(request, state, token)
            except BadInput as bad:
                response = bad.response
            except DigestError as err:  # the database busy or down: try again
                log.warning("api %s %s: %s", endpoint.method, endpoint.path, err)
                response = problem(503, "unavailable", "try again shortly", **{"Retry-After": "5"})
            if getattr(request.state, "audited", False):
                return response
            subject = request.path_params.get("email") or request.path_params.get("slug") or ""
            await run_in_threadpool(
                store.audit, f"api:{token.name}", f"{endpoint.method} {PREFIX}{endpoint.path}",
                subject, status=response.status_code,
            )  # fmt: skip
            return response

        return call

    async def openapi(request: Request) -> Response:
        return JSONResponse(document(__version__))

    made = [
        Route(PREFIX + e.path, wrap(e), methods=[e.method])  # type: ignore[arg-type]
        for e in ENDPOINTS
    ]
    return [*made, Route(PREFIX + "/openapi.json", openapi, methods=["GET"])]
