"""Benchmark: subscribers created per second through the HTTP API of a real `digest
serve` (issue 27).

    .venv/bin/python benchmarks/api.py --creates 5000 --clients 8

Starts `digest serve` on 127.0.0.1 over a fresh SQLite list, makes a write token, then
posts `POST /api/v1/subscribers` from a few client threads (keep-alive connections),
once subscribing at once (`double_opt_in: false`: the list written in the request) and
once as signups (the default: recorded in the inbox, confirmed by mail later). Each
call is checked (202) and audited by the server. Reports calls per second and the
server's CPU per call. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.store.sqlite import SQLiteStore


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(creates: int, clients: int, double_opt_in: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="digest-api-") as tmp:
        folder = Path(tmp)
        (folder / "config.yaml").write_text(
            "api:\n  burst: 1000000\n  per_second: 1000000\n", encoding="utf-8"
        )
        store = SQLiteStore(folder / "digest.sqlite3")
        token = store.add_api_token("bench", "write")
        store.close()
        env = {**os.environ, "DIGEST_SIGNING_KEY": "bench-signing-key-0123456789"}
        server = subprocess.Popen(
            [sys.executable, "-m", "digest", "serve", "--port", "0", "--no-access-log"],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            base = server.stdout.readline().strip()
            failures: list[int] = []
            cpu_before = cpu_seconds(server.pid)
            started = time.monotonic()

            def client(numbers: range) -> None:
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
                    for n in numbers:
                        response = http.post(
                            "/api/v1/subscribers",
                            json={"email": f"api{n:07d}@example.org", "name": f"Reader {n}",
                                  "double_opt_in": double_opt_in},
                        )  # fmt: skip
                        if response.status_code != 202:
                            failures.append(response.status_code)

            threads = [
                threading.Thread(target=client, args=(range(i, creates, clients),))
                for i in range(clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.monotonic() - started
            cpu = cpu_seconds(server.pid) - cpu_before
        finally:
            server.terminate()
            server.wait(timeout=30)
        if failures:
            raise SystemExit(f"{len(failures)} calls failed: {sorted(set(failures))}")
        store = SQLiteStore(folder / "digest.sqlite3")
        made = store.count_subscribers().get("active", 0) if not double_opt_in else None
        audited = len(store.audit_entries(limit=creates + 10))
        store.close()
    return {
        "creates": creates, "clients": clients, "double_opt_in": double_opt_in,
        "seconds": round(seconds, 2), "per_second": round(creates / seconds),
        "server_cpu_ms_per_call": round(cpu / creates * 1000, 3),
        "subscribed": made, "audited": audited,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    for double_opt_in in (False, True):
        print(json.dumps(bench(args.creates, args.clients, double_opt_in)), flush=True)


if __name__ == "__main__":
    main()
