"""One due issue, delivered by this process: batches formed by the store, sent from a
pool of threads, each answer recorded, the stop rules applied."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from digest.config import Settings
from digest.delivery.outcomes import FINAL_STATUSES, IssueReport, Progress, result_for, results_for
from digest.delivery.pacing import RateLimiter
from digest.errors import ConfigError, DigestError, ProviderError, StoreError
from digest.providers import Batch, Outcome, Provider
from digest.providers.base import FAILED
from digest.rates import percent
from digest.render import RenderedIssue
from digest.render.message import Recipient
from digest.render.personal import shown
from digest.schedule import rendered_from_json
from digest.store import ClaimedBatch, IssueChanged, Result, ScheduledIssue, Store
from digest.tokens import make_token


class IssueDelivery:
    """One due issue, delivered by this process."""

    def __init__(
        self,
        store: Store,
        scheduled: ScheduledIssue,
        provider: Provider,
        settings: Settings,
        key: bytes,
        owner: str,
        progress: Progress,
        clock: Callable[[], dt.datetime],
        stop: threading.Event,
    ) -> None:
        self.store = store
        self.scheduled = scheduled
        self.slug = scheduled.slug
        self.version = scheduled.version
        self.list_id = store.list_identity()
        self.stop = stop
        self.rendered: RenderedIssue = rendered_from_json(scheduled.rendered_json)
        self.provider = provider
        self.settings = settings
        self.key = key
        self.owner = owner
        self.progress = progress
        self.clock = clock
        self.lease = dt.timedelta(seconds=settings.delivery.lease_seconds)
        self.limiter = RateLimiter(settings.delivery.rate_limit)

    def recipients(self, batch: ClaimedBatch) -> tuple[Recipient, ...]:
        used = self.rendered.fields_used  # a greeting's field, the templates' fields
        if used:
            stored = self.store.field_values([m.subscriber_id for m in batch.recipients], used)
            greeting_field = self.rendered.greeting_field
            people = []
            for m in batch.recipients:
                fields = {f: shown(v) for f, v in stored.get(m.subscriber_id, {}).items()}
                token = make_token(self.key, self.list_id, m.uid)
                people.append(Recipient(m.email, m.name, token, fields.get(greeting_field), fields))
            return tuple(people)
        return tuple(
            Recipient(m.email, m.name, make_token(self.key, self.list_id, m.uid))
            for m in batch.recipients
        )

    def _recorder(self, batch: ClaimedBatch) -> Callable[[Outcome], None]:
        """Records one recipient's answer the moment the provider has it (SMTP)."""
        members = {m.email: m for m in batch.recipients}

        def record_one(outcome: Outcome) -> None:
            member = members.get(outcome.email)
            if member is None or outcome.ambiguous:
                return  # an ambiguous answer is settled with the whole batch
            now = self.clock()
            result = result_for(member, outcome, self.settings, now)
            self.store.record(
                self.slug,
                batch.id,
                [result],
                self.owner,
                now + self.lease,
                close=False,
                provider=self.provider.name,
            )

        return record_one

    def send(self, batch: ClaimedBatch, not_before: float | None = None) -> list[Outcome]:
        """Runs in a worker thread: no store access here. ``not_before`` (Unix time) is
        the moment the store booked for this batch under a rate limit shared by several
        processes; without one, this process's own limiter paces it.

        When the answer is lost and the provider honours idempotency keys, the same batch
        goes again under the same key until it is answered (bounded by max_attempts)."""
        if not_before is None:
            self.limiter.wait(len(batch.recipients))
        else:
            time.sleep(max(0.0, not_before - time.time()))
        on_outcome = self._recorder(batch) if self.provider.reports_each else None
        request = Batch(
            self.rendered,
            self.recipients(batch),
            key=batch.key,
            on_outcome=on_outcome,
            message_seed=f"{self.list_id}:{self.slug}",
        )
        attempts = self.settings.provider.max_attempts
        for attempt in range(1, attempts + 1):
            outcomes = self.provider.send(request)
            lost = self.provider.idempotent and any(o.ambiguous for o in outcomes)
            if not lost or attempt == attempts:
                return outcomes
            delay = (
                self.settings.provider.retry_delay
                * 2 ** (attempt - 1)
                * (0.5 + random.random() / 2)
            )
            time.sleep(min(self.settings.provider.max_retry_delay, delay))
        return outcomes

    def record(self, batch: ClaimedBatch, outcomes: list[Outcome]) -> list[Result]:
        now = self.clock()
        results = results_for(batch, outcomes, self.settings, now)
        self.store.record(
            self.slug, batch.id, results, self.owner, now + self.lease, provider=self.provider.name
        )
        return results

    def recover(self, report: IssueReport, resend_unknown: bool) -> None:
        stranded = self.store.inflight_batches(self.slug)
        if stranded and self.provider.idempotent:
            for batch in stranded:
                if batch.recipients:
                    self.record(batch, self.send(batch))
                    report.resent_inflight += len(batch.recipients)
                else:
                    self.store.mark_unknown([batch.id])
            self.progress.note(
                f"{self.slug}: resent {report.resent_inflight} in-flight recipient(s) under their idempotency keys"
            )
        elif stranded:
            marked = self.store.mark_unknown(
                [b.id for b in stranded], sequential=self.provider.reports_each
            )
            self.progress.note(
                f"{self.slug}: {marked} recipient(s) were in flight when delivery stopped; marked unknown "
                "(run digest deliver --resend-unknown to send to them again)"
            )
        if resend_unknown:
            reopened = self.store.reopen_unknown(self.slug, self.clock())
            if reopened:
                self.progress.note(
                    f"{self.slug}: resending to {reopened} recipient(s) whose outcome was unknown"
                )

    def run(self, report: IssueReport, resend_unknown: bool) -> None:
        self.recover(report, resend_unknown)
        settings = self.settings
        counts = self.store.delivery_counts(self.slug)
        settled_before = sum(counts.get(s, 0) for s in FINAL_STATUSES)
        total = settled_before + self.store.remaining(self.slug)
        self.progress.start(self.slug, total)
        # the guard's base: everyone of the issue answered, not only in this run (its
        # events count the issue's whole history)
        answered_before = counts.get("accepted", 0) + counts.get("rejected", 0)
        state = _RunState(settled=settled_before, answered=answered_before)
        started = time.monotonic()
        pending: dict[Future[list[Outcome]], ClaimedBatch] = {}
        pool = ThreadPoolExecutor(
            max_workers=settings.delivery.concurrency, thread_name_prefix="digest-send"
        )
        deadline: float | None = None
        try:
            while True:
                if self.stop.is_set() and deadline is None:
                    deadline = time.monotonic() + settings.delivery.stop_grace_seconds
                if deadline is None:
                    self._fill(pool, pending, state)
                if not pending:
                    if deadline is not None or state.stopping or not self._wait_for_retries(state):
                        break
                    continue
                # wake now and then to notice a stop request
                timeout = 0.25 if deadline is None else deadline - time.monotonic()
                if timeout <= 0:
                    report.abandoned = len(pending)  # left in flight for the next run
                    break
                done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    self._settle(pending.pop(future), future, state)
                elapsed = max(time.monotonic() - started, 1e-6)
                rate = (state.settled - settled_before) / elapsed
                self.progress.advance(self.slug, state.settled, total, rate)
        except BaseException:  # a second stop signal, or the store failing: leave at once
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=not report.abandoned, cancel_futures=True)
        report.sent_now = state.settled - settled_before
        self._finish(report, state)

    def _finish(self, report: IssueReport, state: _RunState) -> None:
        """Set the issue's status from how the run ended (never over an operator's change)."""
        if state.fatal is not None:
            report.error = f"stopped: {state.fatal}"
            self.store.set_issue_status(self.slug, "stopped", report.error, version=self.version)
        elif state.changed is not None:
            report.changed = state.changed
            self.progress.note(f"{self.slug}: stopped before the next batch: {state.changed}")
        elif state.stop_reason is not None:
            report.error = state.stop_reason
            self.store.set_issue_status(
                self.slug, "stopped", state.stop_reason, version=self.version
            )
        elif self.stop.is_set() and self.store.remaining(self.slug):
            report.interrupted = True
        elif self.store.remaining(self.slug) == 0:
            counts = self.store.delivery_counts(self.slug)
            failed, unknown = counts.get("failed", 0), counts.get("unknown", 0)
            problems = []
            if failed:
                problems.append(
                    f"{failed} recipient(s) failed after {self.settings.provider.max_attempts} "
                    f"attempt(s) (last error: {state.last_error or 'see digest status'}); send "
                    f"to them again with digest deliver --retry-failed {self.scheduled.path}"
                )
            if unknown:  # maybe sent, maybe not: never called sent
                problems.append(
                    f"{unknown} recipient(s) unknown (the provider's answer was lost; they may "
                    "or may not have the issue); send to them again with digest deliver "
                    "--resend-unknown"
                )
            if problems:
                report.error = "incomplete: " + "; ".join(problems)
                self.store.set_issue_status(
                    self.slug, "incomplete", report.error, version=self.version
                )
            else:
                self.store.set_issue_status(self.slug, "sent", version=self.version)

    def _fill(
        self,
        pool: ThreadPoolExecutor,
        pending: dict[Future[list[Outcome]], ClaimedBatch],
        state: _RunState,
    ) -> None:
        """Start batches until every worker is busy, none is left, or we must hold."""
        settings = self.settings
        while (
            not state.stopping
            and not self.stop.is_set()
            and len(pending) < settings.delivery.concurrency
        ):
            hold = state.hold_until - time.monotonic()
            if hold > 0:
                if pending:
                    return  # collect answers while holding back
                self.stop.wait(min(hold, settings.provider.max_retry_delay))
                continue
            try:
                batch = self.store.next_batch(
                    self.slug, self.provider.batch_size, self.clock(), self.version
                )
            except IssueChanged as change:
                state.changed = str(change)
                return
            if batch is None:
                return
            rate = settings.delivery.rate_limit
            slot = self.store.send_slot(len(batch.recipients), rate, time.time()) if rate else None
            pending[pool.submit(self.send, batch, slot)] = batch

    def _guard(self, state: _RunState) -> None:
        """Pause the issue when, past ``guard_after`` answered recipients, hard bounces or
        complaints (refusals while sending and provider events alike) exceed the rates
        the bulk-sender rules allow; scheduling the issue again resumes it."""
        delivery = self.settings.delivery
        if not delivery.guard_after or state.answered < delivery.guard_after or state.stopping:
            return
        events = self.store.issue_event_counts(self.slug, self.rendered.issue_id)
        for kind, what, limit in (
            ("hard_bounce", "hard bounces", delivery.guard_hard_bounce_rate),
            ("complaint", "complaints", delivery.guard_complaint_rate),
        ):
            rate = min(1.0, events.get(kind, 0) / state.answered)
            if rate > limit:
                state.stop_reason = (
                    f"paused by the reputation guard: {percent(rate)} {what} after "
                    f"{state.answered:,} recipients (limit {percent(limit)}); see digest report "
                    f"{self.scheduled.path}, clean the list, then resume with digest schedule "
                    f"{self.scheduled.path} --at now"
                )
                return

    def _wait_for_retries(self, state: _RunState) -> bool:
        """Sleep until the next retry is due (renewing the lease); False if none is."""
        retry_at = self.store.next_retry_at(self.slug)
        if retry_at is None:
            return False
        pause = (retry_at - self.clock()).total_seconds()
        if pause > 0 and self.stop.wait(min(pause, max(0.05, self.lease.total_seconds() / 3))):
            return False
        reason = self.store.claim_issue(
            self.slug, self.owner, self.clock(), self.lease, self.version
        )
        if reason is not None:
            state.changed = reason
            return False
        return True

    def _settle(self, batch: ClaimedBatch, future: Future[list[Outcome]], state: _RunState) -> None:
        """Record one answered batch and update the stop rules."""
        try:
            outcomes = future.result()
        except ConfigError as err:  # refused credentials and the like: stop now, nothing sent
            outcomes = [
                Outcome(m.email, FAILED, reason=str(err), retryable=True) for m in batch.recipients
            ]
            state.fatal = state.fatal or err
        except ProviderError as err:  # an answer we cannot read: it may have been sent
            outcomes = []
            state.last_error = str(err)
        except StoreError:
            raise  # the outcome cannot be recorded: stop; the batch stays in flight
        except DigestError as err:
            outcomes = []
            state.last_error = str(err)
        results = self.record(batch, outcomes)
        if state.fatal is not None:
            return
        halted = next((o.reason for o in outcomes if o.halt), None)
        if halted is not None and state.stop_reason is None:
            state.stop_reason = (
                f"stopped: {halted}; nobody was suppressed. Fix the cause, then resume with "
                f"digest schedule {self.scheduled.path} --at now"
            )
        state.settled += sum(r.status != "pending" for r in results)
        throttled = [o for o in outcomes if o.throttled]
        if throttled:  # slow everyone down, not only this batch's recipients
            asked = max((o.retry_after or 0.0) for o in throttled)
            delay = max(asked, self.settings.provider.retry_delay)
            state.hold_until = max(state.hold_until, time.monotonic() + delay)
        state.answered += sum(r.status in ("accepted", "rejected") for r in results)
        self._guard(state)
        if any(r.status in ("accepted", "rejected") for r in results):
            state.consecutive = 0
        elif throttled and len(throttled) == len(outcomes):
            pass  # being asked to slow down is not the provider failing
        else:
            state.consecutive += 1
            state.last_error = next((r.error for r in results if r.error), state.last_error)
            limit = self.settings.delivery.max_consecutive_failures
            if state.consecutive >= limit and state.stop_reason is None:
                state.stop_reason = (
                    f"stopped after {state.consecutive} batches in a row failed; "
                    f"last error: {state.last_error}"
                )


@dataclass
class _RunState:
    settled: int = 0
    consecutive: int = 0
    last_error: str | None = None
    stop_reason: str | None = None
    fatal: BaseException | None = None
    changed: str | None = None  # the operator unscheduled or rescheduled the issue
    hold_until: float = 0.0  # monotonic time before which no batch starts (after a 429)
    answered: int = 0  # recipients accepted or rejected (the reputation guard's base)

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None or self.fatal is not None or self.changed is not None
