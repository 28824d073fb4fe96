"""Excerpts and read-more links: pure functions over the conversation model.

* :func:`sentences` splits text into sentences without breaking on abbreviations,
  initials, decimals or ellipses.
* :func:`excerpt` takes whole sentences from the lead of a comment within a word budget
  and returns inline Markdown that keeps the links and emphasis of those sentences.
* :func:`read_more_url` builds a comment's permalink with UTM parameters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.model import LIST_BULLET, Paragraph, Span, plain_text

# Words that end in a period without ending a sentence (compared lower-case, without the dot).
ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "mx",
        "dr",
        "prof",
        "st",
        "sr",
        "jr",
        "rev",
        "hon",
        "sen",
        "rep",
        "gov",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "cmdr",
        "adm",
        "maj",
        "pres",
        "amb",
        "messrs",
        "mme",
        "mlle",
        "ph.d",
        "e.g",
        "i.e",
        "cf",
        "vs",
        "viz",
        "al",
        "approx",
        "est",
        "ca",
        "no",
        "nos",
        "vol",
        "fig",
        "pp",
        "p",
        "ed",
        "eds",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mt",
        "ft",
        "dept",
        "univ",
        "assn",
        "corp",
        "bros",
        "u.s",
        "u.k",
        "u.n",
        "e.u",
        "u.s.a",
        "u.s.s.r",
        "d.c",
        "a.m",
        "p.m",
    ]
)
_CANDIDATE = re.compile(r"(?:\.\.\.|…|[.!?])+[\"'”’)\]*_]*(?=\s+\S)")
_OPENERS = "\"'“‘([*_"
_LETTER_DOTS = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]?$")


def _word_before(text: str, end: int) -> str:
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end].lstrip(_OPENERS)


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    punct = match.group(0)
    rest = text[match.end() :].lstrip()
    following = rest.lstrip(_OPENERS)[:1]
    if not following or following.islower():
        return False
    if punct.startswith(("...", "…")):
        return False  # an ellipsis inside a sentence
    if punct[0] != ".":
        return True
    word = _word_before(text, match.start())
    if word.lower() in ABBREVIATIONS or _LETTER_DOTS.match(word):
        return False
    # a lone capital initial: "Daniel K. Osei"
    return not (len(word) == 1 and word.isupper())


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each sentence in ``text``."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        if _is_boundary(text, match):
            bounds.append((start, match.end()))
            start = match.end()
            while start < len(text) and text[start].isspace():
                start += 1
    if start < len(text.rstrip()):
        bounds.append((start, len(text.rstrip())))
    return bounds


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def _slice(paragraph: Paragraph, start: int, end: int) -> Paragraph:
    """The spans covering plain-text offsets [start, end)."""
    out: list[Span] = []
    pos = 0
    for span in paragraph:
        span_end = pos + len(span.text)
        lo, hi = max(start, pos), min(end, span_end)
        if lo < hi:
            out.append(Span(span.text[lo - pos : hi - pos], span.href, span.em, span.strong))
        pos = span_end
    return tuple(out)


def _word_count(text: str) -> int:
    return len(text.split())


def _cut_at_words(paragraph: Paragraph, start: int, end: int, budget: int) -> Paragraph:
    text = plain_text(paragraph)
    words = list(re.finditer(r"\S+", text[start:end]))
    cut = start + words[min(budget, len(words)) - 1].end()
    head = _slice(paragraph, start, cut)
    trimmed = plain_text(head).rstrip(",;:—–-")
    head = _slice(paragraph, start, start + len(trimmed))
    return (*head, Span("…"))


def excerpt_paragraphs(paragraphs: Sequence[Paragraph], budget: int) -> list[Paragraph]:
    """Whole sentences from the lead, at most ``budget`` words; one cut sentence if it must."""
    chosen: list[Paragraph] = []
    used = 0
    prose = [p for p in paragraphs if not plain_text(p).startswith(LIST_BULLET)]
    for paragraph in prose or paragraphs:
        text = plain_text(paragraph)
        taken: list[Paragraph] = []
        for start, end in sentence_spans(text):
            words = _word_count(text[start:end])
            if used + words > budget:
                if not chosen and not taken:
                    taken.append(_cut_at_words(paragraph, start, end, budget))
                if taken:
                    chosen.append(_join_sentences(taken))
                return chosen
            taken.append(_slice(paragraph, start, end))
            used += words
        if taken:
            chosen.append(_join_sentences(taken))
    return chosen


def _join_sentences(parts: Iterable[Paragraph]) -> Paragraph:
    out: list[Span] = []
    for i, part in enumerate(parts):
        if i:
            out.append(Span(" "))
        out.extend(part)
    return tuple(out)


def excerpt(paragraphs: Sequence[Paragraph], budget: int) -> str:
    """Inline Markdown of the excerpt; paragraphs of it are joined by a space."""
    parts = excerpt_paragraphs(paragraphs, budget)
    return " ".join(to_markdown(p) for p in parts)


def first_sentence(paragraphs: Sequence[Paragraph], max_chars: int) -> str:
    """Plain text of the first sentence, cut at a word boundary to ``max_chars``."""
    for paragraph in paragraphs:
        text = plain_text(paragraph)
        spans = sentence_spans(text)
        if spans:
            a, b = spans[0]
            return shorten(text[a:b], max_chars)
    return ""


def shorten(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:—–- ") + "…"


# --- inline Markdown -----------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>])")
_ENTITY_LIKE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")


def escape_markdown(text: str) -> str:
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _ENTITY_LIKE.sub(r"\\&", text)
    # a line start that Markdown would read as a heading, list or quote stays text
    return re.sub(r"^([#>+\-]|\d+[.)])(?=\s)", r"\\\1", text)


def _markdown_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C")


def _emphasised(span: Span) -> str:
    text = escape_markdown(span.text)
    marker = "***" if span.em and span.strong else "**" if span.strong else "*" if span.em else ""
    if not marker or not text.strip():
        return text
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}{marker}{text.strip()}{marker}{trail}"


def to_markdown(paragraph: Paragraph) -> str:
    """Spans -> inline Markdown (links, emphasis), escaping everything else."""
    out: list[str] = []
    i = 0
    while i < len(paragraph):
        span = paragraph[i]
        if span.href is None:
            out.append(_emphasised(span))
            i += 1
            continue
        group = [span]
        while i + len(group) < len(paragraph) and paragraph[i + len(group)].href == span.href:
            group.append(paragraph[i + len(group)])
        inner = "".join(_emphasised(s) for s in group)
        lead = inner[: len(inner) - len(inner.lstrip())]
        trail = inner[len(inner.rstrip()) :]
        out.append(f"{lead}[{inner.strip()}]({_markdown_url(span.href)}){trail}")
        i += len(group)
    return "".join(out)


# --- links ---------------------------------------------------------------------------------


_TRANSLITERATE = str.maketrans(
    {"ı": "i", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss",
     "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "Th", "ð": "d"}
)  # fmt: skip


def slugify(text: str, max_length: int = 60) -> str:
    """ASCII, lower-case, hyphenated: 'Zoë K. Øsei' -> 'zoe-k-osei'."""
    folded = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    ascii_text = folded.encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"['’]", "", ascii_text.lower())
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0]
    return slug or "untitled"


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` set in its query string; other parameters and the fragment kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def read_more_url(
    page_url: str,
    *,
    name: str,
    anchor: str | None,
    pattern: str,
    utm: dict[str, str] | None,
) -> str:
    """The permalink of one comment, with UTM parameters when configured.

    ``pattern`` formats ``{url}`` (the page without its fragment) and ``{anchor}`` (the
    source's own anchor for the comment, else a slug of the expert's name).
    """
    parts = urlsplit(page_url)
    base = urlunsplit(parts._replace(fragment=""))
    link = pattern.format(url=base, anchor=anchor or slugify(name), slug=slugify(name))
    return with_query(link, utm) if utm else link
