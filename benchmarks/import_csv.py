"""Benchmark: `digest subscribers import` of a generated CSV with N rows.

    .venv/bin/python benchmarks/import_csv.py --rows 1000000

Writes a CSV (email, name, city; one row in a thousand a duplicate, one in a thousand
invalid) to a temporary folder and runs the real command in a child process against a
fresh SQLite store; reports wall time, rows per second and the child's peak RSS (from
wait4). Nothing leaves the machine.
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


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("email,name,city\n")
        for i in range(rows):
            if i % 1000 == 999:
                handle.write(f"not-an-address-{i},Broken {i},Oslo\n")
            elif i % 1000 == 500:
                handle.write(f"reader{i - 1:07d}@example.org,,Bergen\n")  # a duplicate
            else:
                handle.write(f"reader{i:07d}@example.org,Reader {i},Oslo\n")


def bench(rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="digest-import-") as tmp:
        folder = Path(tmp)
        write_csv(folder / "list.csv", rows)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "subscribers", "import", "list.csv"],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        out = proc.stdout.read().decode() if proc.stdout else ""  # before waiting: no stall
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"import failed: {out[-500:]}")
        summary = out.strip().splitlines()[-1]
        size = (folder / "list.csv").stat().st_size
    return {
        "rows": rows,
        "file_mb": round(size / 1e6, 1),
        "seconds": round(seconds, 1),
        "rows_per_second": round(rows / seconds),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    for rows in parser.parse_args().rows:
        print(json.dumps(bench(rows)), flush=True)


if __name__ == "__main__":
    main()
