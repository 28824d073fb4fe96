"""Mailgun webhooks: one JSON event per POST,
``{"signature": {"timestamp", "token", "signature"}, "event-data": {…}}``.

The signature is the hex HMAC-SHA256 of timestamp + token under the webhook signing key.
A timestamp far from now is stale, and a token seen before is a replay. Events: failed
(severity permanent or temporary), complained, unsubscribed, delivered. Our
``v:issue`` comes back in ``user-variables``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from digest.addresses import event_address
from digest.events import (
    CLICK,
    COMPLAINT,
    DELIVERED,
    HARD_BOUNCE,
    OPEN,
    SOFT_BOUNCE,
    UNSUBSCRIBE,
    Event,
    Incoming,
    Malformed,
    Refused,
    check_age,
    json_body,
    mapping,
    text,
    when,
)

KINDS = {
    "complained": COMPLAINT,
    "unsubscribed": UNSUBSCRIBE,
    "delivered": DELIVERED,
    "opened": OPEN,
    "clicked": CLICK,
}


def _signature(body: bytes) -> dict[str, Any]:
    try:
        data = json_body(body)
    except Malformed:
        raise Refused(400, "mailgun: the body is not JSON (or nests too deep)") from None
    signature = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signature, dict):
        raise Refused(401, "mailgun: no signature")
    return signature


def verify(request: Incoming, secret: str, max_age: float, now: float) -> str | None:
    signature = _signature(request.body)
    timestamp, token = text(str(signature.get("timestamp", ""))), text(signature.get("token"))
    expected = hmac.new(secret.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    if not token or not hmac.compare_digest(expected, text(signature.get("signature"))):
        raise Refused(401, "mailgun: the signature does not match")
    check_age("mailgun", timestamp, max_age, now)
    return f"mailgun:{token}"


def parse(body: bytes) -> list[Event]:
    data = json_body(body)
    event = data.get("event-data") if isinstance(data, dict) else None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        raise Malformed("mailgun: expected event-data with an event")
    name = event["event"]
    if name == "failed":
        kind = HARD_BOUNCE if event.get("severity") == "permanent" else SOFT_BOUNCE
    elif name in KINDS:
        kind = KINDS[name]
    else:
        return []
    email = text(event.get("recipient"))
    if "@" not in email:
        raise Malformed(f"mailgun: {name} event without a recipient")
    status = mapping(event.get("delivery-status"))
    detail = (
        text(event.get("url"))
        or " ".join(str(status.get(k) or "") for k in ("code", "message", "description")).strip()
    )
    message = mapping(event.get("message"))
    headers = mapping(message.get("headers"))
    message_id = text(headers.get("message-id")) or None
    variables = mapping(event.get("user-variables"))
    issue = text(variables.get("issue")) or None
    fingerprint = f"mailgun:{text(event.get('id')) or ''}:{email}"
    return [Event("mailgun", kind, event_address(email), when(event.get("timestamp")), message_id,
                  issue, detail or name, fingerprint)]  # fmt: skip
