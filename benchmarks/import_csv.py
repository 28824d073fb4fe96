"""Benchmark: `digest subscribers import` of a generated CSV with N rows.

    .venv/bin/python benchmarks/import_csv.py --rows 1000000
    .venv/bin/python benchmarks/import_csv.py --rows 1000000 --store postgres

Writes a CSV (email, name, city; one row in a thousand a duplicate, one in a thousand
invalid) to a temporary folder and runs the real command in a child process against a
fresh store; reports wall time, rows per second and the child's peak RSS (from wait4).
With ``--store postgres`` it starts its own PostgreSQL server on 127.0.0.1 (as the tests
do) and times three imports into the same database: the file into the empty list, the
same file again (everyone known, nothing changes), and a file half of whose addresses
are new and half known with a new city (merged into a full list). Nothing leaves the
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_csv(path: Path, rows: int, start: int = 0, city: str = "Oslo") -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("email,name,city\n")
        for i in range(start, start + rows):
            if i % 1000 == 999:
                handle.write(f"not-an-address-{i},Broken {i},{city}\n")
            elif i % 1000 == 500:
                handle.write(f"reader{i - 1:07d}@example.org,,Bergen\n")  # a duplicate
            else:
                handle.write(f"reader{i:07d}@example.org,Reader {i},{city}\n")


def run_import(folder: Path, name: str, rows: int, what: str) -> dict[str, object]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "subscribers", "import", name],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = proc.stdout.read().decode() if proc.stdout else ""  # before waiting: no stall
    err = proc.stderr.read().decode() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"import failed: {err[-500:]}")
    return {
        "import": what,
        "rows": rows,
        "file_mb": round((folder / name).stat().st_size / 1e6, 1),
        "seconds": round(seconds, 1),
        "rows_per_second": round(rows / seconds),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "summary": out.strip().splitlines()[-1],
    }


def bench_sqlite(rows: int) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="digest-import-") as tmp:
        folder = Path(tmp)
        write_csv(folder / "list.csv", rows)
        return [run_import(folder, "list.csv", rows, "sqlite: into an empty list")]


def bench_postgres(rows: int, server: object) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="digest-import-") as tmp:
        folder = Path(tmp)
        url = server.new_database()  # type: ignore[attr-defined]
        (folder / "config.yaml").write_text(f"delivery:\n  database: {url}\n")
        subprocess.run(
            [sys.executable, "-m", "digest", "db", "migrate"],
            cwd=folder,
            check=True,
            capture_output=True,
        )
        write_csv(folder / "list.csv", rows)
        write_csv(folder / "half-new.csv", rows, start=rows // 2, city="Tromsø")
        return [
            run_import(folder, "list.csv", rows, "postgres: into an empty list"),
            run_import(folder, "list.csv", rows, "postgres: the same file again"),
            run_import(folder, "half-new.csv", rows, "postgres: half new, half changed"),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    server = None
    if args.store == "postgres":
        sys.path.insert(0, str(ROOT))
        from tests.pg import Server

        server = Server()
    try:
        for rows in args.rows:
            results = bench_sqlite(rows) if server is None else bench_postgres(rows, server)
            for result in results:
                print(json.dumps(result, ensure_ascii=False), flush=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
