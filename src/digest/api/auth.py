"""Who is calling the HTTP API: a bearer token (``Authorization: Bearer dgt_…`` only,
never a query string or cookie), its scope, and its rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse

from digest.store.api_tokens import ApiToken


def problem(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    """The API's one error shape: ``{"error": {"code": …, "message": …}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def bearer(request: Request) -> str | None:
    kind, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if kind.lower() == "bearer" else None


@dataclass
class Buckets:
    """A token bucket per token name: ``burst`` calls at once, refilled at ``rate`` a
    second."""

    burst: int
    rate: float
    clock: Callable[[], float] = time.monotonic
    levels: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, name: str) -> float:
        """0 when the call may go ahead, else the seconds until it may."""
        now = self.clock()
        level, then = self.levels.get(name, (float(self.burst), now))
        level = min(float(self.burst), level + (now - then) * self.rate)
        if level < 1:
            self.levels[name] = (level, now)
            return (1 - level) / self.rate
        self.levels[name] = (level - 1, now)
        return 0.0


def allowed(token: ApiToken | None, scope: str) -> JSONResponse | None:
    """None when ``token`` may call an endpoint of ``scope``; else the error to send."""
    if token is None:
        return problem(
            401, "unauthorized", "send a live API token as 'Authorization: Bearer <token>'",
            **{"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    if token.scope != scope:
        return problem(
            403, "wrong_scope", f"this endpoint needs a {scope} token; this one is {token.scope}"
        )
    return None
