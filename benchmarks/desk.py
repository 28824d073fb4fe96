"""Benchmark: the editors' desk, in this process (Starlette's TestClient, a real SQLite
store, real issue files in a temporary folder).

    .venv/bin/python benchmarks/desk.py --experts 30 --issues 1000

- open: GET an issue of N experts in the editor (read, render, personalise, check) the
  first time, and again (the render of an unchanged file is kept: the preview frames
  reuse it), median of nine;
- save: POST one changed excerpt (stale-save check, YAML round trip, validation, atomic
  write, audit entry) and follow it to the editor page again, median of ten;
- list: GET the issues list with M issue files, the first time (every subject read from
  its file) and after (kept until a file changes), median of ten.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.testclient import TestClient

from digest.compose import compose
from digest.config import Settings
from digest.desk.app import create_desk_app
from digest.desk.passwords import hash_password
from digest.issuefile import Expert, dump_issue, write_issue
from digest.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "harbor-cities.md"
PASSWORD = "benchmark passphrase"


def make_issue(folder: Path, experts: int) -> Path:
    issue, path = compose([str(SAMPLE)], Settings(), url="https://example.org/h", out_dir=folder)
    base = issue.sections[0].experts
    many = [
        Expert(
            name=f"{e.name} {i}",
            affiliation=e.affiliation,
            excerpt=e.excerpt,
            read_more=f"{e.read_more}-{i}",
        )
        for i in range(experts)
        for e in [base[i % len(base)]]
    ]
    section = issue.sections[0].model_copy(update={"experts": tuple(many)})
    issue = issue.model_copy(update={"sections": (section,)})
    write_issue(dump_issue(issue), path, force=True)
    return path


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experts", type=int, default=30)
    parser.add_argument("--issues", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("DIGEST_SIGNING_KEY", "benchmark-signing-key-0123456789")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        issues = folder / "issues"
        issues.mkdir()
        settings = Settings.model_validate(
            {
                "compose": {"issues_dir": str(issues)},
                "delivery": {"database": str(folder / "digest.sqlite3")},
            }
        )
        big = make_issue(issues, args.experts)
        store = SQLiteStore(folder / "digest.sqlite3")
        store.add_user("bench@example.org", None, "editor", hash_password(PASSWORD))
        client = TestClient(create_desk_app(settings, store), base_url="http://127.0.0.1:8027")
        client.post("/sign-in", data={"email": "bench@example.org", "password": PASSWORD})
        url = f"/issues/{big.stem}"

        start = time.perf_counter()
        assert client.get(url).status_code == 200
        first_open = time.perf_counter() - start
        opened = []
        for _ in range(9):
            start = time.perf_counter()
            page = client.get(url)
            opened.append(time.perf_counter() - start)
            assert page.status_code == 200
        saved = []
        for i in range(10):
            page = client.get(url).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            base = re.search(r'name="base" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            form = {"csrf": csrf, "base": base, "s0.e3.excerpt": f"A changed excerpt, take {i}."}
            start = time.perf_counter()
            answer = client.post(url, data=form)
            saved.append(time.perf_counter() - start)
            assert answer.status_code == 200 and "Saved." in answer.text

        text = (ROOT / "issues").glob("*.yaml")
        sample_text = next(iter(text)).read_text(encoding="utf-8")
        for i in range(args.issues):
            (issues / f"2026-01-01-issue-{i:05d}.yaml").write_text(sample_text, encoding="utf-8")
        start = time.perf_counter()
        first = client.get("/")
        cold = time.perf_counter() - start
        assert first.status_code == 200
        warm = []
        for _ in range(10):
            start = time.perf_counter()
            client.get("/")
            warm.append(time.perf_counter() - start)
        store.close()
    print(
        json.dumps(
            {
                "experts": args.experts,
                "open_first_ms": round(first_open * 1000, 1),
                "open_again_ms": median_ms(opened),
                "save_and_reopen_ms": median_ms(saved),
                "issues": args.issues + 1,
                "list_first_ms": round(cold * 1000, 1),
                "list_ms": median_ms(warm),
            }
        )
    )


if __name__ == "__main__":
    main()
