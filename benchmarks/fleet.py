"""Benchmark: one issue delivered by a fleet of `digest deliver` processes sharing a
PostgreSQL store, beside one process on SQLite, in the same run.

    .venv/bin/python benchmarks/fleet.py --subscribers 200000 --provider mailgun --workers 1 2 4

Starts its own PostgreSQL server on 127.0.0.1 (initdb/pg_ctl from Debian's `postgresql`,
as in the tests) and the fake provider in its own process. For each configuration:
wall time from the workers' start to the last one's exit, messages per second, the
largest peak RSS of any worker, and whether every subscriber got exactly one message.
Also times importing the subscribers into PostgreSQL (`digest subscribers import`).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deliver import KEY_ENV, SIGNING_ENV, FakeProcess  # noqa: E402

from digest.compose import compose  # noqa: E402
from digest.config import Settings  # noqa: E402
from digest.issuefile import dump_issue, write_issue  # noqa: E402
from digest.schedule import schedule  # noqa: E402
from digest.store import open_database  # noqa: E402


def config_text(database: str, provider: str, fake: FakeProcess) -> str:
    return json.dumps(
        {
            "provider": {
                "name": provider,
                "base_url": fake.url,
                "api_key_env": KEY_ENV,
                "domain": "mg.example.org",
                "timeout": 120,
            },
            "unsubscribe": {"signing_key_env": SIGNING_ENV},
            "delivery": {"database": database, "concurrency": 2, "lease_seconds": 120},
        }
    )


# `digest deliver`, reporting its own peak RSS (VmHWM) on its last line of stderr
WORKER = (
    "import atexit, sys\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            print('peak-rss-kb', line.split()[1], file=sys.stderr)\n"
    "atexit.register(peak)\n"
    "from digest.cli import main\n"
    "sys.argv = ['digest', 'deliver']\n"
    "main()\n"
)


def _ticks(pid: int | str, children: bool = False) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(x) for x in fields[11 : 15 if children else 13])


def cpu_seconds(pid: int) -> float:
    return _ticks(pid) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU of every PostgreSQL process, with the ended backends its postmaster reaped."""
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if "(postgres)" in (entry / "stat").read_text():
                    total += _ticks(entry.name, children=True)
            except OSError:
                continue
    return total / os.sysconf("SC_CLK_TCK")


def run(cli: list[str], folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cli, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cli)} failed: {done.stderr}")
    return done


def one(
    store_kind: str, workers: int, count: int, provider: str, server: object, latency: float
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="digest-fleet-") as tmp:
        folder = Path(tmp)
        fake = FakeProcess(provider, latency)
        try:
            database = (
                server.new_database()  # type: ignore[attr-defined]
                if store_kind == "postgres"
                else str(folder / "digest.sqlite3")
            )
            (folder / "config.yaml").write_text(config_text(database, provider, fake))
            env = {**os.environ, SIGNING_ENV: "benchmark-signing-key-0123456789", KEY_ENV: fake.key}
            cli = [sys.executable, "-m", "digest"]
            if store_kind == "postgres":
                run([*cli, "db", "migrate"], folder, env)
            csv = folder / "subscribers.csv"
            with csv.open("w") as handle:
                handle.write("email,name\n")
                for i in range(count):
                    handle.write(f"reader{i:07d}@example.org,Reader {i}\n")
            started = time.perf_counter()
            run([*cli, "subscribers", "import", str(csv)], folder, env)
            import_seconds = time.perf_counter() - started
            issue, path = compose(
                [str(ROOT / "samples" / "harbor-cities.md")],
                Settings(),
                url="https://example.org/h",
                out_dir=folder,
            )
            write_issue(dump_issue(issue), path, force=True)
            os.environ[SIGNING_ENV] = env[SIGNING_ENV]
            from digest.config import load_settings

            settings = load_settings(folder / "config.yaml")
            store = open_database(database)
            schedule(store, path, settings, "now", "UTC", dt.datetime.now(dt.UTC))  # type: ignore[arg-type]
            store.close()
            fake_cpu, pg_cpu = cpu_seconds(fake.proc.pid), postgres_cpu_seconds()
            started = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", WORKER],
                    cwd=folder,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(workers)
            ]
            peaks = []
            worker_cpu = 0.0
            for proc in procs:
                assert proc.stderr is not None
                err = proc.stderr.read()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                worker_cpu += usage.ru_utime + usage.ru_stime
                if proc.returncode != 0:
                    raise SystemExit(f"deliver failed: {err}")
                peaks += [
                    int(x.split()[1]) for x in err.splitlines() if x.startswith("peak-rss-kb")
                ]
            seconds = time.perf_counter() - started
            fake_cpu = cpu_seconds(fake.proc.pid) - fake_cpu
            pg_cpu = postgres_cpu_seconds() - pg_cpu if store_kind == "postgres" else 0.0
            counted = fake.ask("count")
        finally:
            fake.close()
    return {
        "store": store_kind,
        "workers": workers,
        "provider": provider,
        "latency_ms": round(latency * 1000),
        "subscribers": count,
        "seconds": round(seconds, 2),
        "messages_per_second": round(count / seconds),
        "import_rows_per_second": round(count / import_seconds),
        "delivered": counted["delivered"],
        "delivered_unique": counted["unique"],
        "largest_worker_peak_rss_mb": round(max(peaks) / 1024, 1),
        # CPU seconds of each party while the workers ran, and how many of the machine's
        # cores that kept busy on average (2.0: both, all the time)
        "cpu_workers": round(worker_cpu, 1),
        "cpu_fake": round(fake_cpu, 1),
        "cpu_postgres": round(pg_cpu, 1),
        "cores_busy": round((worker_cpu + fake_cpu + pg_cpu) / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=200_000)
    parser.add_argument("--provider", default="mailgun", choices=["mailgun", "postmark"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL runs only")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="how long the fake provider takes to answer each request (a real one: 100-300 ms)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.pg import Server

    server = Server()
    try:
        runs = [] if args.no_sqlite else [("sqlite", 1)]
        for kind, workers in [*runs, *(("postgres", w) for w in args.workers)]:
            result = one(
                kind, workers, args.subscribers, args.provider, server, args.latency_ms / 1000
            )
            print(json.dumps(result), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
