"""Delivering scheduled issues to subscribers, crash-safe and at most once per person.

For each due issue this process claims (a lease in the store, so two `digest deliver`
processes never send the same issue):

1. Batches left in flight by a process that died are settled first: with a provider
   that honours idempotency keys they are resent under the same key; with any other,
   their recipients are marked ``unknown`` (they may or may not have been sent) and are
   resent only when asked (``--resend-unknown``).
2. Then batch after batch: the store forms the next batch (due retries first, then the
   next active subscribers) and marks it in flight in the same transaction; the batch is
   personalised from the frozen rendering and sent; each recipient's outcome is recorded
   and the batch closed in one transaction. Subscribers are read a batch at a time.
3. Temporary failures come back after exponential back-off with jitter, or after the
   delay the provider asked for, up to ``provider.max_attempts``. After
   ``delivery.max_consecutive_failures`` batches in a row without a single accepted or
   rejected recipient, or at once on refused credentials, the issue stops with an error.
   Recipients whose attempts all failed leave the issue ``incomplete`` (an error, never a
   silent "sent") until ``--retry-failed`` or scheduling again gives them another try.
4. The issue's state is checked again when it is claimed and before every batch: an
   issue unscheduled or rescheduled by the operator meanwhile stops before its next
   batch, whatever this pass read when it began.
5. Asked to stop (SIGTERM or Ctrl-C: the ``stop`` event), no new batch starts; the
   batches in flight get up to ``delivery.stop_grace_seconds`` to be answered and each
   answer is recorded; the lease is released. A batch still unanswered then stays in
   flight, to be settled by the next run as after a crash.

Providers that send one message at a time (SMTP) report each answer as it comes, and it
is recorded at once: a crash leaves at most the message being sent unknown.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable

import httpx

from digest.config import Settings
from digest.delivery.heartbeat import Heartbeat
from digest.delivery.issue import IssueDelivery
from digest.delivery.outcomes import IssueReport, Progress, QuietProgress
from digest.delivery.pacing import RateLimiter, pin_allocator_threshold, process_owner
from digest.errors import DigestError, StoreError
from digest.providers import create_provider
from digest.readiness import require_ready
from digest.store import BatchRecipient, Store
from digest.tokens import key_id, signing_keys


def deliver_due(
    store: Store,
    settings: Settings,
    *,
    client: httpx.Client,
    progress: Progress,
    resend_unknown: bool = False,
    retry_failed: str | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> list[IssueReport]:
    """One pass: deliver every issue that is due (and, with ``resend_unknown``, reopen
    issues that have recipients whose outcome is unknown; with ``retry_failed``, give
    that issue's failed recipients another set of attempts)."""
    require_ready(settings)  # before anything: placeholders never reach real readers
    key = signing_keys(settings)[0]
    stop = stop or threading.Event()
    store.purge_signups(clock() - dt.timedelta(days=settings.web.confirm_days))
    pin_allocator_threshold()
    owner = process_owner()
    if retry_failed is not None:
        if store.get_schedule(retry_failed) is None:
            raise DigestError(f"{retry_failed} is not scheduled")
        reopened = store.reopen_failed(retry_failed, clock())
        progress.note(f"{retry_failed}: retrying {reopened} failed recipient(s)")
    due = store.due_issues(clock())
    if resend_unknown:
        extra = [
            s
            for s in store.list_schedules()
            if s.status in ("sent", "stopped", "incomplete") and store.unknown_recipients(s.slug)
        ]
        due.extend(s for s in extra if s.slug not in {d.slug for d in due})
    reports: list[IssueReport] = []
    if not due:
        return reports
    store.record_signing_key(key_id(key))  # the key the links about to be mailed carry
    provider = create_provider(settings, client)
    try:
        for scheduled in due:
            if stop.is_set():
                break
            report = IssueReport(scheduled.slug)
            reports.append(report)
            if scheduled.status not in ("scheduled", "sending"):  # finished, but with unknowns
                store.reopen_unknown(scheduled.slug, clock())
                scheduled = store.get_schedule(scheduled.slug) or scheduled
            reason = store.claim_issue(
                scheduled.slug,
                owner,
                clock(),
                dt.timedelta(seconds=settings.delivery.lease_seconds),
                scheduled.version,
            )
            if reason is not None:
                report.skipped_reason = reason
                progress.note(f"{scheduled.slug}: skipped: {reason}")
                continue
            started = time.monotonic()
            lease = dt.timedelta(seconds=settings.delivery.lease_seconds)
            try:
                with Heartbeat(store, scheduled.slug, owner, lease, clock):
                    IssueDelivery(
                        store, scheduled, provider, settings, key, owner, progress, clock, stop
                    ).run(report, resend_unknown)
            finally:
                with contextlib.suppress(StoreError):  # a dead lease is taken over anyway
                    store.release_issue(scheduled.slug, owner)
                report.seconds = time.monotonic() - started
                with contextlib.suppress(StoreError):
                    report.counts = store.delivery_counts(scheduled.slug)
                    report.unknown = store.unknown_recipients(scheduled.slug)
    finally:
        provider.close()
    return reports


__all__ = [
    "BatchRecipient",
    "IssueDelivery",
    "IssueReport",
    "Progress",
    "QuietProgress",
    "RateLimiter",
    "deliver_due",
    "pin_allocator_threshold",
    "process_owner",
]
