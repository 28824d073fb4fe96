"""PostgreSQL imports subscribers as sets (store/postgres_import.py): COPY a block at a
time, then a few statements. Its answers must be the SQLite store's row-by-row answers,
row for row and count for count, whatever the file and the list hold; and a file that
breaks part-way must change nothing there either."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.store import UpsertReport, open_database
from digest.store import postgres_import as sets
from digest.store.sqlite import SQLiteStore
from digest.subscribers import ImportError_, import_csv

POOL = [f"p{i}@example.org" for i in range(40)]
NAMES = [None, "Ann", "Bo, Jr.", 'Cy "the" Kid', "Dee\\Backslash", "Émile", "李明"]
KEYS = ["city", "team", "a long key", "é", "b"]
STATUSES = ["unsubscribed", "bounced", "complained"]


@pytest.fixture
def pair(tmp_path: Path, postgres_url: str) -> Iterator[tuple[SQLiteStore, SQLiteStore]]:
    lite, pg = open_database(str(tmp_path / "digest.sqlite3")), open_database(postgres_url)
    yield lite, pg
    lite.close()
    pg.close()


def _rows(rng: random.Random, count: int) -> list[tuple[str, str | None, dict[str, str], int]]:
    rows = []
    for number in range(2, count + 2):
        attributes = {
            k: rng.choice(["x", "y", "zz, with comma", '"q"']) for k in KEYS if rng.random() < 0.3
        }
        rows.append((rng.choice(POOL), rng.choice(NAMES), attributes, number))
    return rows  # type: ignore[return-value]


def _state(store: SQLiteStore) -> list[tuple[object, ...]]:
    return sorted(
        (s.email, s.name, s.status, sorted(s.attributes.items()), store.is_suppressed(s.email))
        for s in store.iter_subscribers()
    ) + [("forgotten", e) for e in POOL if store.is_suppressed(e)]  # type: ignore[operator]


def _counts(report: UpsertReport) -> tuple[object, ...]:
    return report.added, report.updated, report.unchanged, report.kept, sorted(report.suppressed)


@pytest.mark.parametrize("filter_says", ["as it knows", "maybe, always"])
def test_a_postgres_import_agrees_with_the_row_by_row_rules_on_any_list(
    pair: tuple[SQLiteStore, SQLiteStore], monkeypatch: pytest.MonkeyPatch, filter_says: str
) -> None:
    """Random files (repeated addresses, names with commas and quotes, attributes old and
    new) into random lists (people who left, people forgotten), with and without
    --resubscribe, in blocks small enough that repeats cross them; with the filter of
    addresses seen exact, and with it answering "maybe" to everything."""
    lite, pg = pair
    monkeypatch.setattr(sets, "BLOCK_ROWS", 7)
    if filter_says != "as it knows":
        monkeypatch.setattr(sets.SeenFilter, "seen", lambda self, text: True)
    rng = random.Random(20261129)
    for round_ in range(12):
        seed = rng.random()
        for store_ in (lite, pg) if round_ else ():  # the first into an empty list
            rng_ops = random.Random(seed)
            for email in rng_ops.sample(POOL, 4):
                if rng_ops.random() < 0.3:
                    store_.forget(email)
                else:
                    store_.set_status(email, rng_ops.choice(STATUSES))
        rows = _rows(rng, rng.randrange(1, 60))
        resubscribe = rng.random() < 0.3
        expected = lite.upsert_subscribers(rows, resubscribe=resubscribe)
        got = pg.upsert_subscribers(rows, resubscribe=resubscribe)
        assert _counts(got) == _counts(expected)
        assert _state(pg) == _state(lite)


def test_a_postgres_import_into_an_empty_list_adds_everyone_in_file_order_and_merges_repeats(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sets, "BLOCK_ROWS", 3)
    store = open_database(postgres_url)
    rows = [(f"r{i}@example.org", f"R{i}", {}) for i in range(10)]
    rows.insert(5, ("r1@example.org", "Late", {"city": "Oslo"}))  # a repeat, across a block
    report = store.upsert_subscribers(rows, resubscribe=False)
    assert (report.added, report.updated, report.unchanged) == (10, 0, 0)
    listed = list(store.iter_subscribers())
    assert [s.email for s in listed] == [f"r{i}@example.org" for i in range(10)]  # id order
    assert (listed[1].name, listed[1].attributes) == ("R1", {"city": "Oslo"})
    assert len({s.uid for s in listed}) == 10 and all(len(s.uid) == 16 for s in listed)
    store.close()


def test_a_postgres_import_broken_part_way_changes_nothing_and_stops_its_reader(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of the file were merged already when the broken row is reached: the
    transaction takes them back, and the thread reading the file is gone."""
    monkeypatch.setattr(sets, "BLOCK_ROWS", 100)
    store = open_database(postgres_url)
    import_csv(store, _write(tmp_path / "a.csv", "email\nfirst@example.org\n"))
    good = "".join(f"n{i}@example.org,N{i}\n" for i in range(1000))
    broken = _write(
        tmp_path / "b.csv", "email,name\n" + good + '"open@example.org,' + "x" * 200_000
    )
    threads = threading.active_count()
    with pytest.raises(
        ImportError_,
        match=r"b\.csv: row \d+ \(line \d+\) does not parse \(field larger than field limit",
    ):
        import_csv(store, broken)
    assert [s.email for s in store.iter_subscribers()] == ["first@example.org"]
    assert threading.active_count() == threads
    assert import_csv(store, _write(tmp_path / "c.csv", "email,name\n" + good)).added == 1000
    store.close()


def test_the_seen_filter_never_calls_a_repeat_new() -> None:
    seen = sets.SeenFilter()
    addresses = [f"a{i}@example.org" for i in range(50_000)]
    first = [seen.seen(a) for a in addresses]
    assert all(seen.seen(a) for a in addresses)
    assert sum(first) < 50  # new ones called "maybe": rare


def test_new_uids_are_random_url_safe_and_the_store_s_length() -> None:
    made = sets.uids(1000)
    assert len(set(made)) == 1000
    assert all(len(u) == 16 and u.replace("-", "").replace("_", "").isalnum() for u in made)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_after_a_large_postgres_import_a_batch_reads_only_its_own_subscribers(
    postgres_url: str,
) -> None:
    """Delivery usually follows an import at once, before PostgreSQL's autovacuum has
    looked at the new rows: without statistics the planner takes the list for a few
    hundred rows and reads all of it, then sorts, for every batch."""
    store = open_database(postgres_url)
    store.upsert_subscribers(
        [(f"s{i}@example.org", None, {}) for i in range(20_000)], resubscribe=False
    )
    store.close()
    import psycopg

    with psycopg.connect(postgres_url) as connection:
        plan = [
            row[0]
            for row in connection.execute(
                "EXPLAIN SELECT id, uid, email, name FROM subscribers"
                " WHERE status = 'active' AND id > 0 ORDER BY id LIMIT 1000"
            )
        ]
    assert "Sort" not in " ".join(plan) and "Index" in plan[1], plan
