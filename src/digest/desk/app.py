"""The desk as an ASGI app: its state, how a page is answered, and who may do what.

Every route says the least role it needs (``contributor`` < ``editor`` < ``admin``); the
check runs on the server for every request, whatever the page showed. Every POST is
checked for the session's CSRF token and the desk's own origin first.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from digest.config import Settings
from digest.desk.guard import SignInGuard
from digest.desk.sessions import (
    COOKIE,
    Signed,
    csrf_ok,
    new_session,
    same_origin,
    set_cookie,
    token_hash,
)
from digest.errors import IssueFileError
from digest.render.pages import render_named
from digest.store.desk import User
from digest.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from digest.build import Build

LOCKED = ("scheduled", "sending", "sent")  # a contributor may no longer change these

MAX_FORM = 2_000_000  # bytes: an issue's every field
KEPT_BUILDS = 16  # renders kept, newest last
Handler = Callable[[Request, Signed], Awaitable[Response]]


class DeskState:
    def __init__(self, settings: Settings, store: SQLiteStore) -> None:
        self.settings = settings
        self.store = store
        self.issues = Path(settings.compose.issues_dir)
        self.guard = SignInGuard(settings.desk.free_attempts)
        self.root = settings.desk.path  # what every link and redirect starts with
        # the editor page and its four preview frames show one render of one version
        self._built: collections.OrderedDict[tuple[Path, str], Build] = collections.OrderedDict()
        self._building = threading.Lock()

    def build(self, path: Path) -> Build:
        """The issue at ``path`` rendered and checked, once per version of the file."""
        from digest.build import build
        from digest.desk.editing import version_of

        key = (path.resolve(), version_of(path.read_bytes()))
        with self._building:
            if (kept := self._built.get(key)) is not None:
                self._built.move_to_end(key)
                return kept
        made = build(path, self.settings)
        with self._building:
            self._built[key] = made
            while len(self._built) > KEPT_BUILDS:
                self._built.popitem(last=False)
        return made

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A store call (or any blocking work) off the event loop."""
        return await run_in_threadpool(function, *args, **kwargs)


# The desk runs no scripts, loads nothing from elsewhere (but the logo and the images in
# a preview) and frames only its own previews; no other site may frame it.
POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:;"
    " frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# what a desk page may leave out (templates are strict about undefined names)
PAGE_DEFAULTS: dict[str, Any] = {
    "problem": "",
    "problem_field": "",
    "notice": "",
    "outcomes": None,
    "email": "",
    "values": {},
    "detail": "",
    "noted": {},
}
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def page(
    state: DeskState,
    template: str,
    code: int = 200,
    signed: Signed | None = None,
    **context: Any,
) -> HTMLResponse:
    """``desk/<template>.html.j2`` answered with HTTP status ``code``."""
    values = PAGE_DEFAULTS | {"root": state.root} | context
    html = render_named(
        state.settings, f"desk/{template}.html.j2", robots="noindex", signed=signed, **values
    )
    return HTMLResponse(
        html, status_code=code, headers=HEADERS | {"Content-Security-Policy": POLICY}
    )


def see_other(state: DeskState, path: str) -> RedirectResponse:
    """To ``path`` of the desk (under ``desk.path``)."""
    return RedirectResponse(state.root + path, status_code=303, headers=HEADERS)


async def current(state: DeskState, request: Request) -> Signed | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    found = await state.call(state.store.session_user, token_hash(token))
    if found is None:
        return None
    user, csrf = found
    return Signed(user, csrf, token)


async def refreshed(state: DeskState, signed: Signed) -> Signed:
    """``signed`` with the user as the store now has them (after a change to them)."""
    user = await state.call(state.store.user_by_email, signed.user.email)
    return Signed(user, signed.csrf, signed.token) if user else signed


async def sso_session(state: DeskState, request: Request) -> Signed | None:
    """A session for the user a single-sign-on proxy names, when ``desk.sso_header`` is
    set and the request comes from one of ``desk.sso_proxies``; else None."""
    desk = state.settings.desk
    if not desk.sso_header:
        return None
    email = request.headers.get(desk.sso_header, "").strip().lower()
    if not email or not desk.from_sso_proxy(request.client.host if request.client else None):
        return None
    user = await state.call(state.store.user_by_email, email)
    if user is None or user.disabled:
        return None
    return await begin_session(state, user, via="single sign-on")


