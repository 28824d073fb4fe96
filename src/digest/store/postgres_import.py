"""Importing subscribers into PostgreSQL as sets of rows, not a row at a time.

The SQLite store looks each chunk of addresses up and writes it back; over a network
that is a round trip per chunk and a Python pass over every row twice. Here the rows go
to the server by COPY, a block at a time, into a temporary table, and a handful of
statements merge each block into the list. A thread reads and checks the file while
the server merges the block before: the two run on different cores.

What the set statements cannot decide exactly as the row-by-row rules do is set aside
and goes through those rules (the SQLite store's, translated) at the end, in file order:

- a row whose address may have come earlier in the file (its rows merge in order; a
  small filter of the addresses seen so far says "maybe", never a wrong "no");
- an address that was forgotten (its suppression decides);
- a known subscriber with attributes the row does not name (the two sets merge as JSON
  objects, and the text must be what the SQLite store writes; where the row names every
  attribute they have, the row's own text is that merge).

Everything happens in one transaction under the store's write lock: a file that breaks
part-way changes nothing. Memory stays flat: a block or two of rows at a time.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar, cast

from digest.store.joining import mark_joined, mark_left, subscribe
from digest.store.records import SubscriberRow, UpsertReport
from digest.store.sqlite import UPSERT_CHUNK, SQLiteStore, now_utc, stamp, suppression_hash

T = TypeVar("T")
BLOCK_ROWS = 20_000  # rows merged at a time
ANALYZE_AFTER = 1000  # rows added or changed that call for fresh statistics
READ_AHEAD = 2  # blocks the reading thread may have ready
UID_BYTES = 12  # as new_uid: 96 bits, 16 URL-safe characters with no padding
SUBSCRIBER_COLUMNS = "subscribers (uid, email, name, status, attributes, created_at, updated_at)"
COLUMNS = "place BIGINT, n BIGINT, email TEXT, name TEXT, attributes JSONB, uid TEXT, hash TEXT, again BOOLEAN"


def uids(count: int) -> list[str]:
    """``count`` new subscriber uids from one read of the system's random source
    (12 bytes encode to exactly 16 base64 characters, so the text splits evenly)."""
    text = base64.urlsafe_b64encode(os.urandom(UID_BYTES * count)).decode("ascii")
    return [text[i : i + 16] for i in range(0, 16 * count, 16)]


class SeenFilter:
    """Which addresses may have come before: a Bloom filter of 2**27 bits (16 MB) and two
    probes. It never says "new" for an address it was given; at a million addresses it
    says "maybe" for about two new ones in ten thousand (those take the row-by-row path)."""

    BITS = 27

    def __init__(self) -> None:
        self.bits = bytearray(1 << (self.BITS - 3))

    def seen(self, text: str) -> bool:
        """Whether ``text`` may have been given before; it is remembered either way."""
        h = hash(text)
        a, b = h & ((1 << self.BITS) - 1), (h >> self.BITS) & ((1 << self.BITS) - 1)
        bits, at_a, at_b, bit_a, bit_b = self.bits, a >> 3, b >> 3, 1 << (a & 7), 1 << (b & 7)
        found = bool(bits[at_a] & bit_a and bits[at_b] & bit_b)
        bits[at_a] |= bit_a
        bits[at_b] |= bit_b
        return found


_SPECIAL = frozenset(',"\r\n')


def _field(text: str) -> str:
    """A text as one CSV field for COPY: quoted where it must be (an empty one is NULL)."""
    if _SPECIAL.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def _blocks(
    rows: Iterable[SubscriberRow], hashed: bool, now: str | None
) -> Iterator[tuple[str, str]]:
    """The rows as CSV for COPY, a block at a time, in two texts: rows to stage and rows
    to set aside, both with the columns of ``COLUMNS``: place in the file, row number
    (for the report), email, name, attributes, uid, suppression hash, and whether the
    address may have come before. An empty field is NULL to COPY (no name; no hash).

    Given ``now`` (a list that was empty, no one forgotten), a row whose address comes
    for the first time is written as a subscriber instead (uid, email, name, status,
    attributes, created_at, updated_at), to be copied straight into the list."""
    seen = SeenFilter().seen
    pending: list[SubscriberRow] = []
    place = 0

    def block() -> tuple[str, str]:
        nonlocal place
        staged: list[str] = []
        aside: list[str] = []
        for row, uid in zip(pending, uids(len(pending)), strict=True):
            place += 1
            email, name, attributes = row[0], row[1], row[2]
            again = seen(email)
            address = _field(email)
            person = _field(name) if name else ""
            attrs = (
                _field(json.dumps(attributes, sort_keys=True, ensure_ascii=False))
                if attributes
                else "{}"
            )
            if now is not None and not again:
                staged.append(f"{uid},{address},{person},active,{attrs},{now},{now}\n")
                continue
            (aside if now is not None else staged).append(
                f"{place},{row[3] if len(row) == 4 else 0},{address},"
                f"{person},{attrs},{uid},"
                f"{suppression_hash(email) if hashed else ''},{'t' if again else 'f'}\n"
            )
        pending.clear()
        return "".join(staged), "".join(aside)

    for row in rows:
        pending.append(row)
        if len(pending) == BLOCK_ROWS:
            yield block()
    if pending:
        yield block()


def read_ahead(items: Iterator[T], depth: int = READ_AHEAD) -> Iterator[T]:
    """``items`` made in a thread of their own, up to ``depth`` ahead of the consumer.
    An error while making them is raised here; leaving early stops the thread."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer("item", item):
                    return
        except BaseException as err:  # handed to the consumer, raised there
            offer("error", err)
        else:
            offer("end", None)

    worker = threading.Thread(target=produce, name="import-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "error":
                raise value
            if kind == "end":
                return
            yield value
    finally:
        stop.set()
        worker.join()


# Rows the set statements leave to the row-by-row rules (see the module's docstring).
def _set_aside(block: str) -> str:
    return f"""
    WITH moved AS (
        DELETE FROM {block} r
        WHERE r.again
           OR (r.hash IS NOT NULL AND r.hash IN (SELECT hash FROM suppressions))
           OR (r.attributes <> '{{}}' AND EXISTS (
                SELECT 1 FROM subscribers s WHERE s.email = r.email AND s.attributes <> '{{}}'
                AND s.attributes <> r.attributes
                AND s.attributes - ARRAY(SELECT jsonb_object_keys(r.attributes))
                    <> '{{}}'::jsonb))
        RETURNING r.*
    )
    INSERT INTO import_slow SELECT * FROM moved
"""


# The rest of a block is new addresses and known ones, each once, merged in one statement:
# each row matched to the subscriber it names (one index probe a row); known ones updated
# where something changes (a name given replaces theirs, attributes given replace an empty
# set; one who left stays so unless resubscribe); new ones added in file order; counted.
def _merge_statement(block: str) -> str:
    return f"""
    WITH matched AS (
        SELECT r.place, r.email, r.uid, r.name, r.attributes, s.id, s.status,
               s.name AS old_name, s.attributes AS old_attributes,
               COALESCE(r.name, s.name) AS new_name,
               CASE WHEN r.attributes = '{{}}' THEN s.attributes ELSE r.attributes END
                   AS new_attributes
        FROM {block} r LEFT JOIN subscribers s ON s.email = r.email
    ),
    changed AS (
        UPDATE subscribers s SET name = m.new_name, attributes = m.new_attributes,
            status = 'active', updated_at = %(now)s
        FROM matched m
        WHERE s.id = m.id AND (%(resubscribe)s OR m.status = 'active')
          AND (m.status <> 'active' OR m.old_name IS DISTINCT FROM m.new_name
               OR m.old_attributes <> m.new_attributes)
        RETURNING 1
    ),
    added AS (
        INSERT INTO subscribers (uid, email, name, status, attributes, created_at, updated_at)
        SELECT uid, email, name, 'active', attributes, %(now)s, %(now)s FROM matched
        WHERE id IS NULL ORDER BY place
        RETURNING 1
    )
    SELECT count(id), count(id) FILTER (WHERE status <> 'active'),
           (SELECT count(*) FROM changed), (SELECT count(*) FROM added)
    FROM matched
"""


# While blocks are merged: a block is small beside the list, so index probes rather than
# scans of the whole list (whose statistics are stale until the import commits).
_SETTINGS = (
    "SET LOCAL enable_hashjoin = off",
    "SET LOCAL enable_mergejoin = off",
)


def upsert(
    store: SQLiteStore,
    rows: Iterable[SubscriberRow],
    *,
    resubscribe: bool,
    newsletters: tuple[str, ...],
    leaving: dict[str, str],
    joined: dict[str, str],
) -> UpsertReport:
    """What ``Store.upsert_subscribers`` promises, on PostgreSQL (module docstring)."""
    report = UpsertReport()
    now = stamp(now_utc())
    with store.transaction() as db:
        raw = cast(Any, db).raw  # the PostgreSQL store's connection (psycopg)
        for setting in _SETTINGS:
            raw.execute(setting)
        hashed = bool(raw.execute("SELECT EXISTS (SELECT 1 FROM suppressions)").fetchone()[0])
        empty = not raw.execute("SELECT EXISTS (SELECT 1 FROM subscribers)").fetchone()[0]
        raw.execute(f"CREATE TEMP TABLE import_slow ({COLUMNS}) ON COMMIT DROP")
        if empty and not hashed:
            # every address that comes for the first time is new: straight into the list
            for staged, aside in read_ahead(_blocks(rows, hashed, now)):
                report.added += _copy(raw, SUBSCRIBER_COLUMNS, staged)
                _copy(raw, "import_slow", aside)
            merged = "SELECT email FROM subscribers"
        else:
            merged = _merge_blocks(raw, rows, hashed, resubscribe, report, now)
        _one_by_one(store, db, merged, report, resubscribe, hashed, now)
        report.left += mark_left(db, leaving, now)
        mark_joined(db, joined, now)
        emails = f"{merged} UNION ALL SELECT email FROM import_slow"
        subscribe(db, emails, newsletters, now, again=resubscribe)
        if report.added + report.updated >= ANALYZE_AFTER:
            # delivery often follows at once, before autovacuum has looked: without
            # statistics the planner reads the whole list for every batch
            raw.execute("ANALYZE subscribers")
    return report


def _copy(raw: Any, target: str, text: str) -> int:
    """COPY CSV ``text`` into ``target``; the rows copied."""
    if not text:
        return 0
    cursor = raw.cursor()
    with cursor.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy:
        copy.write(text)
    return int(cursor.rowcount)


def _merge_blocks(
    raw: Any,
    rows: Iterable[SubscriberRow],
    hashed: bool,
    resubscribe: bool,
    report: UpsertReport,
    now: str,
) -> str:
    """Each block staged, its rows set aside where they must be, the rest merged; a query
    for the addresses merged (the rows set aside are checked against them at the end)."""
    blocks = 0
    for staged, _ in read_ahead(_blocks(rows, hashed, None)):
        blocks += 1
        table = f"import_block_{blocks}"  # each block keeps its own table
        raw.execute(f"CREATE TEMP TABLE {table} ({COLUMNS}) ON COMMIT DROP")
        _copy(raw, table, staged)
        raw.execute(_set_aside(table))
        _merge(raw, table, report, resubscribe, now)
    return (
        " UNION ALL ".join(f"SELECT email FROM import_block_{n}" for n in range(1, blocks + 1))
        or "SELECT NULL WHERE false"
    )


def _merge(raw: Any, table: str, report: UpsertReport, resubscribe: bool, now: str) -> None:
    known, left, updated, added = raw.execute(
        _merge_statement(table), {"now": now, "resubscribe": resubscribe}
    ).fetchone()
    kept = 0 if resubscribe else int(left)
    report.added += int(added)
    report.updated += int(updated)
    report.kept += kept
    report.unchanged += int(known) - kept - int(updated)


def _one_by_one(
    store: SQLiteStore,
    db: Any,
    merged: str,
    report: UpsertReport,
    resubscribe: bool,
    hashed: bool,
    now: str,
) -> None:
    """The set-aside rows through the row-by-row rules, in file order, a chunk at a time.
    An address whose first row was merged as a set counts as seen: its later rows merge
    into it as the rules for a repeated address say."""
    raw = db.raw
    if not raw.execute("SELECT EXISTS (SELECT 1 FROM import_slow)").fetchone()[0]:
        return
    db.execute("CREATE TEMP TABLE IF NOT EXISTS upsert_seen (email TEXT PRIMARY KEY)")
    db.execute("DELETE FROM upsert_seen")
    raw.execute("SET LOCAL enable_hashjoin = on")  # the merged addresses, looked up as a set
    raw.execute(
        "INSERT INTO upsert_seen (email) SELECT DISTINCT w.email FROM import_slow w"
        f" WHERE w.again AND w.email IN ({merged})"
    )
    raw.execute(
        "DECLARE import_slow_rows NO SCROLL CURSOR FOR"
        " SELECT email, name, attributes, n FROM import_slow ORDER BY place"
    )
    while chunk := raw.execute(f"FETCH {UPSERT_CHUNK} FROM import_slow_rows").fetchall():
        rows: list[SubscriberRow] = [(r[0], r[1], json.loads(r[2]), int(r[3])) for r in chunk]
        store._upsert_chunk(db, rows, resubscribe, hashed, report, now)
    raw.execute("CLOSE import_slow_rows")
    db.execute("DELETE FROM upsert_seen")
