"""What Chinese (and Japanese) conversation pages write their own way: a date as
2026年3月4日, an expert's heading as "姓名：标题" (a name and the headline of their part,
with a full-width colon), and the expert's affiliation as a note closing their part,
（作者系……）("the author is …")."""

from __future__ import annotations

import datetime as dt
import re

CJK_DATE = re.compile(r"^\s*(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日\s*$")
NAME_AND_HEADLINE = re.compile(r"^(?P<name>[^：:]{2,12})[：:]\s*(?P<headline>\S.*)$")
AUTHOR_NOTE = re.compile(
    r"^\s*[（(]\s*(?:作者|筆者|笔者)\s*(?:系|是|为|為|：|:)\s*(?P<who>.+?)\s*[）)]\s*$"
)


def cjk_date(text: str) -> dt.date | None:
    found = CJK_DATE.match(text)
    if not found:
        return None
    try:
        return dt.date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return None


def name_and_headline(text: str) -> tuple[str, str] | None:
    """("李明", "海堤只能争取时间") for "李明：海堤只能争取时间"."""
    found = NAME_AND_HEADLINE.match(text.strip())
    return (found["name"].strip(), found["headline"].strip()) if found else None


def author_note(text: str) -> str | None:
    """The affiliation in a closing （作者系……） note."""
    found = AUTHOR_NOTE.match(text)
    return found["who"].strip("。. ") if found else None
