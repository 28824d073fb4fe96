"""Resend webhooks, signed the Svix way: headers svix-id, svix-timestamp and
svix-signature ("v1,<base64>" entries, space-separated). The signature is the base64
HMAC-SHA256 of "<id>.<timestamp>.<raw body>" under the secret after its "whsec_"
prefix (base64). A timestamp more than max_age from now is stale; an id seen before is a
replay. Event types: email.bounced, email.complained, email.delivered,
email.delivery_delayed. Our tag {"issue": …} comes back in data.tags.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from digest.addresses import event_address
from digest.events import (
    CLICK,
    COMPLAINT,
    DEFERRED,
    DELIVERED,
    HARD_BOUNCE,
    OPEN,
    SOFT_BOUNCE,
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
    "email.opened": OPEN,
    "email.clicked": CLICK,
    "email.complained": COMPLAINT,
    "email.delivered": DELIVERED,
    "email.delivery_delayed": DEFERRED,
}


def signature_for(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"))
    except (binascii.Error, ValueError):
        raise Refused(
            500, "resend: the signing secret in the environment is not whsec_<base64>"
        ) from None
    signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(request: Incoming, secret: str, max_age: float, now: float) -> str | None:
    message_id = request.headers.get("svix-id", "")
    timestamp = request.headers.get("svix-timestamp", "")
    given = request.headers.get("svix-signature", "")
    if not (message_id and timestamp and given):
        raise Refused(401, "resend: no svix-id, svix-timestamp or svix-signature header")
    expected = signature_for(secret, message_id, timestamp, request.body)
    versions = [part.partition(",") for part in given.split()]
    if not any(v == "v1" and hmac.compare_digest(sig, expected) for v, _, sig in versions):
        raise Refused(401, "resend: the signature does not match")
    check_age("resend", timestamp, max_age, now)
    return f"resend:{message_id}"


def _tags(data: dict[str, Any]) -> dict[str, str]:
    tags = data.get("tags")
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    if isinstance(tags, list):
        return {str(t.get("name")): str(t.get("value")) for t in tags if isinstance(t, dict)}
    return {}


def parse(body: bytes) -> list[Event]:
    payload = json_body(body)
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or not isinstance(payload.get("type"), str):
        raise Malformed("resend: expected {type, data}")
    name = payload["type"]
    if name == "email.bounced":
        bounce = mapping(data.get("bounce"))
        kind = (
            SOFT_BOUNCE
            if text(bounce.get("type")).lower() in {"transient", "undetermined"}
            else HARD_BOUNCE
        )
        detail = text(bounce.get("message")) or "bounced"
    elif name in KINDS:
        kind, detail = KINDS[name], text(mapping(data.get("click")).get("link")) or name
    else:
        return []
    to = data.get("to")
    addresses = [
        a for a in (to if isinstance(to, list) else [to]) if isinstance(a, str) and "@" in a
    ]
    if not addresses:
        raise Malformed(f"resend: {name} event without a recipient")
    message_id = text(data.get("email_id")) or None
    issue = _tags(data).get("issue")
    return [
        Event("resend", kind, event_address(address), when(payload.get("created_at")), message_id, issue,
              detail, f"resend:{name}:{message_id}:{event_address(address)}:{payload.get('created_at')}")
        for address in addresses
    ]  # fmt: skip
