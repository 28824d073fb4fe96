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
from urllib.parse import urlsplit, urlunsplit

from digest.inline_markdown import visible_text
from digest.links import tracked
from digest.model import LIST_BULLET, Paragraph, Span, plain_text


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that end in a period without ending a sentence (compared lower-case, without the dot).
TITLES = _words(
    """mr mrs ms mx dr prof st sr jr rev hon sen rep gov gen col lt sgt capt cmdr adm maj pres
    amb messrs mme mlle ph.d e.g i.e cf vs viz al approx est ca ed eds mt ft dept univ assn
    corp bros"""
)
# Abbreviations that stand before a number or a numeral ("No. 5", "Art. IV", "Pub. L. 117"):
# a sentence ends after them unless one follows ("The answer is no. Washington…").
BEFORE_NUMBERS = _words("no nos vol vols fig figs p pp art arts sec ch para pub eq op")
# Abbreviations that may also end a sentence ("in the U.S. The…", "at 9 a.m. They…"):
# they end one only when a word that starts sentences follows.
MAY_END = _words(
    """u.s u.k u.n e.u u.s.a u.s.s.r d.c a.m p.m jan feb mar apr jun jul aug sep sept oct nov
    dec inc ltd co etc"""
)
SENTENCE_STARTERS = _words(
    """a after all also an and as at before both but by each even every few for he her here
    his how however i if in it its many meanwhile more most my no none not now on once one our
    she since so some still such that the their then there these they this those though to
    under we what when where which while who why yet you"""
)
_CANDIDATE = re.compile(r"(?:\.\.\.|…|[.!?])+[\"'”’)\]*_]*(?=\s+\S)|[。！？]+[」』）”’]*(?=\s*\S)")
_CJK_STOP = frozenset("。！？")
_OPENERS = "\"'“‘([*_"
_LETTER_DOTS = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]?$")
_NUMERAL = re.compile(r"^(?:\d|[IVXLC]+\b|[A-Z]\.)")


def _word_before(text: str, end: int) -> str:
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end].lstrip(_OPENERS)


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    punct = match.group(0)
    if punct[0] in _CJK_STOP:
        return True
    rest = text[match.end() :].lstrip()
    following = rest.lstrip(_OPENERS)[:1]
    if not following or following.islower():
        return False
    if punct.startswith(("...", "…")):
        return False  # an ellipsis inside a sentence
    if punct[0] != ".":
        return True
    word = _word_before(text, match.start()).lower()
    next_word = re.split(r"[\s,;:]", rest.lstrip(_OPENERS), maxsplit=1)[0]
    starts_sentence = next_word.lower().strip(".!?") in SENTENCE_STARTERS
    if word in TITLES:
        return False
    if word in BEFORE_NUMBERS:
        return not _NUMERAL.match(next_word)
    if word in MAY_END or _LETTER_DOTS.match(word):
        return starts_sentence
    # a lone capital initial ("Daniel K. Osei") or a numeral ("World War I. Few…")
    if len(word) == 1 and word.isalpha():
        return starts_sentence
    return True


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each sentence in ``text``."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        if match.end() > start and _is_boundary(text, match):
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


# A word: a run without spaces, or one Chinese or Japanese character (written without spaces).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")


def _word_count(text: str) -> int:
    return len(_WORD.findall(text))


def _cut_at_words(paragraph: Paragraph, start: int, end: int, budget: int) -> Paragraph:
    text = plain_text(paragraph)
    words = list(_WORD.finditer(text[start:end]))
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


def sentence_markdown(paragraph: Paragraph) -> list[str]:
    """Each whole sentence of ``paragraph`` as inline Markdown, links and emphasis kept:
    what an editor picks an excerpt from."""
    text = plain_text(paragraph)
    return [to_markdown(_slice(paragraph, a, b)) for a, b in sentence_spans(text)]


def excerpt(paragraphs: Sequence[Paragraph], budget: int) -> str:
    """Inline Markdown of the excerpt; paragraphs of it are joined by a space."""
    parts = excerpt_paragraphs(paragraphs, budget)
    return " ".join(to_markdown(p) for p in parts)


# "We asked three economists whether …": the editors' question, put indirectly
INDIRECT_QUESTION = re.compile(
    r"\b(we|i)\s+(asked|invited|put\s+(?:the|this|one)\s+question\s+to)\b.*"
    r"\b(whether|what|how|why|who|which|if|where|when)\b",
    re.I,
)


def question_mark(sentence: str) -> bool:
    return sentence.rstrip().rstrip("\"'”’)").endswith(("?", "？"))


def is_question(sentence: str) -> bool:
    """A sentence that asks: with a question mark, or "We asked … whether …"."""
    return question_mark(sentence) or bool(INDIRECT_QUESTION.search(sentence))


def intro_excerpt(paragraphs: Sequence[Paragraph], budget: int) -> str:
    """The editors' intro within ``budget`` words, keeping its closing question whole.

    The question is the point of a conversation: when the intro is too long, the
    question (the run of sentences ending in "?" at its end, or a closing "We asked …
    whether …") is kept whole and the context before it is cut to whole sentences in
    the words left over."""
    if sum(_word_count(plain_text(p)) for p in paragraphs) <= budget:
        return excerpt(paragraphs, budget)
    located = [
        (index, start, end)
        for index, paragraph in enumerate(paragraphs)
        for start, end in sentence_spans(plain_text(paragraph))
    ]
    question: list[tuple[int, int, int]] = []
    while located:
        index, start, end = located[-1]
        if not is_question(plain_text(paragraphs[index])[start:end]):
            break
        question.insert(0, located.pop())
        if not question_mark(plain_text(paragraphs[index])[start:end]):
            break  # "We asked … whether …" is the question on its own
    if not question:
        return excerpt(paragraphs, budget)
    left = budget - sum(_word_count(plain_text(paragraphs[i])[a:b]) for i, a, b in question)
    context: list[tuple[int, int, int]] = []
    for index, start, end in located:
        words = _word_count(plain_text(paragraphs[index])[start:end])
        if words > left:
            break
        context.append((index, start, end))
        left -= words
    kept = [_slice(paragraphs[i], a, b) for i, a, b in context + question]
    return " ".join(to_markdown(part) for part in kept)


