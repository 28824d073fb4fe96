"""What the store takes and hands back: plain records, the statuses they carry, and the
:class:`Store` protocol, the only way the rest of digest reaches the database. The
store's parts import these; ``digest.store`` re-exports them beside ``open_database``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from digest.events import Event

if TYPE_CHECKING:
    from digest.store.failed_events import FailedEvent

ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED = "active", "unsubscribed", "bounced", "complained"
SUBSCRIBER_STATUSES = (ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED)
PENDING = "pending"  # signed up on the site, not yet confirmed: kept apart, never mailed issues
DELIVERY_STATUSES = ("pending", "inflight", "accepted", "rejected", "failed", "unknown", "skipped")
ISSUE_STATUSES = ("scheduled", "sending", "sent", "incomplete", "stopped", "cancelled")


class IssueChanged(Exception):
    """The operator unscheduled or rescheduled an issue while this process delivered it."""


@dataclass(frozen=True)
class Subscriber:
    id: int  # never reused, even after a subscriber is forgotten
    uid: str  # random, never reused: what an unsubscribe token names
    email: str
    name: str | None
    status: str
    attributes: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""


# (email, name, other attributes) or the same with the row's number in its source
SubscriberRow = (
    tuple[str, str | None, dict[str, object]] | tuple[str, str | None, dict[str, object], int]
)


@dataclass
class UpsertReport:
    """What an upsert of subscribers did, counted (a list of millions stays small)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # unsubscribed, bounced or complained, and left so
    left: int = 0  # came in as the export said: unsubscribed, bounced or complained
    suppressed: list[tuple[int, str]] = field(default_factory=list)  # (row, email): forgotten


@dataclass(frozen=True)
class ScheduledIssue:
    slug: str
    path: str
    source_hash: str
    send_at: dt.datetime  # UTC
    status: str  # one of ISSUE_STATUSES
    rendered_json: str
    error: str | None = None
    lease_owner: str | None = None
    version: int = 0  # changes each time the issue is scheduled again
    web_json: str = ""  # the web version (archive, "View in browser"), frozen with the render
    newsletter: str = "main"  # the key of the newsletter whose subscribers get it
    segment: str | None = None  # JSON: {"text": the expression, "tree": its parse}


@dataclass(frozen=True)
class Signup:
    """Someone who asked to subscribe on the site and has not confirmed yet."""

    uid: str  # what their confirmation token names
    email: str
    name: str | None
    requested_at: dt.datetime
    sent_at: dt.datetime | None = None  # the last confirmation mail sent


@dataclass(frozen=True)
class Published:
    """An issue in the public archive."""

    slug: str
    web_json: str
    published_at: dt.datetime


@dataclass(slots=True)  # made per recipient, like Result: not frozen, for speed
class BatchRecipient:
    subscriber_id: int
    uid: str
    email: str
    name: str | None
    attempts: int


@dataclass(frozen=True)
class ClaimedBatch:
    id: int
    key: str
    recipients: tuple[BatchRecipient, ...]


@dataclass(slots=True)
class Result:
    """What to record for one subscriber after an attempt."""

    subscriber_id: int
    status: str  # accepted | rejected | failed | pending (retry later)
    message_id: str | None = None
    error: str | None = None
    next_attempt_at: dt.datetime | None = None


@dataclass(frozen=True)
class StoredEvent:
    """Something that happened to mail after it was handed over (or a permanent refusal)."""

    provider: str
    kind: str  # hard_bounce | soft_bounce | complaint | unsubscribe | delivered | ...
    email: str
    issue: str | None
    message_id: str | None
    detail: str
    occurred_at: dt.datetime