async def begin_session(state: DeskState, user: User, **how: str) -> Signed:
    """A new session for ``user`` (and its line in the audit log)."""
    token, csrf = new_session()
    lifetime = dt.timedelta(hours=state.settings.desk.session_hours)
    await state.call(state.store.start_session, user.id, token_hash(token), csrf, lifetime)
    await state.call(state.store.audit, user.email, "signed in", **how)
    return Signed(user, csrf, token)


async def locked_out(state: DeskState, slug: str, signed: Signed) -> Response | None:
    """The refusal when a contributor would change an issue already scheduled or sent."""
    scheduled = await state.call(state.store.get_schedule, slug)
    if scheduled and scheduled.status in LOCKED and not signed.may("editor"):
        return page(state, "message", 403, signed, kind="locked", status=scheduled.status)
    return None


async def read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded form, or None when it is too large or not a form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    from digest.web.pages import read_body  # the public app's bounded reading, shared

    body = await read_body(request, MAX_FORM)
    if body is None:
        return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=5000)
    return {key: values[0] for key, values in fields.items()}


def requires(
    state: DeskState, role: str
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """The route for signed-in users of at least ``role``; a POST also needs the CSRF
    token and the desk's origin. The form, once read, is in ``request.state.form``."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            signed = await current(state, request)
            started = None
            if signed is None and request.method == "GET":
                started = signed = await sso_session(state, request)
            if signed is None:
                if request.method == "POST":
                    return page(state, "message", 403, kind="signed_out")
                return see_other(state, "/sign-in")
            if request.method == "POST":
                form = await read_form(request)
                if form is None or not same_origin(request, state.settings.desk):
                    return page(state, "message", 403, signed, kind="forbidden")
                if not csrf_ok(signed, form.get("csrf")):
                    return page(state, "message", 403, signed, kind="forbidden")
                request.state.form = form
            if not signed.may(role):
                return page(state, "message", 403, signed, kind="role", role=role)
            response = await handler(request, signed)
            if started is not None:
                set_cookie(response, state.settings.desk, started.token)
            return response

        return route

    return wrap


def warm_up(settings: Settings) -> None:
    """Load the renderer and compile the email's templates now, once per process, so the
    first editor to open an issue does not wait for it."""
    import digest.render.html  # noqa: F401  (MJML and premailer)
    from digest.render.templates import HTML_TEMPLATE, TEXT_TEMPLATE, environment_for

    env = environment_for(settings.render.templates)
    for name in (HTML_TEMPLATE, TEXT_TEMPLATE):
        env.get_template(name)


def create_desk_app(settings: Settings, store: SQLiteStore, *, mounted: bool = False) -> Starlette:
    """The desk. Under ``desk.path`` when one is set; ``mounted``: the app to mount at
    that path in another (``digest serve``), its routes relative to it."""
    from starlette.routing import BaseRoute, Mount, Route

    from digest.desk import (
        action_routes,
        approval,
        arrange_routes,
        audit_routes,
        auth_routes,
        issue_routes,
        new_routes,
        picker,
        report_routes,
        user_routes,
    )

    state = DeskState(settings, store)
    warm_up(settings)

    async def health(request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def no_issue(request: Request, error: Exception) -> Response:
        signed = await current(state, request)
        return page(state, "message", 404, signed, kind="no_issue", detail=str(error))

    routes: list[BaseRoute] = [
        *auth_routes.routes(state),
        *issue_routes.routes(state),
        *new_routes.routes(state),
        *action_routes.routes(state),
        *audit_routes.routes(state),
        *report_routes.routes(state),
        *approval.routes(state),
        *picker.routes(state),
        *arrange_routes.routes(state),
        *user_routes.routes(state),
        Route("/healthz", health),
    ]
    if settings.desk.path and not mounted:
        routes = [Mount(settings.desk.path, routes=routes)]
    app = Starlette(exception_handlers={IssueFileError: no_issue}, routes=routes)
    app.state.desk = state
    return app
