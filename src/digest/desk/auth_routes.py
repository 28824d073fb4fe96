"""Signing in and out.

``GET  /sign-in``   the form
``POST /sign-in``   email and password: a new session, or the same refusal whether the
                    address is unknown or the password wrong (checked against a stand-in
                    hash, so both take as long); throttled per account and per address
``POST /sign-out``  ends the session
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.desk.app import DeskState, begin_session, current, page, read_form, requires, see_other
from digest.desk.passwords import verify_password
from digest.desk.sessions import (
    Signed,
    clear_cookie,
    same_origin,
    set_cookie,
    token_hash,
)


def routes(state: DeskState) -> list[Route]:
    desk = state.settings.desk

    async def sign_in(request: Request) -> Response:
        if request.method != "POST":
            if await current(state, request) is not None:
                return see_other(state, "/")
            return page(state, "sign_in")
        form = await read_form(request)
        if form is None or not same_origin(request, desk):
            return page(state, "message", 403, kind="forbidden")
        email = form.get("email", "").strip().lower()
        client = request.client.host if request.client else "unknown"
        keys = (f"account:{email}", f"client:{client}")
        wait = state.guard.wait(*keys)
        if wait > 0:
            return page(state, "sign_in", 429, email=email, problem="throttled", wait=round(wait))
        user = await state.call(state.store.user_by_email, email)
        usable = user is not None and not user.disabled
        matches = await state.call(
            verify_password,
            user.password_hash if usable and user else None,
            form.get("password", ""),
        )
        if not (usable and matches and user):
            state.guard.failed(*keys)
            await state.call(state.store.audit, email or "(blank)", "sign-in refused")
            return page(state, "sign_in", 400, email=email, problem="refused")
        state.guard.succeeded(keys[0])
        old = request.cookies.get("digest_desk")
        if old:  # whatever session the browser had ends: a new one starts
            await state.call(state.store.end_session, token_hash(old))
        started = await begin_session(state, user)
        response = see_other(state, "/")
        set_cookie(response, desk, started.token)
        return response

    @requires(state, "contributor")
    async def sign_out(request: Request, signed: Signed) -> Response:
        await state.call(state.store.end_session, token_hash(signed.token))
        await state.call(state.store.audit, signed.user.email, "signed out")
        response = see_other(state, "/sign-in")
        clear_cookie(response, desk)
        return response

    return [
        Route("/sign-in", sign_in, methods=["GET", "POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
    ]
