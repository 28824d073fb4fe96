"""Benchmark: provider events ingested per second through a real `digest serve`.

    .venv/bin/python benchmarks/webhook_events.py --subscribers 100000 --events 100000

Starts `digest serve` on 127.0.0.1 against a fresh list of N subscribers, then posts
SendGrid signed event webhooks (ECDSA, up to 1,000 events per POST, as SendGrid batches
them) from a few client threads: delivered, deferred, bounces and complaints for random
subscribers. Reports how fast the server answered the posts and how fast the events
were applied to the list (stored once each, suppressions made), and the server's CPU
time. With --while-delivering, a `digest deliver` to the outbox runs over the same
database at the same time. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes import sendgrid_keys, sendgrid_post

from digest.store.sqlite import SQLiteStore

KINDS = [("delivered", {}), ("delivered", {}), ("deferred", {}), ("delivered", {}),
         ("bounce", {"type": "bounce"}), ("spamreport", {})]  # fmt: skip


def make_events(count: int, subscribers: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    events = []
    for i in range(count):
        name, extra = KINDS[rng.randrange(len(KINDS))] if rng.random() < 0.05 else KINDS[0]
        who = rng.randrange(subscribers)
        events.append(
            {"email": f"reader{who:07d}@example.org", "event": name, "sg_event_id": f"ev-{seed}-{i}",
             "timestamp": int(time.time()), "issue": "bench-issue", **extra}
        )  # fmt: skip
    return events


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(
    subscribers: int, events: int, per_post: int, clients: int, delivering: bool
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="digest-events-") as tmp:
        folder = Path(tmp)
        store = SQLiteStore(folder / "digest.sqlite3")
        store.upsert_subscribers(
            ((f"reader{i:07d}@example.org", None, {}) for i in range(subscribers)),
            resubscribe=False,
        )
        store.close()
        private, public = sendgrid_keys()
        env = {
            **os.environ,
            "DIGEST_SENDGRID_WEBHOOK_KEY": public,
            "DIGEST_SIGNING_KEY": "bench-signing-key-0123456789",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "digest", "serve", "--port", "0"],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        deliverer = None
        try:
            assert server.stdout is not None
            base = server.stdout.readline().strip()
            if delivering:
                deliverer = start_delivery(folder, env)
            batches = [
                make_events(per_post, subscribers, seed) for seed in range(events // per_post)
            ]
            posts = [sendgrid_post(batch, private) for batch in batches]
            cpu_before = cpu_seconds(server.pid)
            started = time.monotonic()
            failures: list[int] = []

            def client(share: list[object]) -> None:
                with httpx.Client(base_url=base, timeout=60) as http:
                    for signed in share:
                        response = http.post(
                            signed.path, headers=signed.headers, content=signed.body
                        )  # type: ignore[attr-defined]
                        if response.status_code != 200:
                            failures.append(response.status_code)

            threads = [
                threading.Thread(target=client, args=(posts[i::clients],)) for i in range(clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            answered = time.monotonic() - started
            db = sqlite3.connect(folder / "digest.sqlite3")
            while True:
                stored = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                if stored >= events or time.monotonic() - started > 600:
                    break
                time.sleep(0.05)
            applied = time.monotonic() - started
            cpu = cpu_seconds(server.pid) - cpu_before
            suppressed = db.execute(
                "SELECT COUNT(*) FROM subscribers WHERE status != 'active'"
            ).fetchone()[0]
            db.close()
        finally:
            if deliverer is not None:
                deliverer.terminate()
                deliverer.wait(timeout=30)
            server.terminate()
            server.wait(timeout=30)
    if failures:
        raise SystemExit(f"{len(failures)} posts failed: {sorted(set(failures))}")
    return {
        "subscribers": subscribers,
        "events": events,
        "events_per_post": per_post,
        "clients": clients,
        "while_delivering": delivering,
        "posts_answered_s": round(answered, 2),
        "events_applied_s": round(applied, 2),
        "events_per_second": round(events / applied),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_us_per_event": round(cpu / events * 1e6, 1),
        "stored": stored,
        "suppressed": suppressed,
    }


def start_delivery(folder: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Schedule the bundled sample now and start delivering it to the outbox."""
    root = Path(__file__).resolve().parent.parent
    run = [sys.executable, "-m", "digest"]
    subprocess.run(
        [*run, "compose", str(root / "samples" / "harbor-cities.md"), "--url",
         "https://example.org/harbor/hold-the-line", "--force"],
        cwd=folder, env=env, check=True, capture_output=True,
    )  # fmt: skip
    issue = next((folder / "issues").glob("*.yaml"))
    subprocess.run(
        [*run, "schedule", str(issue), "--at", "now"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return subprocess.Popen(
        [*run, "deliver"], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-post", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--while-delivering", action="store_true")
    args = parser.parse_args()
    print(
        json.dumps(
            bench(
                args.subscribers, args.events, args.per_post, args.clients, args.while_delivering
            ),
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
