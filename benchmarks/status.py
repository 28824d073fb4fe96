"""Benchmark: `digest status` on an issue with a million recipients.

Builds a store with N subscribers and an issue part-way through delivery (95 % of
recipients accepted over the last hour, 1 % rejected, the rest pending or in flight),
then times the store's three questions in process and the whole command in fresh
processes (median of --runs).

    .venv/bin/python benchmarks/status.py --recipients 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.store import ScheduledIssue  # noqa: E402
from digest.store.sqlite import SQLiteStore, now_utc, stamp, unix  # noqa: E402

SLUG = "2026-03-04-can-harbor-cities-hold-the-line-against-the-sea"


def build(folder: Path, count: int) -> Path:
    path = folder / "digest.sqlite3"
    store = SQLiteStore(path)
    now = now_utc()
    text = stamp(now)
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO subscribers (uid, email, name, status, attributes, created_at, updated_at)"
            " VALUES (?, ?, NULL, 'active', '{}', ?, ?)",
            ((f"u{i:015d}", f"reader{i:07d}@example.org", text, text) for i in range(count)),
        )
        db.execute(
            "INSERT INTO subscriptions (subscriber_id, newsletter, status, changed_at)"
            " SELECT id, 'main', 'subscribed', ? FROM subscribers",
            (text,),
        )
    store.save_schedule(ScheduledIssue(SLUG, f"issues/{SLUG}.yaml", "h", now, "scheduled", "{}"))
    key = store.db.execute("SELECT key FROM issues WHERE slug = ?", (SLUG,)).fetchone()[0]
    start = unix(now) - 3600
    sent = int(count * 0.97)

    def rows():  # type: ignore[no-untyped-def]
        for i in range(1, count + 1):
            if i <= sent:
                status = "rejected" if i % 100 == 0 else "accepted"
                yield key, i, status, i // 1000, "<m@x>", start + (i * 3600) // sent
            elif i <= sent + 2000:
                yield key, i, "inflight", i // 1000, None, unix(now)

    with store.transaction() as db:
        db.executemany(
            "INSERT INTO deliveries (issue, subscriber_id, status, batch_id, message_id, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows(),
        )
        db.execute(
            "UPDATE issues SET status = 'sending', cursor = ?, started_at = ? WHERE slug = ?",
            (sent + 2000, text, SLUG),
        )
    store.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-status-") as tmp:
        folder = Path(tmp)
        path = build(folder, args.recipients)
        (folder / "config.yaml").write_text(f"delivery:\n  database: {path}\n")
        store = SQLiteStore(path)
        timings = {}
        for name, call in (
            ("delivery_counts", lambda: store.delivery_counts(SLUG)),
            ("remaining", lambda: store.remaining(SLUG)),
            (
                "accepted_since",
                lambda: store.accepted_since(SLUG, now_utc() - dt.timedelta(minutes=1)),
            ),
        ):
            samples = []
            for _ in range(args.runs):
                started = time.perf_counter()
                call()
                samples.append(time.perf_counter() - started)
            timings[name] = round(statistics.median(samples), 4)
        store.close()
        command = []
        for _ in range(args.runs):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "digest", "status", f"issues/{SLUG}.yaml"],
                cwd=folder,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            )
            command.append(time.perf_counter() - started)
            assert done.returncode == 0, done.stderr
        startup = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "digest", "--help"], capture_output=True)
            startup.append(time.perf_counter() - started)
        print(done.stdout, end="")
        print(
            json.dumps(
                {
                    "recipients": args.recipients,
                    "queries_seconds": timings,
                    "digest_status_seconds": round(statistics.median(command), 3),
                    "digest_help_seconds": round(statistics.median(startup), 3),
                    "database_mb": round(path.stat().st_size / 1e6, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