def people_phrase(names: Sequence[str], max_chars: int) -> str | None:
    """'With A, B and C', or 'With A, B and 3 more', as many whole names as fit."""
    unique = list(dict.fromkeys(names))
    for shown in range(len(unique), 0, -1):
        rest = len(unique) - shown
        listed = unique[:shown]
        if rest:
            phrase = f"With {', '.join(listed)} and {rest} more"
        elif shown > 1:
            phrase = f"With {', '.join(listed[:-1])} and {listed[-1]}"
        else:
            phrase = f"With {listed[0]}"
        if len(phrase) <= max_chars:
            return phrase
    return None


def titles_phrase(titles: Sequence[str], max_chars: int) -> str | None:
    """'Also: T2; T3', or 'Also: T2 and 2 more', as many whole titles as fit."""
    for shown in range(len(titles), 0, -1):
        rest = len(titles) - shown
        phrase = "Also: " + "; ".join(titles[:shown]) + (f" and {rest} more" if rest else "")
        if len(phrase) <= max_chars:
            return phrase
    return None


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
    text = re.sub(r"^([#>+\-])(?=\s)", r"\\\1", text)
    return re.sub(r"^(\d+)([.)])(?=\s)", r"\1\\\2", text)


def _markdown_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C")


def _is_punct(char: str) -> bool:
    return bool(char) and unicodedata.category(char)[0] in "PS"


def _emphasised(span: Span, before: str, after: str, emphasis: bool) -> str:
    """One span as Markdown. ``before`` and ``after`` are the characters around it, so
    the ``*`` markers are placed where CommonMark reads them as emphasis: punctuation at
    an edge that touches a letter outside ("**Update:**The") goes outside the markers."""
    text = escape_markdown(span.text)
    marker = "***" if span.em and span.strong else "**" if span.strong else "*" if span.em else ""
    if not emphasis or not marker or not text.strip():
        return text
    core = text.strip()
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    if not trail and after and not after.isspace() and not _is_punct(after):
        while core and _is_punct(core[-1]):
            trail = core[-1] + trail
            core = core[:-1]
    if not lead and before and not before.isspace() and not _is_punct(before):
        while core and _is_punct(core[0]):
            lead += core[0]
            core = core[1:]
    if core.endswith("\\") or not core:
        return text  # nothing left to emphasise, or a marker would be escaped
    return f"{lead}{marker}{core}{marker}{trail}"


def _markdown(paragraph: Paragraph, emphasis: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(paragraph):
        span = paragraph[i]
        if span.href is None:
            after = paragraph[i + 1].text[:1] if i + 1 < len(paragraph) else ""
            before = out[-1][-1:] if out else ""
            out.append(_emphasised(span, before, after, emphasis))
            i += 1
            continue
        group = [span]
        while i + len(group) < len(paragraph) and paragraph[i + len(group)].href == span.href:
            group.append(paragraph[i + len(group)])
        inner = ""
        for k, part in enumerate(group):
            after = group[k + 1].text[:1] if k + 1 < len(group) else "]"
            inner += _emphasised(part, inner[-1:] or "[", after, emphasis)
        lead = inner[: len(inner) - len(inner.lstrip())]
        trail = inner[len(inner.rstrip()) :]
        out.append(f"{lead}[{inner.strip()}]({_markdown_url(span.href)}){trail}")
        i += len(group)
    return "".join(out)


def to_markdown(paragraph: Paragraph) -> str:
    """Spans -> inline Markdown (links, emphasis), escaping everything else.

    The result is read back: where emphasis markers would show as literal asterisks
    (emphasis next to emphasis, say), the paragraph's emphasis is dropped and its text
    and links kept, so a reader never sees Markdown syntax."""
    markdown = _markdown(paragraph, emphasis=True)
    if " ".join(visible_text(markdown).split()) == " ".join(plain_text(paragraph).split()):
        return markdown
    return _markdown(paragraph, emphasis=False)


# --- links ---------------------------------------------------------------------------------


_TRANSLITERATE = str.maketrans(
    {"ı": "i", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss",
     "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "Th", "ð": "d"}
)  # fmt: skip


def _fold(char: str) -> str:
    """A Latin letter without its accents; any other letter or digit as it is."""
    folded = unicodedata.normalize("NFKD", char.translate(_TRANSLITERATE))
    ascii_part = folded.encode("ascii", "ignore").decode()
    return ascii_part or (char if char.isalnum() else " ")


def slugify(text: str, max_length: int = 60) -> str:
    """Lower-case and hyphenated; Latin letters lose their accents, other scripts stay
    as they are: 'Zoë K. Øsei' -> 'zoe-k-osei', '李明' -> '李明'."""
    text = re.sub(r"['’]", "", unicodedata.normalize("NFC", text).lower())
    folded = "".join(_fold(char) for char in text)
    slug = re.sub(r"[\W_]+", "-", folded).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0]
    return slug or "untitled"


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
    return tracked(link, utm)
