"""Recognising a line of a conversation page by its shape: a date, a person's name, a
"Comments" heading. Used by the block pass (:mod:`digest.sources.blocks`) and the readers
of particular layouts."""

from __future__ import annotations

import datetime as dt
import re

from digest.sources.cjk import cjk_date

COMMENTS_HEADINGS = frozenset(
    {
        "comments",
        "responses",
        "the comments",
        "the responses",
        "评论",
        "評論",
        "回应",
        "コメント",
        "댓글",
    }
)
# where a page's own furniture after the last comment begins: nothing after it is read
_PARTICLES = {"de", "da", "di", "del", "der", "van", "von", "bin", "al", "el", "le", "la", "du",
              "dos", "das", "ter", "ten", "y", "e", "zu", "ibn"}  # fmt: skip
_NAME_WORD = re.compile(r"^(?:[A-Z]\.)+$|^[^\W\d_][\w'’.\-]*$")
_DATE_FORMATS = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%Y-%m-%d", "%B %d %Y")


def parse_date(text: str) -> dt.date | None:
    if (written := cjk_date(text)) is not None:
        return written
    cleaned = re.sub(r"\s+", " ", text.strip().rstrip(".")).replace("Sept ", "Sep ")
    cleaned = re.sub(r"^(\w{3,9})\. ", r"\1 ", cleaned)  # "Jan. 5, 2024"
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[T ]", cleaned)
    if match:
        try:
            return dt.date.fromisoformat(match.group(1))
        except ValueError:
            return None
    return None


# A name in a script without capitals: 2-4 Han characters (李明, 欧阳修), or a Japanese or
# Korean name of up to 8 characters, optionally split by a space or a middle dot.
_CASELESS_NAME = re.compile(
    r"^(?:[\u4e00-\u9fff]{2,4}|[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]{1,5}"
    r"(?:[ ·・][\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]{1,5})?)$"
)


def looks_like_name(text: str) -> bool:
    """A person's name: 2-6 capitalised words, initials and particles allowed; or a
    short name in Chinese, Japanese or Korean script."""
    if _CASELESS_NAME.match(text.strip()) and len(text.strip()) >= 2:
        return text.strip() not in COMMENTS_HEADINGS
    words = text.split()
    if not 2 <= len(words) <= 6 or len(text) > 60:
        return False
    if text.rstrip()[-1:] in "!?,;" or any(ch.isdigit() for ch in text):
        return False
    capitalised = 0
    for word in words:
        if word.lower() in _PARTICLES:
            continue
        if not _NAME_WORD.match(word) or not word[0].isupper():
            return False
        capitalised += 1
    return capitalised >= 2 and text.lower() not in COMMENTS_HEADINGS
