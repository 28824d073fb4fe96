"""Postmark webhooks: one JSON record per POST, protected by HTTP basic auth credentials
put in the webhook URL (https://user:password@host/webhooks/postmark).

Record types: Bounce (Type HardBounce, SoftBounce, Transient, …), SpamComplaint,
SubscriptionChange (SuppressSending true: the recipient unsubscribed or was suppressed),
Delivery. Our Metadata {"issue": …} comes back with each record.
"""

from __future__ import annotations

import base64
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
    json_body,
    text,
    when,
)

# Bounce types that mean the address will never take mail (Postmark's bounce type list)
HARD_TYPES = frozenset(
    {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Unsubscribe", "SpamNotification",
     "Blocked", "AddressChange", "DMARCPolicy"}
)  # fmt: skip


def verify(request: Incoming, secret: str, max_age: float, now: float) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        given = base64.b64decode(encoded, validate=True) if scheme.lower() == "basic" else b""
    except ValueError:
        given = b""
    if not hmac.compare_digest(given, secret.encode()):
        raise Refused(401, "postmark: wrong or missing basic-auth credentials")
    return None


def _issue(record: dict[str, Any]) -> str | None:
    metadata = record.get("Metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("issue"), str):
        return str(metadata["issue"])
    return text(record.get("Tag")) or None


def parse(body: bytes) -> list[Event]:
    record = json_body(body)
    if not isinstance(record, dict) or not isinstance(record.get("RecordType"), str):
        raise Malformed("postmark: expected a record with RecordType")
    kind_of = record["RecordType"]
    message_id = text(record.get("MessageID")) or None
    fingerprint = f"postmark:{kind_of}:{record.get('ID') or ''}:{message_id or ''}"
    if kind_of == "Bounce":
        kind = HARD_BOUNCE if record.get("Type") in HARD_TYPES else SOFT_BOUNCE
        email, at = text(record.get("Email")), record.get("BouncedAt")
        detail = f"{record.get('Type')}: {text(record.get('Description'))}"
    elif kind_of == "SpamComplaint":
        kind, email, at, detail = (
            COMPLAINT,
            text(record.get("Email")),
            record.get("BouncedAt"),
            "spam complaint",
        )
    elif kind_of == "SubscriptionChange":
        if not record.get("SuppressSending"):
            return []  # a reactivation: digest never resubscribes anyone by itself
        reason = text(record.get("SuppressionReason"))
        kind = {"HardBounce": HARD_BOUNCE, "SpamComplaint": COMPLAINT}.get(reason, UNSUBSCRIBE)
        email, at, detail = text(record.get("Recipient")), record.get("ChangedAt"), reason
        fingerprint += f":{at}"
    elif kind_of == "Delivery":
        kind, email, at = DELIVERED, text(record.get("Recipient")), record.get("DeliveredAt")
        detail = ""
    elif kind_of in ("Open", "Click"):  # only sent when tracking is on
        kind = OPEN if kind_of == "Open" else CLICK
        email, at = text(record.get("Recipient")), record.get("ReceivedAt")
        detail = text(record.get("OriginalLink"))
        fingerprint += f":{email}:{at}:{detail}"
    else:
        return []  # other record types are not asked for
    if "@" not in email:
        raise Malformed(f"postmark: {kind_of} record without an address")
    return [
        Event(
            "postmark",
            kind,
            event_address(email),
            when(at),
            message_id,
            _issue(record),
            detail,
            fingerprint,
        )
    ]
