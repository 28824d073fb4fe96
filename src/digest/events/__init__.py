"""Provider events: what happened to mail after it was handed over.

Each provider posts its events to ``/webhooks/<provider>`` in its own shape, signed its
own way. One module per provider, the same shape in each:

``verify(request, secret, max_age, now) -> str | None``
    raise :class:`Refused` unless the request is signed as that provider documents; return
    a key that must not be seen twice (replay protection), or None.
``parse(body) -> list[Event]``
    the events in the body, normalised; raise :class:`Malformed` for a body that is not
    the provider's shape.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import re
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

PROVIDERS = ("postmark", "sendgrid", "mailgun", "resend")

# What an event does to the subscriber: suppress at once, count, or only record.
HARD_BOUNCE = "hard_bounce"
SOFT_BOUNCE = "soft_bounce"
COMPLAINT = "complaint"
UNSUBSCRIBE = "unsubscribe"
DELIVERED = "delivered"
DEFERRED = "deferred"
OPEN = "open"
CLICK = "click"
SUPPRESSING = {HARD_BOUNCE: "bounced", COMPLAINT: "complained", UNSUBSCRIBE: "unsubscribed"}


class Refused(Exception):
    """The request is not from the provider: unsigned, forged, stale or replayed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Malformed(Exception):
    """A verified body that is not the provider's event shape."""


@dataclass(frozen=True)
class Incoming:
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Event:
    provider: str
    kind: str
    email: str
    occurred_at: dt.datetime
    message_id: str | None = None
    issue: str | None = None  # the issue id the provider echoes back (tag or metadata)
    detail: str = ""
    fingerprint: str = ""  # the provider's event id, or a hash of the event

    def with_fingerprint(self) -> Event:
        if self.fingerprint:
            return self
        seed = f"{self.provider}\0{self.kind}\0{self.email}\0{self.message_id}\0{self.occurred_at.isoformat()}"
        return Event(
            **{**asdict(self), "fingerprint": hashlib.sha256(seed.encode()).hexdigest()[:32]}
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["occurred_at"] = self.occurred_at.isoformat()
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Event:
        data = json.loads(text)
        data["occurred_at"] = dt.datetime.fromisoformat(data["occurred_at"])
        return cls(**data)


def check_age(provider: str, timestamp: str, max_age: float, now: float) -> None:
    """Refuse a signed timestamp that is not a number (401) or too far from now (400)."""
    try:
        age = abs(now - float(timestamp))
    except ValueError:
        raise Refused(401, f"{provider}: the timestamp is not a number") from None
    if age > max_age:
        raise Refused(400, f"{provider}: the signature is {age:.0f}s old (stale)")


def provider_module(name: str) -> ModuleType | None:
    return importlib.import_module(f"digest.events.{name}") if name in PROVIDERS else None


EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # before any mail digest sent
FUTURE_SLACK = dt.timedelta(days=2)  # clocks differ; an event days ahead is not real


def when(value: Any) -> dt.datetime:
    """A provider's timestamp (epoch seconds or ISO 8601) as aware UTC; now if missing.
    Anything else, or a moment before 2000 or days ahead (.NET's 0001-01-01, 1e20), is
    Malformed: refused at the door rather than stopping the events after it."""
    if value is None or value == "":
        return dt.datetime.now(dt.UTC)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Malformed(f"the event's time is not a number or a date: {str(value)[:40]!r}")
    try:
        if isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        else:
            parsed = dt.datetime.fromtimestamp(value, dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise Malformed(f"the event's time is not a date: {str(value)[:40]!r}") from None
    if not EARLIEST <= parsed <= dt.datetime.now(dt.UTC) + FUTURE_SLACK:
        raise Malformed(f"the event's time is out of range: {str(value)[:40]!r}")
    return parsed.astimezone(dt.UTC)


MAX_DEPTH = 32  # no provider nests its events deeper than a few levels
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def nesting_within(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects at most ``limit`` deep, found
    without parsing it (strings are skipped whole); stops at the first level too deep."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return True
    depth = 0
    for token in _JSON_TOKENS.finditer(body):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return False
        elif char in (b"]", b"}"):
            depth -= 1
    return True


MAX_FIELD = 2000  # characters in any one field we keep


def checked(event: Event) -> Event:
    """The event, if every field can be stored as it is: text without NUL or other
    control characters (PostgreSQL refuses NUL), of sane length; Malformed otherwise."""
    for name in ("email", "message_id", "issue", "detail"):
        value = getattr(event, name)
        if value is None:
            continue
        if len(value) > (320 if name == "email" else MAX_FIELD):
            raise Malformed(f"{event.provider}: the event's {name} is too long")
        if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
            raise Malformed(f"{event.provider}: the event's {name} holds control characters")
    return event


def json_body(body: bytes) -> Any:
    """The body as JSON: refused (Malformed) unless it is JSON nested at most MAX_DEPTH
    deep, checked before it is parsed."""
    if not nesting_within(body):
        raise Malformed(f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Malformed("the body is not JSON") from None


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""
