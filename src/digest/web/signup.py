"""Signup pages with double opt-in.

``GET  /subscribe``         the form (email, optional name)
``POST /subscribe``         records the request; the answer is the same whatever the
                            address is (new, pending, subscribed, unsubscribed, suppressed)
``GET|HEAD /confirm/<t>``   a page with one button; changes nothing (mail scanners follow links)
``POST /confirm/<t>``       confirms: the signup joins the list as active

The request goes to the store's inbox and is answered at once; the confirmation mail is
sent in the background (see :mod:`digest.web.state`), so the time taken says nothing
about the address either. Abuse is bounded: a honeypot field, a body size limit, at most
``web.signups_per_ip_per_hour`` requests from one client address (behind a proxy, the
address from the forwarded headers of trusted proxies only, see ``digest serve
--proxy-headers``), and at most one confirmation mail per address per hour. No cookies.
"""

from __future__ import annotations

import collections
import ipaddress
import time
from urllib.parse import parse_qs

from email_validator import EmailNotValidError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.addresses import normalise_email
from digest.signup import HONEYPOT, MAX_NAME
from digest.tokens import EXPIRED, VALID, read_confirm_token
from digest.web.pages import page, read_body
from digest.web.state import WebState

MAX_BODY = 10_000  # bytes: an email address, a name and a few fields
MAX_CLIENTS = 100_000  # addresses remembered by the rate limit before the oldest go


class RateLimit:
    """At most ``per_hour`` events per key in any hour; memory bounded. Kept per process:
    with several workers each counts its own share."""

    def __init__(self, per_hour: int, clock: collections.abc.Callable[[], float] = time.monotonic):
        self.per_hour = per_hour
        self.clock = clock
        self.seen: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def allow(self, key: str) -> bool:
        now = self.clock()
        times = self.seen.pop(key, None) or collections.deque()
        while times and times[0] <= now - 3600:
            times.popleft()
        allowed = len(times) < self.per_hour
        if allowed:
            times.append(now)
        self.seen[key] = times
        while len(self.seen) > MAX_CLIENTS:
            self.seen.popitem(last=False)
        return allowed


def client_key(request: Request) -> str:
    """The client's address for rate limits; an IPv6 client by its /64, the block one
    host usually has to itself."""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return host


def _field(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0].strip()


def _clean_name(text: str) -> str | None:
    name = " ".join("".join(c for c in text if c.isprintable()).split())[:MAX_NAME]
    return name or None


def routes(state: WebState) -> list[Route]:
    settings = state.settings
    limit = RateLimit(settings.web.signups_per_ip_per_hour)
    days = f"{settings.web.confirm_days:g}"

    def form_page(problem: str = "", status: int = 200) -> Response:
        return page(settings, "subscribe", status, problem=problem, honeypot=HONEYPOT)

    def check_inbox() -> Response:
        return page(settings, "check_inbox", days=days)

    async def subscribe(request: Request) -> Response:
        if request.method != "POST":
            return form_page()
        body = await read_body(request, MAX_BODY)
        if body is None:
            return page(settings, "problem", 413, problem="too_large")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return form_page("not_a_form", 415)
        form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
        if _field(form, HONEYPOT):
            return check_inbox()  # a bot: the same answer, nothing recorded
        if not limit.allow(client_key(request)):
            return page(
                settings, "problem", 429, headers={"Retry-After": "3600"}, problem="too_many"
            )
        try:
            email = normalise_email(_field(form, "email"))
        except EmailNotValidError:
            return form_page("bad_address", 400)
        keys = settings.newsletter_keys
        chosen = tuple(dict.fromkeys(k for k in form.get("newsletter", []) if k in keys))
        await state.request_signup(
            email, _clean_name(_field(form, "name")), chosen or (settings.newsletter.key,)
        )
        return check_inbox()

    async def confirm(request: Request) -> Response:
        verdict, uid = read_confirm_token(
            state.keys, state.list_id, request.path_params["token"], time.time()
        )
        if verdict == EXPIRED:
            return page(settings, "problem", 410, problem="expired", days=days)
        if verdict != VALID or uid is None:
            return page(settings, "problem", 400, problem="bad_confirm")
        if request.method != "POST":
            return page(settings, "confirm")
        await state.request_confirm(uid)
        return page(settings, "subscribed")

    return [
        Route("/subscribe", subscribe, methods=["GET", "POST"]),
        Route("/confirm/{token:str}", confirm, methods=["GET", "POST"]),
    ]
