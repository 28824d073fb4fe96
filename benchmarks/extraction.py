"""Benchmark: should a well-kept article-extraction library find the article before our
reader splits it into experts? (issue 26)

    .venv/bin/pip install trafilatura readability-lxml   # only for this benchmark
    .venv/bin/python benchmarks/extraction.py

Each HTML page in tests/fixtures/layouts/ (and the seed conversation, when ../shared has
it) is read three ways, and each reading is scored against what the page must read as
(tests/fixtures/layouts/expected.yaml; the seed against its own tests' figures):

- ours: the page as digest reads it today (chrome cut by its own rules);
- trafilatura: `trafilatura.extract(..., output_format="html", include_formatting=True)`
  finds the article; our reader then splits that into experts;
- readability: `readability.Document(page).summary()` finds the article; then the same.

The library's article keeps the page's <head>, so that title and date metadata are there
for every way. A page scores one point for each part read right: title, date, intro,
and each expert's name, affiliation and first sentence. A library that is not
installed is left out.
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ruamel.yaml import YAML

from digest.config import Settings
from digest.errors import DigestError
from digest.excerpt import sentences
from digest.model import Conversation, plain_text
from digest.sources.html import parse_html

ROOT = Path(__file__).resolve().parent.parent
LAYOUTS = ROOT / "tests" / "fixtures" / "layouts"
URL = "https://harbor.example/conversations/lights"
SETTINGS = Settings()


def _with_head(page: str, article: str) -> str:
    head = re.search(r"<head.*?</head>", page, re.S | re.I)
    return f"<html>{head.group(0) if head else ''}<body><article>{article}</article></body></html>"


def ours(page: str) -> str:
    return page


def by_trafilatura(page: str) -> str:
    import trafilatura

    found = trafilatura.extract(
        page, output_format="html", include_formatting=True, include_links=True,
        include_comments=False, favor_recall=True,
    )  # fmt: skip
    return _with_head(page, found or "")


def by_readability(page: str) -> str:
    from readability import Document

    return _with_head(page, Document(page).summary(html_partial=True))


def _read(page: str) -> Conversation | None:
    try:
        return parse_html(page, source="page", url=URL, selectors_for=SETTINGS.selectors_for)
    except DigestError:
        return None


def _first(conversation: Conversation, index: int) -> str:
    comment = conversation.comments[index]
    said = sentences(plain_text(comment.paragraphs[0])) if comment.paragraphs else []
    return said[0].strip() if said else ""


def score(conversation: Conversation | None, expected: dict) -> tuple[int, int]:
    if "refused" in expected:
        return (1 if conversation is None else 0), 1
    points = 3 + 3 * len(expected["experts"])
    if conversation is None:
        return 0, points
    got = int(conversation.title == expected["title"])
    got += int(str(conversation.date) == expected["date"])
    got += int(" ".join(plain_text(p) for p in conversation.intro).startswith(
        expected["intro_begins"]))  # fmt: skip
    for index, (name, affiliation, first) in enumerate(expected["experts"]):
        if index >= len(conversation.comments):
            break
        comment = conversation.comments[index]
        got += int(comment.name == name) + int(comment.affiliation == affiliation)
        got += int(_first(conversation, index) == first)
    extra = max(0, len(conversation.comments) - len(expected["experts"]))
    return max(0, got - extra), points


def _available() -> dict[str, Callable[[str], str]]:
    ways: dict[str, Callable[[str], str]] = {"ours": ours}
    for name, module, way in (
        ("trafilatura", "trafilatura", by_trafilatura),
        ("readability", "readability", by_readability),
    ):
        try:
            __import__(module)
        except ImportError:
            print(f"({name} is not installed: left out)")
            continue
        ways[name] = way
    return ways


def main() -> None:
    expected = YAML(typ="safe").load((LAYOUTS / "expected.yaml").read_text(encoding="utf-8"))
    pages = {name: (LAYOUTS / name).read_text(encoding="utf-8")
             for name in sorted(expected) if name.endswith(".html")}  # fmt: skip
    ways = _available()
    totals = {way: [0, 0] for way in ways}
    times: dict[str, list[float]] = {way: [] for way in ways}
    print(f"{'page':36}" + "".join(f"{way:>14}" for way in ways))
    for name, page in pages.items():
        row = f"{name:36}"
        for way, extract in ways.items():
            started = time.perf_counter()
            conversation = _read(extract(page))
            times[way].append(time.perf_counter() - started)
            got, of = score(conversation, expected[name])
            totals[way][0] += got
            totals[way][1] += of
            row += f"{got:>9} / {of:<2}"
        print(row)
    print(f"{'all pages':36}" + "".join(f"{t[0]:>9} / {t[1]:<2}" for t in totals.values()))
    print(f"{'median ms a page':36}" + "".join(
        f"{statistics.median(times[w]) * 1000:>14.1f}" for w in ways))  # fmt: skip


if __name__ == "__main__":
    main()
