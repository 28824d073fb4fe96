"""Benchmark: composing one large conversation page (HTML, bylines, many experts).

    .venv/bin/python benchmarks/compose_large.py --mb 0.25 0.5 1 2

Generates a page of about N megabytes in the shape of a real conversation (an article
element, an intro, then one <div class="response"> per expert with an author line, an
affiliation and paragraphs with links and emphasis) and times `digest compose` on it as
a local file, in this process, best of three. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.compose import compose
from digest.config import Settings

PARAGRAPH = (
    "<p>The harbor authority has spent a decade on <a href='https://example.org/r/{i}'>surge "
    "barriers</a>, and the <em>results</em> are mixed. Insurers price the risk before the "
    "engineers finish their drawings, and councils meet in emergency session more often than "
    "they would like. What comes next is a question of money as much as of concrete.</p>"
)
FIRST = ["Ana", "Tomás", "Selin", "Kofi", "Ingrid", "Mei", "Ravi", "Lucía", "Omar", "Hana"]
LAST = ["Ferreira", "Okafor", "Aydın", "Solberg", "Tanaka", "Iyer", "Morales", "Haddad", "Novak"]


def page(megabytes: float) -> str:
    head = (
        "<!doctype html><html lang='en'><head><meta property='og:title' content='A Very Long "
        "Conversation'><link rel='canonical' href='https://example.org/long'></head><body>"
        "<article><h1>A Very Long Conversation</h1><p>Intro text for the editors' question. "
        "What should a harbor city do first?</p>"
    )
    parts = [head]
    size, n = len(head), 0
    while size < megabytes * 1_000_000:
        name = f"{FIRST[n % len(FIRST)]} {chr(65 + n % 26)}. {LAST[n // len(FIRST) % len(LAST)]}"
        body = "".join(PARAGRAPH.format(i=n * 10 + k) for k in range(8))
        block = (
            f"<div class='response' id='r-{n}'><p class='author'>{name}</p>"
            f"<p class='affiliation'>Professor, Institute {n}</p>{body}</div>"
        )
        parts.append(block)
        size += len(block)
        n += 1
    parts.append("</article></body></html>")
    return "".join(parts)


def bench(megabytes: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="digest-compose-") as tmp:
        path = Path(tmp) / "long.html"
        path.write_text(page(megabytes), encoding="utf-8")
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            issue, _ = compose([str(path)], Settings(), out_dir=Path(tmp))
            best = min(best, time.perf_counter() - started)
        experts = len(issue.sections[0].experts)
        size = path.stat().st_size
    return {"mb": round(size / 1e6, 2), "experts": experts, "seconds": round(best, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    args = parser.parse_args()
    for megabytes in args.mb:
        print(json.dumps(bench(megabytes)), flush=True)


if __name__ == "__main__":
    main()
