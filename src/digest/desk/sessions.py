"""Who is signed in, and whether a form really came from the desk.

A session is a random token in an ``HttpOnly``, ``SameSite=Lax`` cookie (``Secure`` when
the desk's address is https); the store keeps only its hash, with the user and a CSRF
token. Every sign-in starts a new session (a token planted before it is worthless), and
sign-out, a new password or a disabled account ends it. Every state-changing request must
carry the session's CSRF token and, when the browser says where it comes from (Origin,
else Referer), come from the desk's own origin.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from digest.desk.settings import Desk
from digest.store.desk import User

COOKIE = "digest_desk"
ROLE_RANK = {"contributor": 0, "editor": 1, "admin": 2}


def token_hash(token: str) -> str:
    return hashlib.sha256(f"digest-desk-session:{token}".encode()).hexdigest()


@dataclass(frozen=True)
class Signed:
    """The user behind a request, and the token their forms must carry."""

    user: User
    csrf: str
    token: str

    def may(self, role: str) -> bool:
        return ROLE_RANK.get(self.user.role, -1) >= ROLE_RANK[role]


def new_session() -> tuple[str, str]:
    """A fresh session token and CSRF token."""
    return secrets.token_urlsafe(32), secrets.token_urlsafe(24)


def set_cookie(response: Response, desk: Desk, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(dt.timedelta(hours=desk.session_hours).total_seconds()),
        httponly=True,
        samesite="lax",
        secure=desk.secure,
        path=desk.path or "/",
    )


def clear_cookie(response: Response, desk: Desk) -> None:
    response.delete_cookie(
        COOKIE, path=desk.path or "/", secure=desk.secure, httponly=True, samesite="lax"
    )


def same_origin(request: Request, desk: Desk) -> bool:
    """False when the browser says the request comes from elsewhere."""
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return True  # nothing said: the CSRF token decides
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin.lower() == desk.origin


def csrf_ok(signed: Signed, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(signed.csrf, str(sent))
