"""SendGrid's signed event webhook: a JSON array of up to about 1,000 events per POST.

The signature (header X-Twilio-Email-Event-Webhook-Signature, base64 DER) is ECDSA P-256
with SHA-256 over the timestamp header followed by the raw body; the verification key is
the base64 public key shown in the account's mail settings. Events: bounce (type bounce;
type blocked is temporary), dropped (SendGrid suppressed the address), deferred,
delivered, spamreport, unsubscribe and group_unsubscribe. Our custom_args come back as
top-level fields of each event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from digest.addresses import event_address
from digest.events import (
    CLICK,
    COMPLAINT,
    DEFERRED,
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
    text,
    when,
)

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
KINDS = {
    "open": OPEN,
    "click": CLICK,
    "deferred": DEFERRED,
    "delivered": DELIVERED,
    "spamreport": COMPLAINT,
    "unsubscribe": UNSUBSCRIBE,
    "group_unsubscribe": UNSUBSCRIBE,
}
DROPPED = {"Spam Reporting Address": COMPLAINT, "Unsubscribed Address": UNSUBSCRIBE}


def _public_key(secret: str) -> ec.EllipticCurvePublicKey:
    try:
        key = (
            load_pem_public_key(secret.encode())
            if "BEGIN PUBLIC KEY" in secret
            else load_der_public_key(base64.b64decode(secret))
        )
    except (ValueError, binascii.Error):
        raise Refused(
            500, "sendgrid: the verification key in the environment is not a public key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Refused(500, "sendgrid: the verification key is not an ECDSA key")
    return key


def verify(request: Incoming, secret: str, max_age: float, now: float) -> str | None:
    signature, timestamp = request.headers.get(SIGNATURE, ""), request.headers.get(TIMESTAMP, "")
    if not signature or not timestamp:
        raise Refused(401, "sendgrid: no signature or timestamp header")
    signed = timestamp.encode() + request.body
    try:
        _public_key(secret).verify(strict_signature(signature), signed, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise Refused(401, "sendgrid: the signature does not match") from None
    check_age("sendgrid", timestamp, max_age, now)
    # an ECDSA signature has more than one valid form (s and n - s): the replay key is
    # what was signed, never the signature
    return f"sendgrid:{hashlib.sha256(signed).hexdigest()}"


def strict_signature(header: str) -> bytes:
    """The DER signature in the header, read strictly: canonical base64 with nothing
    around it, one DER sequence of two integers with nothing after it. Anything else
    (a character added, removed or moved) raises ValueError."""
    raw = base64.b64decode(header, validate=True)
    if base64.b64encode(raw).decode("ascii") != header:
        raise ValueError("not canonical base64")
    r, s = decode_dss_signature(raw)
    if encode_dss_signature(r, s) != raw:
        raise ValueError("not canonical DER")
    return raw


def _one(item: dict[str, Any]) -> Event | None:
    name = text(item.get("event"))
    if name == "bounce":
        kind = SOFT_BOUNCE if item.get("type") == "blocked" else HARD_BOUNCE
    elif name == "dropped":
        kind = DROPPED.get(text(item.get("reason")), HARD_BOUNCE)
    elif name in KINDS:
        kind = KINDS[name]
    else:
        return None
    email = text(item.get("email"))
    if "@" not in email:
        raise Malformed(f"sendgrid: {name} event without an email")
    message_id = text(item.get("sg_message_id")).split(".")[0] or None
    detail = text(item.get("url")) or text(item.get("reason")) or text(item.get("response")) or name
    fingerprint = (
        f"sendgrid:{text(item.get('sg_event_id'))}" if item.get("sg_event_id") else content_id(item)
    )
    return Event("sendgrid", kind, event_address(email), when(item.get("timestamp")), message_id,
                 text(item.get("issue")) or None, detail, fingerprint)  # fmt: skip


def content_id(item: dict[str, Any]) -> str:
    """An event without sg_event_id is known by what it says: the same event posted
    again (a retry, a replay under a fresh signature) is the same event."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sendgrid:content:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def parse(body: bytes) -> list[Event]:
    data = json_body(body)
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise Malformed("sendgrid: expected a JSON array of events")
    return [event for item in data if (event := _one(item)) is not None]