class Store(Protocol):
    # subscribers
    def upsert_subscribers(
        self,
        rows: Iterable[SubscriberRow],
        *,
        resubscribe: bool,
        newsletters: tuple[str, ...] = ...,
        leaving: dict[str, str] | None = None,
        joined: dict[str, str] | None = None,
    ) -> UpsertReport: ...
    def get_subscriber(self, email: str) -> Subscriber | None: ...
    def field_values(self, ids: list[int], fields: Sequence[str]) -> dict[int, dict[str, Any]]: ...
    def set_status(self, email: str, status: str) -> bool: ...
    def list_identity(self) -> str: ...
    def unsubscribe_uid(self, uid: str) -> bool: ...
    def unsubscribe_email(self, email: str) -> str | None: ...
    def request_unsubscribe(
        self, uid: str, channel: str = "link", newsletter: str | None = None
    ) -> None: ...
    def request_choice(self, uid: str, choice: dict[str, object]) -> None: ...
    def subscriptions_of(self, uid: str) -> tuple[Any, dict[str, str]] | None: ...
    def newsletter_counts(self) -> dict[str, int]: ...
    def count_recipients(self, newsletter: str, segment: str | None = None) -> int: ...
    def subscribed_to(self, ids: list[int]) -> dict[int, list[str]]: ...
    def rename_newsletter(self, old: str, new: str) -> int: ...
    def apply_inbox(self, soft_limit: int = 3, soft_days: float = 30) -> int: ...
    def receive_events(self, events: list[Event], replay_key: str | None = None) -> bool: ...
    def forget(self, email: str) -> bool: ...
    def is_suppressed(self, email: str) -> bool: ...
    def failed_events(self, limit: int = 1000) -> list[FailedEvent]: ...
    def record_signing_key(self, key_id: str) -> None: ...
    def signing_key_id(self) -> str | None: ...
    def unsuppress(
        self,
        since: dt.datetime,
        reason: str,
        *,
        provider: str | None = None,
        issue: str | None = None,
        dry_run: bool = False,
        now: dt.datetime | None = None,
    ) -> list[str]: ...
    def iter_subscribers(self, status: str | None = None) -> Iterator[Subscriber]: ...
    def count_subscribers(self) -> dict[str, int]: ...

    # signup with double opt-in
    def request_signup(
        self, email: str, name: str | None, newsletters: tuple[str, ...] = ...
    ) -> None: ...
    def request_confirm(self, uid: str) -> None: ...
    def confirmations_due(self) -> bool: ...
    def claim_confirmations(self, now: dt.datetime, limit: int) -> list[Signup]: ...
    def confirmation_failed(self, uid: str, error: str, retry: bool) -> None: ...
    def signups(self) -> list[Signup]: ...
    def purge_signups(self, before: dt.datetime) -> int: ...

    # schedule
    def save_schedule(self, issue: ScheduledIssue) -> None: ...
    def get_schedule(self, slug: str) -> ScheduledIssue | None: ...
    def list_schedules(self) -> list[ScheduledIssue]: ...
    def cancel_schedule(self, slug: str) -> bool: ...
    def has_started(self, slug: str) -> bool: ...
    def published_issues(self, *, scheduled_too: bool) -> list[Published]: ...
    def published_issue(self, slug: str, *, scheduled_too: bool) -> Published | None: ...
    def due_issues(self, now: dt.datetime) -> list[ScheduledIssue]: ...
    def set_issue_status(
        self, slug: str, status: str, error: str | None = None, *, version: int | None = None
    ) -> bool: ...

    # delivery
    def renew_lease(self, slug: str, owner: str, lease_until: dt.datetime) -> None: ...
    def claim_issue(
        self, slug: str, owner: str, now: dt.datetime, lease: dt.timedelta, version: int
    ) -> str | None: ...
    def release_issue(self, slug: str, owner: str) -> None: ...
    def inflight_batches(self, slug: str) -> list[ClaimedBatch]: ...
    def mark_unknown(self, batch_ids: list[int], *, sequential: bool = False) -> int: ...
    def reopen_unknown(self, slug: str, now: dt.datetime) -> int: ...
    def reopen_failed(self, slug: str, now: dt.datetime) -> int: ...
    def next_batch(
        self, slug: str, size: int, now: dt.datetime, version: int
    ) -> ClaimedBatch | None: ...
    def record(
        self,
        slug: str,
        batch_id: int,
        results: list[Result],
        owner: str,
        lease_until: dt.datetime,
        *,
        close: bool = True,
        provider: str = "",
    ) -> None: ...
    def events_for(self, email: str) -> list[StoredEvent]: ...
    def issue_event_counts(self, slug: str, issue_id: str | None = None) -> dict[str, int]: ...
    def issue_events(
        self, slug: str, issue_id: str | None, kinds: tuple[str, ...]
    ) -> list[StoredEvent]: ...
    def engagement(self, slug: str, issue_id: str | None) -> tuple[int, list[tuple[str, int]]]: ...
    def issue_window(self, slug: str) -> tuple[dt.datetime | None, dt.datetime | None]: ...
    def unsubscribes_between(
        self, start: dt.datetime, end: dt.datetime | None, newsletter: str | None = None
    ) -> dict[str, int]: ...
    def delivery_timeline(self, slug: str) -> list[tuple[str, str, int]]: ...
    def send_slot(self, count: int, rate: float, now: float) -> float | None: ...
    def next_retry_at(self, slug: str) -> dt.datetime | None: ...
    def remaining(self, slug: str) -> int: ...
    def delivery_counts(self, slug: str) -> dict[str, int]: ...
    def unknown_recipients(self, slug: str) -> list[str]: ...
    def accepted_since(self, slug: str, since: dt.datetime) -> int: ...
    def close(self) -> None: ...
