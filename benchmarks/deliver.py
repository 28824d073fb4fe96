"""Benchmark: deliver the bundled sample to N generated subscribers through the fake
provider servers on 127.0.0.1, beside a bare httpx baseline posting the same payloads
(same batch size, same unsubscribe token lengths, so the same bytes) to the same fake
with the same number of requests in flight.

The fake runs in its own process and answers with TCP_NODELAY, so neither side pays a
delayed-ACK stall and neither side's CPU includes the fake's. Besides wall time, each
side reports the CPU seconds of its own process per message (robust to a busy machine).

    .venv/bin/python benchmarks/deliver.py --subscribers 100000 --provider mailgun postmark smtp

Reports wall time, messages per second, CPU per message, the delivery ledger's bytes
per recipient (its table and indexes), peak RSS of the delivering process (its own
VmHWM, which leaves out the benchmark's pages shared before exec), how many
times the issue was rendered during delivery, and the baseline's figures. Run from the
repository root (it uses the fakes in tests/fakes.py). Everything stays on loopback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.compose import compose  # noqa: E402
from digest.config import Delivery, Settings, Smtp, Unsubscribe  # noqa: E402
from digest.config import Provider as ProviderSettings  # noqa: E402
from digest.issuefile import dump_issue, write_issue  # noqa: E402
from digest.schedule import schedule  # noqa: E402
from digest.store.sqlite import SQLiteStore, now_utc, stamp  # noqa: E402

SIGNING_ENV = "DIGEST_BENCH_SIGNING_KEY"
KEY_ENV = "DIGEST_BENCH_PROVIDER_KEY"
CHILD = Path(__file__).with_name("_deliver_child.py")
FAKE_SERVER = Path(__file__).with_name("_fake_server.py")


class FakeProcess:
    """A fake provider running in its own process (benchmarks/_fake_server.py)."""

    def __init__(self, name: str, latency: float = 0.0) -> None:
        """``latency``: seconds the fake takes to answer each request, as a real
        provider across the internet does."""
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE_SERVER), name, repr(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        hello = json.loads(self.proc.stdout.readline())
        self.url, self.key, self.port = hello["url"], hello["key"], hello["port"]

    def ask(self, command: str) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer: dict[str, int] = json.loads(self.proc.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)


def fill_store(path: Path, count: int) -> None:
    store = SQLiteStore(path)
    now = stamp(now_utc())
    with store.transaction() as db:
        # everyone in Asia: a segment "region = 'Asia'" picks every one of them, so a
        # segmented send mails as many as an unsegmented one (--segment compares them)
        db.executemany(
            "INSERT INTO subscribers (uid, email, name, status, attributes, created_at, updated_at)"
            " VALUES (?, ?, ?, 'active', '{\"region\": \"Asia\"}', ?, ?)",
            (
                (f"u{i:015d}", f"reader{i:07d}@example.org", f"Reader {i}", now, now)
                for i in range(count)
            ),
        )
        # each on the default newsletter, as an import would make them
        db.execute(
            "INSERT INTO subscriptions (subscriber_id, newsletter, status, changed_at)"
            " SELECT id, 'main', 'subscribed', ? FROM subscribers",
            (now,),
        )
    store.close()


# --fields: two uses of a subscriber field in the email, each filled per reader
FIELD_USES = (
    "{{ subscriber.line('Our desk in {region} writes every Friday.', fallback='') }} "
    "Regional news: {{ subscriber.get('region', 'your region') }}."
)


def field_templates(folder: Path) -> Path:
    """The bundled templates with FIELD_USES after the greeting, in both parts."""
    import shutil

    from digest.render.templates import bundled_templates

    target = folder / "templates"
    shutil.copytree(bundled_templates(), target)
    for name, before, use in (
        ("email.mjml.j2", "{%- if staff_note %}",
         '<mj-section background-color="#ffffff"><mj-column><mj-text>'
         + FIELD_USES + "</mj-text></mj-column></mj-section>\n"),
        ("email.txt.j2", "{%- if staff_note %}", FIELD_USES + "\n"),
    ):  # fmt: skip
        text = (target / name).read_text(encoding="utf-8")
        (target / name).write_text(text.replace(before, use + before, 1), encoding="utf-8")
    return target


def bytes_per_delivery_row(path: Path, count: int) -> float:
    """The ledger's pages (the table and its indexes, as SQLite's dbstat counts them)
    per recipient."""
    import sqlite3

    db = sqlite3.connect(path)
    try:
        total = db.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name = 'deliveries'"
            " OR name IN (SELECT name FROM sqlite_master WHERE tbl_name = 'deliveries')"
        ).fetchone()[0]
    finally:
        db.close()
    return round(total / count, 1)


def run_child(mode: str, folder: Path, fake: FakeProcess, settings: Settings) -> dict[str, float]:
    (folder / "settings.json").write_text(settings.model_dump_json(by_alias=True), encoding="utf-8")
    env = {
        **os.environ,
        SIGNING_ENV: "benchmark-signing-key-0123456789",
        KEY_ENV: fake.key,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, os.environ.get("BENCH_CHILD", str(CHILD)), mode, str(folder)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    if proc.wait() != 0:
        raise SystemExit(f"{mode} run failed: {output}")
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def bench(
    provider: str, count: int, segment: str | None = None, fields: bool = False
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp:
        folder = Path(tmp)
        fake = FakeProcess(provider)
        try:
            settings = Settings(
                provider=ProviderSettings(
                    name=provider,
                    base_url=None if provider == "smtp" else fake.url,
                    smtp=Smtp(
                        host="127.0.0.1",
                        port=fake.port or 25,
                        security="none",
                    ),
                    api_key_env=KEY_ENV,
                    domain="mg.example.org",
                    timeout=120,
                    batch_size=int(os.environ["BENCH_BATCH"])
                    if os.environ.get("BENCH_BATCH")
                    else None,
                ),
                unsubscribe=Unsubscribe(signing_key_env=SIGNING_ENV),
                delivery=Delivery(
                    database=str(folder / "bench.sqlite3"),
                    concurrency=int(os.environ.get("BENCH_CONCURRENCY", "2")),
                ),
                audience={"fields": {"region": {"type": "text"}}},
                render={"templates": str(field_templates(folder))} if fields else {},
            )
            fill_store(folder / "bench.sqlite3", count)
            os.environ[SIGNING_ENV] = "benchmark-signing-key-0123456789"
            issue, path = compose(
                [str(ROOT / "samples" / "harbor-cities.md")],
                settings,
                url="https://example.org/h",
                out_dir=folder,
            )
            write_issue(dump_issue(issue), path, force=True)
            store = SQLiteStore(folder / "bench.sqlite3")
            schedule(store, path, settings, "now", "UTC", dt.datetime.now(dt.UTC), segment=segment)
            store.close()
            digest = run_child("deliver", folder, fake, settings)
            row_bytes = bytes_per_delivery_row(folder / "bench.sqlite3", count)
            counted = fake.ask("count")
            fake.ask("clear")
            baseline = run_child("baseline", folder, fake, settings)
        finally:
            fake.close()
    return {
        "provider": provider,
        "segment": segment,
        "fields": fields,
        "subscribers": count,
        "digest_seconds": round(digest["seconds"], 2),
        "digest_messages_per_second": round(count / digest["seconds"]),
        "digest_cpu_us_per_message": round(digest["cpu_seconds"] / count * 1e6, 1),
        "digest_peak_rss_mb": round(digest["peak_rss_mb"], 1),
        "renders_during_delivery": int(digest["renders"]),
        "bytes_per_delivery_row": row_bytes,
        "delivered": counted["delivered"],
        "delivered_unique": counted["unique"],
        "baseline_seconds": round(baseline["seconds"], 2),
        "baseline_cpu_us_per_message": round(baseline["cpu_seconds"] / count * 1e6, 1),
        "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
        "ratio_to_baseline": round(digest["seconds"] / baseline["seconds"], 2),
        "cpu_ratio_to_baseline": round(digest["cpu_seconds"] / baseline["cpu_seconds"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[100_000])
    parser.add_argument(
        "--provider",
        nargs="+",
        default=["mailgun", "postmark", "smtp"],
        choices=["mailgun", "postmark", "smtp"],
    )
    parser.add_argument(
        "--segment", help="schedule with this segment, e.g. \"region = 'Asia'\" (everyone)"
    )
    parser.add_argument(
        "--fields",
        action="store_true",
        help="templates that use a subscriber field twice (each filled per reader)",
    )
    args = parser.parse_args()
    for count in args.subscribers:
        for provider in args.provider:
            started = time.monotonic()
            result = bench(provider, count, args.segment, args.fields)
            result["total_run_seconds"] = round(time.monotonic() - started, 1)
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
