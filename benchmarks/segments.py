"""Benchmark: counting a segment in the database (issue 27), SQLite.

    .venv/bin/python benchmarks/segments.py --subscribers 1000000

Fills a fresh SQLite store with N active subscribers on the default newsletter, each
with a region (one in four in Asia) and a join date spread over three years, then counts
three segments as `digest schedule --segment` does before scheduling (the median of five
counts each, after one to warm the cache). Prints one JSON line per segment.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.segments import parse_segment
from digest.store.segments import segment_json
from digest.store.sqlite import SQLiteStore

REGIONS = ("Asia", "Europe", "Americas", "Africa")
FIELDS = {"region": ("text", ()), "score": ("number", ())}
SEGMENTS = (
    "region = 'Asia'",
    "region = 'Asia' and joined >= 2025-01-01",
    "region in ('Europe', 'Africa') or score > 90",
)


def fill(store: SQLiteStore, count: int) -> None:
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO subscribers (uid, email, name, status, attributes, created_at, updated_at)"
            " VALUES (?, ?, NULL, 'active', ?, ?, ?)",
            (
                (f"u{i:015d}", f"reader{i:07d}@example.org",
                 json.dumps({"region": REGIONS[i % 4], "score": i % 100}),
                 f"{2023 + i % 3}-0{1 + i % 9}-15T07:00:00.000+00:00",
                 "2026-01-01T07:00:00.000+00:00")
                for i in range(count)
            ),
        )  # fmt: skip
        db.execute(
            "INSERT INTO subscriptions (subscriber_id, newsletter, status, changed_at)"
            " SELECT id, 'main', 'subscribed', '2026-01-01T07:00:00.000+00:00' FROM subscribers"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp:
        store = SQLiteStore(Path(tmp) / "bench.sqlite3")
        started = time.perf_counter()
        fill(store, args.subscribers)
        filled = time.perf_counter() - started
        for text in SEGMENTS:
            stored = segment_json(text, parse_segment(text, FIELDS))
            store.count_recipients("main", stored)  # warm the cache
            times, found = [], 0
            for _ in range(5):
                began = time.perf_counter()
                found = store.count_recipients("main", stored)
                times.append(time.perf_counter() - began)
            print(json.dumps({
                "subscribers": args.subscribers, "segment": text, "count": found,
                "median_seconds": round(statistics.median(times), 3),
                "fill_seconds": round(filled, 1),
            }), flush=True)  # fmt: skip
        store.close()


if __name__ == "__main__":
    main()
