"""The subscriber list: adding and merging people (imports), their status, unsubscribing,
forgetting, and reading the list a page at a time."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from digest.defaultkey import DEFAULT_KEY
from digest.store.common import (
    IMPORT_CACHE_KIB,
    UPSERT_CHUNK,
    Database,
    _chunks,
    loaded_attributes,
    new_uid,
    now_utc,
    stamp,
    suppression_hash,
)
from digest.store.core import StoreCore
from digest.store.joining import mark_joined, mark_left, subscribe
from digest.store.records import (
    ACTIVE,
    Subscriber,
    SubscriberRow,
    UpsertReport,
)


class Subscribers(StoreCore):
    _store_part = True

    @staticmethod
    def _subscriber(row: Any) -> Subscriber:
        return Subscriber(
            row["id"], row["uid"], row["email"], row["name"], row["status"],
            json.loads(row["attributes"] or "{}"), row["created_at"], row["updated_at"],
        )  # fmt: skip

    def upsert_subscribers(
        self,
        rows: Iterable[SubscriberRow],
        *,
        resubscribe: bool,
        newsletters: tuple[str, ...] = (DEFAULT_KEY,),
        leaving: dict[str, str] | None = None,
        joined: dict[str, str] | None = None,
    ) -> UpsertReport:
        """Add or update subscribers in one transaction, reading ``rows`` as a stream, and
        subscribe the active ones to ``newsletters``.

        A row may carry its number in the source (a fourth element), for the report. An
        address seen twice in the same call is merged into its first row: the first name
        given wins, attributes are combined, and it is counted once. ``leaving`` (address
        -> unsubscribed, bounced or complained), filled while ``rows`` is read, names the
        people an export says had left: they take that status in the same transaction,
        and are never active for anyone to see. ``joined`` (address -> YYYY-MM-DD), filled
        the same way, is when new people subscribed, where their export says."""
        report = UpsertReport()
        now = stamp(now_utc())
        # a large list touches every page of three indexes: a bigger page cache for the
        # length of the import keeps that off the disk (BENCHMARKS.md)
        self.db.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        self.db.execute(f"PRAGMA temp.cache_size = -{IMPORT_CACHE_KIB // 2}")
        try:
            return self._upsert(
                rows, resubscribe, report, now, newsletters,
                {} if leaving is None else leaving, {} if joined is None else joined,
            )  # fmt: skip
        finally:
            self.db.execute("PRAGMA cache_size = -2000")
            self.db.execute("PRAGMA temp.cache_size = -2000")

    def _upsert(
        self,
        rows: Iterable[SubscriberRow],
        resubscribe: bool,
        report: UpsertReport,
        now: str,
        newsletters: tuple[str, ...],
        leaving: dict[str, str],
        joined: dict[str, str],
    ) -> UpsertReport:
        with self.transaction() as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS upsert_seen (email TEXT PRIMARY KEY)")
            db.execute("DELETE FROM upsert_seen")
            suppressions = db.execute("SELECT EXISTS (SELECT 1 FROM suppressions)").fetchone()[0]
            for chunk in _chunks(rows, UPSERT_CHUNK):
                self._upsert_chunk(db, chunk, resubscribe, bool(suppressions), report, now)
            report.left += mark_left(db, leaving, now)
            mark_joined(db, joined, now)
            subscribe(db, "SELECT email FROM upsert_seen", newsletters, now, again=resubscribe)
            db.execute("DELETE FROM upsert_seen")
        return report

    def _upsert_chunk(
        self,
        db: Database,
        chunk: list[SubscriberRow],
        resubscribe: bool,
        suppressions: bool,
        report: UpsertReport,
        now: str,
    ) -> None:
        """A chunk of rows in a handful of statements: the addresses looked up together,
        then inserts and updates with executemany."""
        fresh: dict[str, tuple[str | None, dict[str, object], int]] = {}
        later: list[tuple[str, str | None, dict[str, object]]] = []  # seen in an earlier row
        earlier = self._known(db, "upsert_seen", "email", [r[0] for r in chunk])
        for row in chunk:
            email, name, attributes = row[0], row[1], row[2]
            if email in earlier or email in fresh:
                later.append((email, name, attributes))
            else:
                fresh[email] = (name, attributes, row[3] if len(row) == 4 else 0)
        db.executemany(
            "INSERT INTO upsert_seen (email) VALUES (:email)", ({"email": e} for e in fresh)
        )
        if suppressions:
            hashes = {suppression_hash(email): email for email in fresh}
            for hashed in self._known(db, "suppressions", "hash", list(hashes)):
                email = hashes[hashed]
                if not resubscribe:
                    report.suppressed.append((fresh.pop(email)[2], email))
                    continue
                db.execute("DELETE FROM suppressions WHERE hash = :hash", {"hash": hashed})
        existing = {
            r["email"]: r
            for r in db.execute(
                "SELECT id, email, name, status, attributes FROM subscribers"
                f" WHERE email {db.dialect.in_list('emails')}",
                {"emails": db.dialect.values(list(fresh))},
            )
        }
        inserts: list[dict[str, str | None]] = []
        updates: list[dict[str, object]] = []
        for email, (name, attributes, _) in fresh.items():
            found = existing.get(email)
            if found is None:
                attrs = json.dumps(attributes, sort_keys=True, ensure_ascii=False)
                inserts.append(
                    {
                        "uid": new_uid(),
                        "email": email,
                        "name": name or None,
                        "attrs": attrs,
                        "now": now,
                    }
                )
                continue
            if found["status"] != ACTIVE and not resubscribe:
                report.kept += 1
                continue
            new_name = name if name else found["name"]
            merged = json.loads(found["attributes"] or "{}") | attributes
            new_attrs = json.dumps(merged, sort_keys=True, ensure_ascii=False)
            if (new_name, new_attrs, ACTIVE) == (
                found["name"],
                found["attributes"],
                found["status"],
            ):
                report.unchanged += 1
                continue
            updates.append({"name": new_name, "attrs": new_attrs, "now": now, "id": found["id"]})
        db.executemany(
            "INSERT INTO subscribers (uid, email, name, status, attributes, created_at, updated_at)"
            " VALUES (:uid, :email, :name, 'active', :attrs, :now, :now)",
            inserts,
        )
        db.executemany(
            "UPDATE subscribers SET name = :name, attributes = :attrs, status = 'active',"
            " updated_at = :now WHERE id = :id",
            updates,
        )
        report.added += len(inserts)
        report.updated += len(updates)
        for email, name, attributes in later:
            self._merge_duplicate(db, report, email, name, attributes, now)

    @staticmethod
    def _known(db: Database, table: str, column: str, values: list[str]) -> set[str]:
        """Which of ``values`` are in ``table.column``."""
        query = f"SELECT {column} FROM {table} WHERE {column} {db.dialect.in_list('values')}"
        return {row[0] for row in db.execute(query, {"values": db.dialect.values(values)})}

    @staticmethod
    def _merge_duplicate(
        db: Database,
        report: UpsertReport,
        email: str,
        name: str | None,
        attributes: dict[str, object],
        now: str,
    ) -> None:
        """A second row for an address already handled in this call. Its first row left
        it active (added, updated or unchanged) or not (kept, or forgotten: no row);
        only an active one takes the merge."""
        row = db.execute(
            "SELECT id, name, status, attributes, updated_at FROM subscribers WHERE email = :email",
            {"email": email},
        ).fetchone()
        if row is None or row["status"] != ACTIVE:
            return
        new_name = row["name"] or name
        new_attrs = json.dumps(
            json.loads(row["attributes"] or "{}") | attributes, sort_keys=True, ensure_ascii=False
        )
        if (new_name, new_attrs) == (row["name"], row["attributes"]):
            return
        db.execute(
            "UPDATE subscribers SET name = :name, attributes = :attrs, updated_at = :now"
            " WHERE id = :id",
            {"name": new_name, "attrs": new_attrs, "now": now, "id": row["id"]},
        )
        if row["updated_at"] != now:  # its first row had left it unchanged
            report.unchanged -= 1
            report.updated += 1

    def field_values(self, ids: list[int], fields: Sequence[str]) -> dict[int, dict[str, Any]]:
        """The attributes ``fields`` of each of the subscribers ``ids``, as stored (a
        field someone lacks is left out): what a message's greeting and fields read, a
        batch at a time."""
        rows = self.db.execute(
            f"SELECT id, attributes FROM subscribers WHERE id {self.db.dialect.in_list('ids')}",
            {"ids": self.db.dialect.values(ids)},
        ).fetchall()
        found: dict[int, dict[str, Any]] = {i: {} for i in ids}
        for row in rows:
            attributes = loaded_attributes(row["attributes"])
            found[row["id"]] = {f: attributes[f] for f in fields if attributes.get(f) is not None}
        return found

    def get_subscriber(self, email: str) -> Subscriber | None:
        row = self.db.execute(
            "SELECT * FROM subscribers WHERE email = :email", {"email": email}
        ).fetchone()
        return self._subscriber(row) if row else None

    def set_status(self, email: str, status: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE subscribers SET status = :status, updated_at = :now WHERE email = :email",
                {"status": status, "now": stamp(now_utc()), "email": email},
            )
            return cursor.rowcount > 0

    def forget(self, email: str) -> bool:
        """Delete the subscriber's personal data; keep a hash so imports skip them."""
        with self.transaction() as db:
            db.execute(
                db.dialect.insert_ignore(
                    "INSERT INTO suppressions (hash, created_at) VALUES (:hash, :now)"
                ),
                {"hash": suppression_hash(email), "now": stamp(now_utc())},
            )
            deleted = db.execute("DELETE FROM subscribers WHERE email = :email", {"email": email})
            return deleted.rowcount > 0

    def is_suppressed(self, email: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM suppressions WHERE hash = :hash", {"hash": suppression_hash(email)}
        ).fetchone()
        return row is not None

    def iter_subscribers(self, status: str | None = None, page: int = 1000) -> Iterator[Subscriber]:
        """Every subscriber in id order, read a page at a time."""
        last = 0
        while True:
            found = self.subscriber_page(status, last, page)
            if not found:
                return
            yield from found
            last = found[-1].id

    def subscriber_page(self, status: str | None, after: int, size: int) -> list[Subscriber]:
        if status:
            rows = self.db.execute(
                "SELECT * FROM subscribers WHERE status = :status AND id > :after"
                " ORDER BY id LIMIT :size",
                {"status": status, "after": after, "size": size},
            ).fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM subscribers WHERE id > :after ORDER BY id LIMIT :size",
                {"after": after, "size": size},
            ).fetchall()
        return [self._subscriber(row) for row in rows]

    def count_subscribers(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status"
            " UNION ALL SELECT 'pending', COUNT(*) FROM signups HAVING COUNT(*) > 0"
        ).fetchall()
        return {row["status"]: row["n"] for row in rows}
