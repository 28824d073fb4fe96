"""A plain-text copy of a conversation page (select all, copy, paste: no Markdown, no
markup) -> the Markdown the block pass reads.

Such a copy has one block of the page per line: navigation words first ("breadcrumb",
"Home"), the title (often twice: the breadcrumb's and the headline), a kicker such as
"… Conversation", the date, the editors' question, then each expert's name on a line of
its own (or "Name: text"), their affiliation and often a date line, their comment, maybe
an "UPDATE:" note, and after the last comment the page's footer ("Share", "Related",
"©"). Each is recognised by its shape; the rest is the article's text.
"""

from __future__ import annotations

import re

from digest.excerpt import escape_markdown
from digest.sources.lines import COMMENTS_HEADINGS, looks_like_name, parse_date

MARKDOWN_HEADING = re.compile(r"^\s{0,3}(#{1,6}\s|={3,}\s*$|-{3,}\s*$)", re.M)
NAVIGATION = frozenset(
    {"skip to main content", "skip to content", "breadcrumb", "home", "menu", "search",
     "log in", "sign in", "subscribe", "donate", "print", "email", "main navigation"}
)  # fmt: skip
FOOTER = re.compile(
    r"^(share|share this|facebook|twitter|linkedin|related|related (stories|articles|posts)"
    r"|more from .*|tags|topics|top stories|most popular|sign up.*|subscribe to .*"
    r"|copyright.*|©.*|comments \(\d+\)|leave a comment|reader comments|\d+ comments?)$",
    re.I,
)
KICKER = re.compile(
    r"^(?:[\w'’&.-]+\s+){0,5}(conversation|roundtable|symposium|forum|debate|dialogue|exchange)$",
    re.I,
)
NOTE = re.compile(r"^(update|updated|editor'?s note|correction)\s*:", re.I)
NAME_THEN_TEXT = re.compile(r"^(?P<name>[^:]{3,60}):\s+(?P<text>\S.*)$")
# "—Name is a senior fellow at …": an "experts react" part's closing attribution
ATTRIBUTION = re.compile(r"^[—–-]\s*(?P<name>[^,]{3,60}?)(?P<rest>,?\s+(?:is|was|serves as)\s+.+)$")


def is_plain_copy(text: str) -> bool:
    """No Markdown heading anywhere and no markup: a copy of a page's text."""
    return not MARKDOWN_HEADING.search(text) and "<" not in text[:2000]


def _title_like(line: str) -> bool:
    words = line.split()
    return (
        3 <= len(words) <= 25
        and not line.endswith(".")
        and parse_date(line) is None
        and line.lower() not in NAVIGATION
        and not KICKER.match(line)
    )


def _find_title(blocks: list[str]) -> int | None:
    head = blocks[:25]
    for i, line in enumerate(head):  # the breadcrumb's and the headline's: said twice
        if _title_like(line) and line in head[i + 1 :]:
            return i
    return next((i for i, line in enumerate(head) if _title_like(line)), None)


def _name_in(line: str) -> tuple[str, str] | None:
    """(name, text after it) when ``line`` opens an expert's comment, else None."""
    bare = line.rstrip(":").strip()
    if line.lower() in COMMENTS_HEADINGS or bare.lower() == "the editors":
        return None
    if looks_like_name(bare) and not KICKER.match(bare):
        return bare, ""
    found = NAME_THEN_TEXT.match(line)
    if found and looks_like_name(found["name"].strip()):
        return found["name"].strip(), found["text"]
    return None


def _affiliation_like(line: str) -> bool:
    return (
        len(line.split()) <= 15
        and not line.endswith((".", "?", "!"))
        and parse_date(line) is None
        and _name_in(line) is None
    )


def copy_to_markdown(text: str) -> tuple[str, str | None, str | None]:
    """The copy as Markdown in a conversation's shape, its kicker (the series) and the
    line describing the series, when the page has one under the kicker."""
    blocks = [" ".join(line.split()) for line in text.splitlines()]
    blocks = [b for b in blocks if b]
    start = _find_title(blocks)
    if start is None:
        return text, None, None  # nothing like a title: let the block pass say so
    title = blocks[start]
    out = [f"# {escape_markdown(title)}"]
    kicker = next((b for b in blocks[max(0, start - 2) : start + 4] if KICKER.match(b)), None)
    rest = [b for b in blocks[start + 1 :] if b != title and b != kicker]
    description = None
    if kicker and kicker in blocks:  # "The … Conversation is a regular discussion of …"
        after = blocks[blocks.index(kicker) + 1 :][:1]
        if after and kicker.lower() in after[0].lower() and after[0] in rest:
            description = after[0]
            rest.remove(description)
    reacted = _react_copy(rest)
    if reacted is not None:
        return "\n\n".join(out + reacted) + "\n", kicker, description
    in_experts, dated = False, False
    i = 0
    while i < len(rest):
        line = rest[i]
        i += 1
        if FOOTER.match(line):
            break
        if NOTE.match(line) or line.lower() in NAVIGATION:
            continue
        if line.lower() in COMMENTS_HEADINGS:
            out.append("## Comments")
            continue
        named = _name_in(line) if (in_experts or i < len(rest)) else None
        if named and (named[1] or i < len(rest)):
            name, said = named
            in_experts = True
            out.append(f"### {escape_markdown(name)}")
            if said:
                out.append(escape_markdown(said))
                continue
            if i < len(rest) and _affiliation_like(rest[i]) and i + 1 < len(rest):
                out.append(f"*{escape_markdown(rest[i])}*")
                i += 1
            if i < len(rest) and parse_date(rest[i]):
                i += 1  # the date line over a comment says when, not what
            continue
        if not in_experts and not dated and parse_date(line):
            dated = True
            out.append(escape_markdown(line))
            continue
        out.append(escape_markdown(line))
    return "\n\n".join(out) + "\n", kicker, description


def _attribution_name(line: str) -> str | None:
    found = ATTRIBUTION.match(line)
    return found["name"] if found and looks_like_name(found["name"]) else None


def _react_copy(lines: list[str]) -> list[str] | None:
    """The Markdown of a copied "experts react" page: parts under their headlines, each
    closed by "—Name is …". The headline of a part is the last line before its text that
    is not a sentence; the intro keeps only sentences and the date. None when fewer than
    two lines are attributions."""
    end = next((i for i, line in enumerate(lines) if FOOTER.match(line)), len(lines))
    lines = lines[:end]
    closing = [i for i, line in enumerate(lines) if _attribution_name(line)]
    if len(closing) < 2:
        return None
    headings, start = [], 0
    for at in closing:
        heading = next(
            (j for j in range(at - 1, start - 1, -1) if not lines[j].endswith((".", "?", "!"))),
            None,
        )
        if heading is None:
            return None
        headings.append(heading)
        start = at + 1
    out = [
        escape_markdown(line)
        for line in lines[: headings[0]]
        if (line.endswith((".", "?", "!")) and not line.lower().startswith("by "))
        or parse_date(line)
    ]
    for heading, at in zip(headings, closing, strict=True):
        out.append(f"## {escape_markdown(lines[heading])}")
        out += [escape_markdown(line) for line in lines[heading + 1 : at]]
        name = _attribution_name(lines[at]) or ""
        rest = lines[at][lines[at].index(name) + len(name) :]
        out.append(f"—**{escape_markdown(name)}**{escape_markdown(rest)}")
    return out
