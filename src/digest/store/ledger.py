"""The delivery ledger: one row per issue and subscriber, formed into batches,
with each outcome recorded (a permanent refusal suppresses the person), retries,
unknowns, and the fleet's shared sending rate."""

from __future__ import annotations

import datetime as dt

from digest.store.common import (
    Database,
    event_row,
    insert_event,
    now_utc,
    parse_stamp,
    stamp,
    unix,
)
from digest.store.issues import Issues
from digest.store.records import (
    BatchRecipient,
    ClaimedBatch,
    IssueChanged,
    Result,
)
from digest.store.segments import recipients_clause


class Ledger(Issues):
    _store_part = True

    def _batch_recipients(self, key: int, batch_id: int) -> tuple[BatchRecipient, ...]:
        rows = self.db.execute(
            "SELECT d.subscriber_id, s.uid, s.email, s.name, d.attempts FROM deliveries d"
            " JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.issue = :key AND d.status = 'inflight' AND d.batch_id = :batch"
            " ORDER BY d.subscriber_id",
            {"key": key, "batch": batch_id},
        ).fetchall()
        return tuple(
            BatchRecipient(r["subscriber_id"], r["uid"], r["email"], r["name"], r["attempts"])
            for r in rows
        )

    def _stranded(self, slug: str) -> list[int]:
        """In-flight batches nobody is answering for: with one process per issue (the
        lease), every one that is left when a process takes the issue."""
        return [
            r["id"]
            for r in self.db.execute(
                "SELECT id FROM batches WHERE issue = :slug AND status = 'inflight' ORDER BY id",
                {"slug": slug},
            )
        ]

    def inflight_batches(self, slug: str) -> list[ClaimedBatch]:
        ids = self._stranded(slug)
        key = self._key(slug)
        return [
            ClaimedBatch(i, self.batch_key(slug, i), self._batch_recipients(key, i)) for i in ids
        ]

    def batch_key(self, slug: str, batch_id: int) -> str:
        """The idempotency key of a batch: the same batch always gets the same key, and
        no other list's batch ever does."""
        return f"digest:{self.list_identity()[:12]}:{slug}:batch-{batch_id}"

    def mark_unknown(self, batch_ids: list[int], *, sequential: bool = False) -> int:
        """Settle batches stranded in flight: their recipients may or may not have been
        sent, so they become ``unknown``. With ``sequential`` (a provider that sends a
        batch one message at a time, in subscriber order, recording each answer before
        the next message), only the first recipient still in flight can have been sent;
        the ones after it never were, and go back to pending."""
        changed = 0
        now = now_utc()
        when, seconds = stamp(now), unix(now)
        with self.transaction() as db:
            for batch_id in batch_ids:
                found = db.execute(
                    "SELECT i.key FROM batches b JOIN issues i ON i.slug = b.issue"
                    " WHERE b.id = :batch",
                    {"batch": batch_id},
                ).fetchone()
                key = found["key"] if found else -1
                if sequential:
                    first = db.execute(
                        "SELECT min(subscriber_id) FROM deliveries"
                        " WHERE issue = :key AND status = 'inflight' AND batch_id = :batch",
                        {"key": key, "batch": batch_id},
                    ).fetchone()[0]
                    db.execute(
                        "UPDATE deliveries SET status = 'pending', next_attempt_at = :when,"
                        " updated_at = :seconds WHERE issue = :key AND status = 'inflight'"
                        " AND batch_id = :batch AND subscriber_id > :first",
                        {"when": when, "seconds": seconds, "key": key, "batch": batch_id,
                         "first": first if first is not None else -1},
                    )  # fmt: skip
                changed += db.execute(
                    "UPDATE deliveries SET status = 'unknown', updated_at = :seconds,"
                    " last_error = 'sent when digest stopped; the answer was lost'"
                    " WHERE issue = :key AND status = 'inflight' AND batch_id = :batch",
                    {"seconds": seconds, "key": key, "batch": batch_id},
                ).rowcount
                db.execute(
                    "UPDATE batches SET status = 'done' WHERE id = :batch", {"batch": batch_id}
                )
        return changed

    def _reopen(self, slug: str, now: dt.datetime, status: str, reset: str) -> int:
        """Recipients in ``status`` go back to pending (``reset``: more columns to set),
        and a finished issue becomes one being sent again."""
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = :when,"
                f" updated_at = :seconds{reset} WHERE issue = :key AND status = :status",
                {
                    "when": stamp(now),
                    "seconds": unix(now),
                    "key": self._key(slug),
                    "status": status,
                },
            ).rowcount
            if changed:
                db.execute(
                    "UPDATE issues SET status = 'sending', error = NULL WHERE slug = :slug"
                    " AND status IN ('sent', 'stopped', 'incomplete')",
                    {"slug": slug},
                )
            return changed

    def reopen_unknown(self, slug: str, now: dt.datetime) -> int:
        """Recipients whose outcome was lost are sent again (the operator's choice)."""
        return self._reopen(slug, now, "unknown", "")

    def reopen_failed(self, slug: str, now: dt.datetime) -> int:
        """Recipients whose attempts ran out get a fresh set of attempts."""
        return self._reopen(slug, now, "failed", ", attempts = 0")

    def next_batch(
        self, slug: str, size: int, now: dt.datetime, version: int
    ) -> ClaimedBatch | None:
        """Form the next batch and mark it in flight, atomically: due retries first, then
        the next active subscribers after the issue's cursor. Unsubscribe requests waiting
        in the inbox are applied first and subscribers who are no longer active are
        skipped, so an unsubscribe counts for every later batch. Raises IssueChanged when
        the issue was unscheduled or rescheduled since ``version``."""
        when, seconds, key = stamp(now), unix(now), self._key(slug)
        last, uids = self._inbox_pending()
        with self.transaction() as db:
            row = db.execute(
                "SELECT status, version, send_at, newsletter, segment FROM issues"
                " WHERE slug = :slug",
                {"slug": slug},
            ).fetchone()
            reason = self._still_due(row, version, now)
            if reason is not None:
                raise IssueChanged(reason)
            newsletter = row["newsletter"]
            if uids:
                self._unsubscribe(db, uids)
            db.execute(
                "UPDATE deliveries SET status = 'skipped', updated_at = :seconds"
                " WHERE issue = :key AND status = 'pending'"
                " AND NOT EXISTS (SELECT 1 FROM subscribers s"
                " JOIN subscriptions x ON x.subscriber_id = s.id AND x.newsletter = :newsletter"
                " WHERE s.id = deliveries.subscriber_id AND s.status = 'active'"
                " AND x.status = 'subscribed')",
                {"seconds": seconds, "key": key, "newsletter": newsletter},
            )
            retries = db.execute(
                # by the status index: the planner, without statistics, would read the
                # issue's whole ledger by its key for every batch
                "SELECT d.subscriber_id, s.uid, s.email, s.name, d.attempts"
                f" FROM deliveries d{db.dialect.indexed_by('deliveries_status')}"
                " JOIN subscribers s ON s.id = d.subscriber_id"
                " WHERE d.issue = :key AND d.status = 'pending' AND d.next_attempt_at <= :when"
                " ORDER BY d.next_attempt_at, d.subscriber_id LIMIT :size",
                {"key": key, "when": when, "size": size},
            ).fetchall()
            chosen = [
                BatchRecipient(r["subscriber_id"], r["uid"], r["email"], r["name"], r["attempts"])
                for r in retries
            ]
            fresh: list[BatchRecipient] = []
            if len(chosen) < size:
                cursor = db.execute(
                    "SELECT cursor FROM issues WHERE slug = :slug", {"slug": slug}
                ).fetchone()["cursor"]
                # the issue's newsletter's subscribers, by the subscribers' order: each
                # one's subscription is one probe of its primary key
                segment, values = recipients_clause(row["segment"], db.dialect.postgres)
                rows = db.execute(
                    "SELECT id, uid, email, name FROM subscribers s WHERE status = 'active'"
                    " AND id > :cursor AND EXISTS (SELECT 1 FROM subscriptions x"
                    " WHERE x.subscriber_id = s.id AND x.newsletter = :newsletter"
                    f" AND x.status = 'subscribed'){segment} ORDER BY id LIMIT :size",
                    {"cursor": cursor, "size": size - len(chosen), "newsletter": newsletter,
                     **values},
                ).fetchall()  # fmt: skip
                fresh = [BatchRecipient(r["id"], r["uid"], r["email"], r["name"], 0) for r in rows]
                if rows:
                    db.execute(
                        "UPDATE issues SET cursor = :cursor WHERE slug = :slug",
                        {"cursor": rows[-1]["id"], "slug": slug},
                    )
            if not chosen and not fresh:
                batch = None
            else:
                batch = self._open_batch(db, slug, key, now, chosen, fresh)
        self._inbox_done(last)
        return batch

    def _new_batch(self, db: Database, slug: str, now: dt.datetime) -> int:
        batch_id = db.execute(
            "INSERT INTO batches (issue, status, created_at) VALUES (:slug, 'inflight', :now)",
            {"slug": slug, "now": stamp(now)},
        ).lastrowid
        assert batch_id is not None
        return int(batch_id)

    def _open_batch(
        self,
        db: Database,
        slug: str,
        key: int,
        now: dt.datetime,
        chosen: list[BatchRecipient],
        fresh: list[BatchRecipient],
    ) -> ClaimedBatch:
        batch_id = self._new_batch(db, slug, now)
        seconds = unix(now)
        if chosen:  # due retries: rows that exist already
            db.execute(
                "UPDATE deliveries SET status = 'inflight', batch_id = :batch, updated_at = :seconds"
                f" WHERE issue = :key AND subscriber_id {db.dialect.in_list('ids')}",
                {"batch": batch_id, "seconds": seconds, "key": key,
                 "ids": db.dialect.values([r.subscriber_id for r in chosen])},
            )  # fmt: skip
        if fresh:
            self._insert_inflight(db, key, batch_id, seconds, [r.subscriber_id for r in fresh])
        members = tuple(sorted(chosen + fresh, key=lambda r: r.subscriber_id))
        return ClaimedBatch(batch_id, self.batch_key(slug, batch_id), members)

    @staticmethod
    def _insert_inflight(
        db: Database, key: int, batch_id: int, seconds: int, ids: list[int]
    ) -> None:
        """The ledger rows of subscribers in a batch for the first time (SQLite's way, by
        position for speed; PostgreSQL's is COPY, in store/postgres.py)."""
        db.executemany(
            "INSERT INTO deliveries (issue, subscriber_id, status, batch_id, updated_at)"
            " VALUES (?, ?, 'inflight', ?, ?)",
            [(key, i, batch_id, seconds) for i in ids],
        )

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
    ) -> None:
        """Write each recipient's outcome and (with ``close``) close the batch, in one
        transaction. A recipient the provider ``rejected`` for good (a 5xx, an inactive or
        invalid address) is a hard bounce: suppressed at once, with an event saying why. Only recipients still in flight are written: an outcome recorded
        earlier (SMTP records each message as it is answered) is never counted twice.

        Recipients with the same outcome (a whole Mailgun batch shares one message id)
        are written with one statement; the rest one row each."""
        now = now_utc()
        when, seconds, key = stamp(now), unix(now), self._key(slug)
        groups: dict[tuple[str, str | None, str | None, str | None], list[int]] = {}
        for r in results:
            retry = stamp(r.next_attempt_at) if r.next_attempt_at else None
            groups.setdefault((r.status, r.message_id, r.error, retry), []).append(r.subscriber_id)
        single: list[tuple[object, ...]] = []
        rejected = {r.subscriber_id: r.error or "" for r in results if r.status == "rejected"}
        with self._outcomes_transaction(suppressing=bool(rejected)) as db:
            for (status, message_id, error, retry), ids in groups.items():
                if len(ids) == 1:
                    single.append(
                        (status, message_id, error, retry, seconds, key, ids[0], batch_id)
                    )
                    continue
                self._record_group(
                    db, (status, message_id, error, retry, seconds, key, batch_id), ids
                )
            if single:
                self._record_each(db, single)
            if rejected:
                self._hard_bounce(db, slug, provider, rejected, when)
            if not close:
                return
            db.execute("UPDATE batches SET status = 'done' WHERE id = :batch", {"batch": batch_id})
            self._renew_lease(db, slug, owner, lease_until)

    @staticmethod
    def _record_group(db: Database, outcome: tuple[object, ...], ids: list[int]) -> None:
        """One outcome for many recipients of a batch: (status, message id, error, retry
        at, settled, issue key, batch id)."""
        status, message_id, error, retry, seconds, key, batch_id = outcome
        db.execute(
            "UPDATE deliveries SET status = :status,"
            " message_id = COALESCE(:message_id, message_id), last_error = :error,"
            " attempts = attempts + 1, next_attempt_at = :retry, updated_at = :seconds"
            " WHERE issue = :key AND batch_id = :batch AND status = 'inflight'"
            f" AND subscriber_id {db.dialect.in_list('ids')}",
            {"status": status, "message_id": message_id, "error": error, "retry": retry,
             "seconds": seconds, "key": key, "batch": batch_id, "ids": db.dialect.values(ids)},
        )  # fmt: skip

    @staticmethod
    def _record_each(db: Database, rows: list[tuple[object, ...]]) -> None:
        """Outcomes one recipient each: (status, message id, error, retry at, settled,
        issue key, subscriber id, batch id). SQLite's way, by position for speed;
        PostgreSQL's is one statement over arrays (store/postgres.py)."""
        db.executemany(
            "UPDATE deliveries SET status = ?, message_id = COALESCE(?, message_id), last_error = ?,"
            " attempts = attempts + 1, next_attempt_at = ?, updated_at = ?"
            " WHERE issue = ? AND subscriber_id = ? AND batch_id = ? AND status = 'inflight'",
            rows,
        )

    @staticmethod
    def _hard_bounce(
        db: Database, slug: str, provider: str, reasons: dict[int, str], when: str
    ) -> None:
        ids = db.dialect.values(list(reasons))
        rows = db.execute(
            f"SELECT id, email FROM subscribers WHERE id {db.dialect.in_list('ids')}",
            {"ids": ids},
        ).fetchall()
        db.executemany(
            insert_event(db.dialect),
            [
                event_row(f"sync:{slug}:{r['id']}", provider or "provider", "hard_bounce",
                          r["email"], r["id"], slug, None, reasons[r["id"]], when, when)
                for r in rows
            ],
        )  # fmt: skip
        db.execute(
            "UPDATE subscribers SET status = 'bounced', updated_at = :now"
            f" WHERE status = 'active' AND id {db.dialect.in_list('ids')}",
            {"now": when, "ids": ids},
        )

    def send_slot(self, count: int, rate: float, now: float) -> float | None:
        """When a batch of ``count`` may go so that every process on this store together
        stays under ``rate`` messages a second (Unix time); None when the process paces
        itself: on SQLite one process delivers an issue, and its own limiter suffices."""
        return None

    def next_retry_at(self, slug: str) -> dt.datetime | None:
        row = self.db.execute(
            "SELECT MIN(next_attempt_at) AS t FROM deliveries"
            " WHERE issue = :key AND status = 'pending'",
            {"key": self._key(slug)},
        ).fetchone()
        return parse_stamp(row["t"]) if row and row["t"] else None

    def remaining(self, slug: str) -> int:
        """Recipients not yet settled: pending, in flight, or not reached by the cursor."""
        issue = self.db.execute(
            "SELECT cursor, newsletter, segment FROM issues WHERE slug = :slug", {"slug": slug}
        ).fetchone()
        if issue is None:
            return 0
        # the issue's newsletter's subscribers (in its segment) the cursor has not reached
        segment, values = recipients_clause(issue["segment"], self.db.dialect.postgres)
        ahead = self.db.execute(
            "SELECT COUNT(*) FROM subscribers s WHERE status = 'active' AND id > :cursor"
            " AND EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id"
            f" AND x.newsletter = :newsletter AND x.status = 'subscribed'){segment}",
            {"cursor": issue["cursor"], "newsletter": issue["newsletter"], **values},
        ).fetchone()[0]
        open_rows = self.db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE issue = :key"
            " AND status IN ('pending', 'inflight')",
            {"key": self._key(slug)},
        ).fetchone()[0]
        return int(ahead + open_rows)

    def delivery_counts(self, slug: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, COUNT(*) AS n FROM deliveries WHERE issue = :key GROUP BY status",
            {"key": self._key(slug)},
        )
        return {r["status"]: r["n"] for r in rows}

    def unknown_recipients(self, slug: str) -> list[str]:
        rows = self.db.execute(
            "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
            " WHERE d.issue = :key AND d.status = 'unknown' ORDER BY s.email",
            {"key": self._key(slug)},
        )
        return [r["email"] for r in rows]

    def accepted_since(self, slug: str, since: dt.datetime) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE issue = :key AND status = 'accepted'"
            " AND updated_at >= :since",
            {"key": self._key(slug), "since": unix(since)},
        ).fetchone()
        return int(row[0])
