"""The HTTP API's endpoints, each once in ENDPOINTS: its method, path, scope, summary
and handler. The routes and the OpenAPI document are both made from that table, so the
document cannot describe a route that is not there, or miss one.

Write-scope calls that change a subscriber answer 202 whether or not the address is on
the list, and read nothing back: only a read token learns who is subscribed."""

from __future__ import annotations

import json
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from digest.addresses import normalise_email
from digest.api.auth import problem
from digest.api.commits import SharedCommits
from digest.config import Settings
from digest.store.api_reads import Addition
from digest.store.api_tokens import ApiToken
from digest.web.pages import read_body
from digest.web.state import WebState

Handler = Callable[[Request, WebState, ApiToken], Awaitable[Response]]


class NewSubscriber(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254)
    name: str | None = Field(None, max_length=200)
    attributes: dict[str, Any] = {}
    newsletters: list[str] | None = None  # None: the default newsletter
    double_opt_in: bool = True  # False: subscribed at once (the caller has their consent)


class SubscriberChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    attributes: dict[str, Any] | None = None
    newsletters: list[str] | None = None


class Leaving(BaseModel):
    model_config = ConfigDict(extra="forbid")

    newsletter: str | None = None  # None: every newsletter


class BadInput(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


async def _body(request: Request, state: WebState, model: type[BaseModel]) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BadInput(problem(415, "not_json", "send the body as application/json"))
    raw = await read_body(request, state.settings.api.max_body_bytes)
    if raw is None:
        raise BadInput(problem(413, "too_large", "the body is over api.max_body_bytes"))
    try:
        return model.model_validate(json.loads(raw or b"null"))
    except (ValueError, ValidationError) as err:
        if isinstance(err, ValidationError):
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            message = f"{where}: {first['msg']}"
        else:
            message = "the body is not JSON"
        raise BadInput(problem(400, "bad_request", message)) from None


def _address(text: str) -> str:
    try:
        return normalise_email(text)
    except EmailNotValidError as err:
        raise BadInput(
            problem(400, "bad_email", f"{text!r} is not a valid address ({err})")
        ) from None


def _newsletters(settings: Settings, keys: list[str] | None) -> tuple[str, ...]:
    for key in keys or ():
        if key not in settings.newsletter_keys:
            raise BadInput(problem(400, "unknown_newsletter", f"no newsletter {key!r}"))
    return tuple(dict.fromkeys(keys)) if keys else (settings.newsletter.key,)


def _attributes(settings: Settings, given: dict[str, Any]) -> dict[str, object]:
    """The attributes, typed by the declared fields; unknown ones kept or refused as
    audience.unknown_columns says."""
    fields = settings.audience.fields
    typed: dict[str, object] = {}
    for name, value in given.items():
        spec = fields.get(name)
        if spec is None:
            if settings.audience.unknown_columns == "refuse":
                raise BadInput(problem(400, "unknown_field", f"no field {name!r}"))
            typed[name] = value if isinstance(value, (str, int, float, bool)) else str(value)
            continue
        if value is None:
            typed[name] = None
            continue
        try:
            typed[name] = spec.convert(
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        except ValueError as err:
            raise BadInput(problem(400, "bad_field", f"{name}: {err}")) from None
    return typed


def _subscriber(row: Any, newsletters: list[str]) -> dict[str, Any]:
    return {
        "email": row.email, "name": row.name, "status": row.status,
        "newsletters": newsletters, "attributes": row.attributes,
        "created_at": row.created_at, "updated_at": row.updated_at,
    }  # fmt: skip


def _limit(request: Request, settings: Settings) -> int:
    asked = request.query_params.get("limit", "")
    return min(int(asked), settings.api.page_size) if asked.isdigit() and int(asked) else (
        settings.api.page_size)  # fmt: skip


def _cursor(request: Request) -> int:
    cursor = request.query_params.get("cursor", "0")
    if not cursor.isdigit():
        raise BadInput(problem(400, "bad_cursor", "cursor is the next_cursor of a page"))
    return int(cursor)


# --- subscribers -----------------------------------------------------------------------

_ADDITIONS: weakref.WeakKeyDictionary[WebState, SharedCommits[Addition]] = (
    weakref.WeakKeyDictionary()
)


def additions(state: WebState) -> SharedCommits[Addition]:
    """The app's one queue of subscribers to add (one per app, gone with it)."""
    if state not in _ADDITIONS:
        _ADDITIONS[state] = SharedCommits(state.requests.api_add)
    return _ADDITIONS[state]


async def create_subscriber(request: Request, state: WebState, token: ApiToken) -> Response:
    new = await _body(request, state, NewSubscriber)
    settings = state.settings
    email = _address(new.email)
    chosen = _newsletters(settings, new.newsletters)
    attributes = _attributes(settings, new.attributes)
    if new.double_opt_in:
        await state.request_signup(email, new.name, chosen)
    else:  # added and audited in a commit shared with the calls that came with it
        addition = Addition(email, new.name, attributes, chosen, f"api:{token.name}")
        await additions(state).add(addition)
        request.state.audited = True
    return JSONResponse({"accepted": True, "double_opt_in": new.double_opt_in}, 202)


async def list_subscribers(request: Request, state: WebState, token: ApiToken) -> Response:
    store, limit, cursor = state.requests, _limit(request, state.settings), _cursor(request)
    status = request.query_params.get("status") or None

    def page() -> dict[str, Any]:
        rows = store.subscriber_page(status, cursor, limit)
        newsletters = store.subscribed_to([r.id for r in rows])
        return {
            "items": [_subscriber(r, newsletters[r.id]) for r in rows],
            "next_cursor": str(rows[-1].id) if len(rows) == limit else None,
        }

    return JSONResponse(await run_in_threadpool(page))


async def get_subscriber(request: Request, state: WebState, token: ApiToken) -> Response:
    email = _address(request.path_params["email"])
    store = state.requests
    row = await run_in_threadpool(store.get_subscriber, email)
    if row is None:
        return problem(404, "not_found", f"no subscriber {email}")
    newsletters = await run_in_threadpool(store.subscribed_to, [row.id])
    return JSONResponse(_subscriber(row, newsletters[row.id]))


async def change_subscriber(request: Request, state: WebState, token: ApiToken) -> Response:
    change = await _body(request, state, SubscriberChange)
    email = _address(request.path_params["email"])
    settings, store = state.settings, state.requests
    attributes = _attributes(settings, change.attributes or {})
    chosen = _newsletters(settings, change.newsletters) if change.newsletters is not None else None
    row = await run_in_threadpool(store.get_subscriber, email)
    if row is not None:  # else: the same answer, nothing said about who is subscribed
        choice: dict[str, object] = {}
        if "name" in change.model_fields_set:
            choice["name"] = change.name or ""
        if chosen is not None:
            choice |= {"newsletters": list(chosen), "offered": list(settings.newsletter_keys)}
        if choice:
            await run_in_threadpool(store.apply_choice, row.uid, choice)
        if attributes:
            await run_in_threadpool(store.merge_attributes, email, attributes)
    return JSONResponse({"accepted": True}, 202)


async def unsubscribe_subscriber(request: Request, state: WebState, token: ApiToken) -> Response:
    leaving = await _body(request, state, Leaving)
    email = _address(request.path_params["email"])
    if leaving.newsletter is not None:
        _newsletters(state.settings, [leaving.newsletter])
    row = await run_in_threadpool(state.requests.get_subscriber, email)
    if row is not None:
        await state.request_unsubscribe(row.uid, "api", leaving.newsletter)
    return JSONResponse({"accepted": True}, 202)


async def forget_subscriber(request: Request, state: WebState, token: ApiToken) -> Response:
    email = _address(request.path_params["email"])
    await run_in_threadpool(state.requests.forget, email)
    return JSONResponse({"accepted": True}, 202)


# --- newsletters, issues, events ---------------------------------------------------------


async def list_newsletters(request: Request, state: WebState, token: ApiToken) -> Response:
    settings = state.settings
    counts = await run_in_threadpool(state.requests.newsletter_counts)
    items = []
    for key in settings.newsletter_keys:
        newsletter = settings.newsletter_for(key)
        items.append({"key": key, "name": newsletter.name, "description": newsletter.description,
                      "default": key == settings.newsletter.key,
                      "subscribed": counts.get(key, 0)})  # fmt: skip
    return JSONResponse({"items": items})


def _issue(issue: Any) -> dict[str, Any]:
    segment = json.loads(issue.segment)["text"] if issue.segment else None
    return {"slug": issue.slug, "status": issue.status, "send_at": issue.send_at.isoformat(),
            "newsletter": issue.newsletter, "segment": segment}  # fmt: skip


async def list_issues(request: Request, state: WebState, token: ApiToken) -> Response:
    issues = await run_in_threadpool(state.requests.list_schedules)
    return JSONResponse({"items": [_issue(i) for i in issues]})


async def get_issue(request: Request, state: WebState, token: ApiToken) -> Response:
    """The issue and its report, as `digest report --json` gives it."""
    from digest.render.headers import ascii_id
    from digest.report import as_json, make_report

    slug = request.path_params["slug"]
    store = state.requests
    issue = await run_in_threadpool(store.get_schedule, slug)
    if issue is None:
        return problem(404, "not_found", f"no scheduled issue {slug!r}")
    tracked = state.settings.provider.tracking
    made = await run_in_threadpool(
        lambda: make_report(store, slug, ascii_id(slug), tracked=tracked)
    )
    return JSONResponse(_issue(issue) | {"report": json.loads(as_json(made))})


async def list_events(request: Request, state: WebState, token: ApiToken) -> Response:
    limit, cursor = _limit(request, state.settings), _cursor(request)
    items = await run_in_threadpool(state.requests.events_after, cursor, limit)
    following = str(items[-1]["id"]) if len(items) == limit else None
    return JSONResponse({"items": items, "next_cursor": following})


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under /api/v1, in Starlette's form
    scope: str  # read or write
    summary: str
    handler: Handler
    body: type[BaseModel] | None = None
    success: int = 200


ENDPOINTS = (
    Endpoint("GET", "/subscribers", "read", "Subscribers, a page at a time (?cursor=, ?limit=, "
             "?status=)", list_subscribers),
    Endpoint("POST", "/subscribers", "write", "Add a subscriber: a confirmation mail first "
             "(double_opt_in, the default), or subscribed at once", create_subscriber,
             NewSubscriber, 202),
    Endpoint("GET", "/subscribers/{email}", "read", "One subscriber, with their newsletters",
             get_subscriber),
    Endpoint("PATCH", "/subscribers/{email}", "write", "Change a subscriber's name, "
             "attributes or newsletters", change_subscriber, SubscriberChange, 202),
    Endpoint("POST", "/subscribers/{email}/unsubscribe", "write", "Leave one newsletter, or "
             "every one", unsubscribe_subscriber, Leaving, 202),
    Endpoint("DELETE", "/subscribers/{email}", "write", "Forget a subscriber: their data "
             "goes, a hash keeps imports from adding them back", forget_subscriber, None, 202),
    Endpoint("GET", "/newsletters", "read", "The newsletters, with their subscribers",
             list_newsletters),
    Endpoint("GET", "/issues", "read", "Scheduled and sent issues", list_issues),
    Endpoint("GET", "/issues/{slug}", "read", "One issue: its status and its report "
             "(deliveries, events, rates), as digest report --json gives it", get_issue),
    Endpoint("GET", "/events", "read", "What happened to mail, after a cursor (?cursor=, "
             "?limit=)", list_events),
)  # fmt: skip
