"""Benchmark: how long a `digest` command takes to start, median of N runs.

    .venv/bin/python benchmarks/startup.py --runs 15

Times `digest --help`, `digest deliver --help` and `digest deliver` with nothing due (in
an empty folder), each as a fresh process, as cron or a shell runs them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = [["--help"], ["deliver", "--help"], ["deliver"], ["check", "--help"]]


def median_seconds(args: list[str], runs: int, cwd: str) -> float:
    env = {**os.environ, "DIGEST_SIGNING_KEY": "benchmark-signing-key-0123"}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "digest", *args], cwd=cwd, env=env,
                       capture_output=True, check=True)  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-startup-") as folder:
        for command in COMMANDS:
            seconds = median_seconds(command, args.runs, folder)
            print(
                json.dumps(
                    {"command": "digest " + " ".join(command), "median_s": round(seconds, 3)}
                )
            )


if __name__ == "__main__":
    main()
