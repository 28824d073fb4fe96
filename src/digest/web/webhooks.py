"""Provider webhooks: ``POST /webhooks/<provider>`` for postmark, sendgrid, mailgun and
resend, and ``POST /webhooks/postmark-inbound`` for replies to the List-Unsubscribe
mailto address.

Each request is verified the way its provider signs it (see :mod:`digest.events`); an
unsigned, forged or stale one gets 401 or 400, and a replayed one 400, and none records
anything. A verified body that is not the provider's shape gets 400. Verified events are
written to the store's inbox and answered 200 at once, including events about addresses
or messages digest does not know (kept for the report): a provider retries anything
else for days. A provider whose secret is not in the environment has no webhook (404).
"""

from __future__ import annotations

import re
import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from digest.events import Incoming, Malformed, Refused, checked, json_body, provider_module
from digest.events import postmark as postmark_events
from digest.tokens import read_token
from digest.web.pages import read_body
from digest.web.state import WebState

INBOUND = "postmark-inbound"
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\s+(\S+)\s*$", re.I)
_UNSUBSCRIBE_ADDRESS = re.compile(r"\+([^@\s]+)@")


def answer(status: int, text: str) -> Response:
    return PlainTextResponse(text + "\n", status_code=status)


def inbound_token(message: object) -> str | None:
    """The unsubscribe token of an inbound email: its subject is "unsubscribe TOKEN" (what
    our mailto asks for) or its address is unsubscribe+TOKEN@…"""
    if not isinstance(message, dict):
        return None
    subject = _UNSUBSCRIBE_SUBJECT.match(str(message.get("Subject") or ""))
    if subject:
        return subject.group(1)
    for field in ("OriginalRecipient", "To"):
        address = _UNSUBSCRIBE_ADDRESS.search(str(message.get(field) or ""))
        if address:
            return address.group(1)
    return None


def routes(state: WebState) -> list[Route]:
    hooks = state.settings.webhooks

    async def receive(request: Request) -> Response:
        name = request.path_params["provider"]
        is_inbound = name == INBOUND
        module = postmark_events if is_inbound else provider_module(name)
        secret = state.webhook_secret("postmark" if is_inbound else name) if module else None
        if module is None or secret is None:
            return answer(404, f"no webhook for {name!r} here")
        body = await read_body(request, hooks.max_body_bytes)
        if body is None:
            return answer(413, f"the body is over {hooks.max_body_bytes} bytes")
        incoming = Incoming({k.lower(): v for k, v in request.headers.items()}, body)
        try:
            replay_key = module.verify(incoming, secret, hooks.max_age_seconds, time.time())
        except Refused as refused:
            return answer(refused.status, refused.reason)
        if is_inbound:
            return await unsubscribe_by_mail(body)
        try:
            events = [checked(event).with_fingerprint() for event in module.parse(body)]
        except Malformed as err:
            return answer(400, str(err))
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError):
            # a field of a type the provider never sends (a list where a name goes)
            return answer(400, f"{name}: the events are not in the provider's shape")
        if not await state.receive_events(events, replay_key):
            return answer(400, f"{name}: this request was received before (replay)")
        return answer(200, f"ok, {len(events)} event(s)")

    async def unsubscribe_by_mail(body: bytes) -> Response:
        try:
            message = json_body(body)
        except Malformed:
            return answer(400, "postmark-inbound: the body is not JSON")
        token = inbound_token(message)
        uid = read_token(state.keys, state.list_id, token) if token else None
        if uid is not None:
            await state.request_unsubscribe(uid, "mailto")
        # a mail without a valid token is answered 200 too: retrying it would not help
        return answer(200, "ok" if uid else "ok, no unsubscribe token in this mail")

    return [Route("/webhooks/{provider:str}", receive, methods=["POST"])]
