"""How much of a request the public app reads: every route at most what it needs.

A one-click unsubscribe needs a few bytes, a signup form a few hundred, a provider's
batch of events a few megabytes (``webhooks.max_body_bytes``). This middleware sits in
front of every route: a body declared larger than its route's limit is answered 413
before any of it is read, and one that turns out larger while it streams in (chunked)
is cut off at the limit and answered 413 the same way, before the route runs. Nothing
larger is ever held."""

from __future__ import annotations

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SMALL_BODY = 16_384  # bytes: what any form or one-click POST of the public app needs


class BodyLimit:
    def __init__(
        self, app: ASGIApp, webhook_limit: int, small: int = SMALL_BODY, api_limit: int = 0
    ) -> None:
        self.app = app
        self.webhook_limit = webhook_limit
        self.small = small
        self.api_limit = api_limit or small

    def limit_for(self, path: str) -> int:
        if "/api/v1/" in path:
            return self.api_limit
        return self.webhook_limit if "/webhooks/" in path else self.small

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if declared and (not declared.isdigit() or int(declared) > limit):
            await self.refuse(scope, receive, send, limit)
            return
        # read the body here, at most ``limit`` bytes of it, before the route sees any
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body.extend(message.get("body", b""))
            if len(body) > limit:
                await self.refuse(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        message = f"the request body is over the {limit:,}-byte limit of this address"
        headers = {"Connection": "close"}
        response: Response = (
            JSONResponse({"error": {"code": "too_large", "message": message}}, 413, headers)
            if "/api/v1/" in scope["path"]  # the API answers in its own shape
            else PlainTextResponse(message + "\n", status_code=413, headers=headers)
        )
        await response(scope, receive, send)
