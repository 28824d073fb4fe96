"""What a delivery reports: the provider's answer per recipient turned into what the
store records, and the report of one issue's pass."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Protocol

from digest.config import Settings
from digest.providers import Outcome
from digest.providers.base import ACCEPTED, REJECTED
from digest.store import BatchRecipient, ClaimedBatch, Result

FINAL_STATUSES = ("accepted", "rejected", "failed", "unknown", "skipped")


@dataclass
class IssueReport:
    slug: str
    counts: dict[str, int] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    resent_inflight: int = 0
    error: str | None = None
    skipped_reason: str | None = None
    changed: str | None = None  # unscheduled or rescheduled while this pass sent it
    interrupted: bool = False  # asked to stop before the issue was done
    abandoned: int = 0  # batches still unanswered when the grace period ran out
    sent_now: int = 0  # recipients settled by this pass
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class Progress(Protocol):
    """Reports progress; the CLI supplies a terminal bar or plain log lines."""

    def start(self, slug: str, total: int) -> None: ...
    def advance(self, slug: str, settled: int, total: int, rate: float) -> None: ...
    def note(self, message: str) -> None: ...


class QuietProgress:
    """Progress that goes nowhere, except notes kept for the caller."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, slug: str, total: int) -> None:
        pass

    def advance(self, slug: str, settled: int, total: int, rate: float) -> None:
        pass

    def note(self, message: str) -> None:
        self.notes.append(message)


def _retry_at(
    outcome: Outcome, attempts: int, settings: Settings, now: dt.datetime, jitter: float
) -> dt.datetime:
    provider = settings.provider
    backoff = min(provider.max_retry_delay, provider.retry_delay * 2 ** max(0, attempts - 1))
    backoff *= 0.5 + jitter / 2
    delay = min(provider.max_retry_delay, max(outcome.retry_after or 0.0, backoff))
    return now + dt.timedelta(seconds=delay)


def result_for(
    member: BatchRecipient,
    outcome: Outcome | None,
    settings: Settings,
    now: dt.datetime,
    jitter: float | None = None,
) -> Result:
    """What to record for one recipient, from the provider's answer (None: no answer).
    ``jitter`` (0 to 1) spreads retries out; recipients of one batch share it, so they
    come due together and go again in one request."""
    if outcome is None:
        return Result(
            member.subscriber_id, "unknown", error="the provider gave no answer for this recipient"
        )
    if outcome.status == ACCEPTED:
        return Result(member.subscriber_id, "accepted", message_id=outcome.message_id)
    if outcome.status == REJECTED:
        return Result(member.subscriber_id, "rejected", error=outcome.reason)
    if outcome.ambiguous:
        # it may have been sent: never guess; report it (idempotent providers were
        # already retried under the same key by the sender)
        return Result(member.subscriber_id, "unknown", error=outcome.reason)
    if outcome.retryable and member.attempts + 1 < settings.provider.max_attempts:
        spread = random.random() if jitter is None else jitter
        retry = _retry_at(outcome, member.attempts + 1, settings, now, spread)
        return Result(member.subscriber_id, "pending", error=outcome.reason, next_attempt_at=retry)
    return Result(member.subscriber_id, "failed", error=outcome.reason)


def results_for(
    batch: ClaimedBatch, outcomes: list[Outcome], settings: Settings, now: dt.datetime
) -> list[Result]:
    by_email = {o.email: o for o in outcomes}
    jitter = random.random()
    return [result_for(m, by_email.get(m.email), settings, now, jitter) for m in batch.recipients]
