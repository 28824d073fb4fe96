"""Flattened document blocks -> Conversation.

Both Markdown sources (rendered to HTML first) and HTML pages without site selectors
are read the same way: the document becomes a flat list of blocks (headings, paragraphs,
list items) and one structural pass finds the title, date, series line, the editors'
intro and each expert's comment.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from digest.model import LIST_BULLET, Comment, Conversation, Paragraph, Span, plain_text
from digest.sources.cjk import author_note, name_and_headline
from digest.sources.furniture import AFTER_COMMENTS, CREDIT, clean_intro
from digest.sources.lines import COMMENTS_HEADINGS, looks_like_name, parse_date
from digest.sources.rich import SKIPPED_TAGS, normalise, paragraph_of

HEADING_TAGS = {f"h{n}": n for n in range(1, 7)}
CONTAINER_TAGS = frozenset(
    {"div", "section", "article", "main", "body", "html", "blockquote", "header", "figure",
     "details", "center", "span", "font", "dl", "dd", "table", "tbody", "tr", "td"}
)  # fmt: skip
BLOCK_TAGS = frozenset({"p", "pre", "li", "dt", "figcaption", "summary", "address"})
STOP_ATTRIBUTE = "data-digest-stop"  # marks where a reader of blocks should stop
SHORT_LINE_WORDS = 15  # a comment no longer than this, under every name: a list of people
EDITORS_SIGNOFF = re.compile(r"\s*[—–-]+\s*\*?\s*The Editors\s*\*?\s*$")

_CLOSING = '.!?…:"”’)]'


@dataclass(frozen=True)
class Block:
    kind: str  # "h", "p", "li", "quote", "hr", "stop"
    level: int  # heading level, else 0
    para: Paragraph
    anchor: str | None = None  # id of the element, or of the nearest section holding it

    @property
    def text(self) -> str:
        return plain_text(self.para)


def iter_blocks(
    el: etree._Element, base_url: str | None, anchor: str | None = None, quoted: bool = False
) -> Iterator[Block]:
    """Blocks of ``el`` in document order; containers are descended into."""
    for child in el:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag.lower()
        own_id = child.get("id") or None
        if tag in SKIPPED_TAGS:
            continue
        if child.get(STOP_ATTRIBUTE) is not None:
            yield Block("stop", 0, ())
            return
        if tag in HEADING_TAGS:
            yield Block("h", HEADING_TAGS[tag], paragraph_of(child, base_url), own_id or anchor)
        elif tag == "hr":
            yield Block("hr", 0, ())
        elif tag in {"ul", "ol"}:
            for item in child.iterchildren("li"):
                para = paragraph_of(item, base_url)
                if para:
                    yield Block("li", 0, (Span(LIST_BULLET), *para), anchor)
        elif tag in BLOCK_TAGS:
            para = paragraph_of(child, base_url)
            if para:
                kind = "caption" if tag == "figcaption" else "quote" if quoted else "p"
                yield Block(kind, 0, para, own_id or anchor)
        elif tag in CONTAINER_TAGS or tag not in _INLINE_TAGS:
            inner_quote = quoted or tag == "blockquote"
            has_blocks = any(
                isinstance(c.tag, str) and c.tag.lower() not in _INLINE_TAGS for c in child
            )
            if has_blocks:
                yield from iter_blocks(child, base_url, own_id or anchor, inner_quote)
            else:
                para = paragraph_of(child, base_url)
                if para:
                    yield Block("quote" if inner_quote else "p", 0, para, own_id or anchor)


_INLINE_TAGS = frozenset(
    {"a", "em", "i", "strong", "b", "span", "cite", "q", "small", "sub", "sup", "abbr", "code",
     "time", "u", "mark", "br", "s", "del", "ins", "font", "bdi", "bdo", "dfn", "kbd", "var",
     "wbr", "img"}
)  # fmt: skip


# --- recognising lines -------------------------------------------------------------------


def _name_from_colon_line(block: Block) -> str | None:
    """'Name:' (or 'Name：') alone in a paragraph, possibly bold, names an expert."""
    if block.kind != "p":
        return None
    text = block.text.strip()
    if not text.endswith((":", "：")):
        return None
    name = text[:-1].strip().strip("*").strip()
    return name if looks_like_name(name) else None


def _is_whole(para: Paragraph, flag: str) -> bool:
    visible = [s for s in para if s.text.strip()]
    return bool(visible) and all(getattr(s, flag) for s in visible)


def _unformatted(para: Paragraph) -> str:
    return plain_text(para).strip()


# --- the structural pass -----------------------------------------------------------------


@dataclass
class _Expert:
    name: str
    anchor: str | None
    blocks: list[Block]
    affiliation: str | None = None  # given on the name's own line ("**Name**, Title")
    headline: str | None = None  # given in the name's heading ("姓名：标题")


def _bold_name_and_title(block: Block, kind: str = "p") -> tuple[str, str] | None:
    """'**Name**, Title, Organisation' as one paragraph (or list item): (name, title)."""
    spans = [s for s in block.para if s.text.strip() and s.text.strip() != LIST_BULLET.strip()]
    if block.kind != kind or len(spans) < 2 or not spans[0].strong or spans[1].strong:
        return None
    name = spans[0].text.strip()
    rest = "".join(s.text for s in spans[1:]).strip()
    if not rest.startswith(",") or not looks_like_name(name):
        return None
    title = rest.lstrip(", ").strip()
    if not title or len(title.split()) > 15 or title[-1:] in ".!?":
        return None
    return name, title


def _expert_name(block: Block, deepest_expert_level: int) -> str | None:
    if block.kind == "h" and block.level >= 2:
        name = block.text.strip().strip("*").strip().rstrip(":").strip()
        if looks_like_name(name) and (
            deepest_expert_level == 0 or block.level <= deepest_expert_level
        ):
            return name
        return None
    return _name_from_colon_line(block)


def _strip_signoff(paras: list[Paragraph]) -> list[Paragraph]:
    if not paras:
        return paras
    last = list(paras[-1])
    joined = plain_text(tuple(last))
    match = EDITORS_SIGNOFF.search(joined)
    if not match:
        return paras
    cut = match.start()
    kept: list[Span] = []
    pos = 0
    for span in last:
        end = pos + len(span.text)
        if end <= cut:
            kept.append(span)
        elif pos < cut:
            kept.append(Span(span.text[: cut - pos], span.href, span.em, span.strong))
        pos = end
    para = normalise(kept)
    return [*paras[:-1], para] if para else paras[:-1]


def join_broken_paragraphs(paras: list[Paragraph]) -> list[Paragraph]:
    """Mend a paragraph split mid-sentence (no closing punctuation, next starts lower-case)."""
    mended: list[Paragraph] = []
    for para in paras:
        text = plain_text(para)
        if mended and text[:1].islower():
            previous = plain_text(mended[-1]).rstrip()
            if previous and previous[-1] not in _CLOSING:
                mended[-1] = normalise([*mended[-1], Span(" "), *para])
                continue
        mended.append(para)
    return mended


def conversation_from_blocks(
    blocks: list[Block],
    *,
    source: str,
    url: str | None,
    title: str | None = None,
    date: dt.date | None = None,
) -> Conversation:
    """Find title, date, series, intro and experts in a flat list of blocks."""
    from digest.errors import SourceError

    # an image's caption or credit is about the picture, never part of what anyone said
    items = [
        b for b in blocks
        if (b.kind == "hr" or b.para) and b.kind != "caption" and not CREDIT.match(b.text)
    ]  # fmt: skip
    i = 0
    # Title: the first h1 (a page's metadata title wins when given).
    for j, block in enumerate(items):
        if block.kind == "h" and block.level == 1:
            title = title or block.text.strip()
            i = j + 1
            break
    if not title:
        raise SourceError(source, "no title found (expected a '# Title' line or an <h1>)")
    from digest.sources.attributions import attributed  # "experts react" pages
    from digest.sources.essays import essays  # roundtables and symposia

    for layout, read in (
        ("an 'experts react' page: names in attribution sentences", attributed),
        ("a roundtable: essays with 'By Name' lines", essays),
    ):
        if (reacted := read(items[i:])) is not None:
            intro_paras, reactions = reacted
            for para in intro_paras:  # a copied page's date line sits in its intro
                if (found := parse_date(plain_text(para))) is not None:
                    date = date or found
                    intro_paras = [p for p in intro_paras if p is not para]
                    break
            return Conversation(
                title=title, url=url, date=date, source=source, comments=tuple(reactions),
                intro=tuple(join_broken_paragraphs(_strip_signoff(intro_paras))),
                notes=(f"read as {layout}",),
            )  # fmt: skip
    notes: list[str] = []
    dropped = sum(1 for b in blocks if b.kind == "caption" or (b.para and CREDIT.match(b.text)))
    if dropped:
        notes.append(f"left out {dropped} image caption(s) or credit line(s)")

    series = series_description = None
    intro: list[Paragraph] = []
    experts: list[_Expert] = []
    deepest = 0
    in_comments_heading = False
    roster: dict[str, str] = {}
    while i < len(items):
        block = items[i]
        i += 1
        if block.kind == "hr":
            continue
        heading_text = block.text.strip().strip(":").lower()
        if heading_text in AFTER_COMMENTS or (
            experts and block.kind == "h" and heading_text in COMMENTS_HEADINGS
        ):
            notes.append(f"stopped reading at {block.text.strip()!r}: not an expert's words")
            break  # the page's own furniture after the comments: a host's box, readers' comments
        if not experts and not intro and (listed := _bold_name_and_title(block, "li")):
            roster[listed[0]] = listed[1]  # an authors list before the article: who they are
            continue
        name = _expert_name(block, deepest)
        if name:
            deepest = max(deepest, block.level) if block.kind == "h" else deepest
            experts.append(_Expert(name, block.anchor, []))
            continue
        split = name_and_headline(block.text) if block.kind == "h" else None
        if split is not None and looks_like_name(split[0]):  # "姓名：标题": name, headline
            experts.append(_Expert(split[0], block.anchor, [], headline=split[1]))
            continue
        if (titled := _bold_name_and_title(block)) is not None:
            experts.append(_Expert(titled[0], block.anchor, [], titled[1]))
            continue
        if experts:
            experts[-1].blocks.append(block)
            continue
        text = block.text.strip()
        if block.kind in {"h", "p"} and text.strip("*:").strip().lower() in COMMENTS_HEADINGS:
            in_comments_heading = True
            continue
        if in_comments_heading:
            continue  # text between "Comments" and the first expert is chrome
        if date is None and not intro and (found := parse_date(text)):
            date = found
            continue
        if (
            not intro
            and series is None
            and block.kind in {"p", "h"}
            and len(text.split()) <= 6
            and text[-1:] not in ".!?"
            and i < len(items)
            and _is_whole(items[i].para, "em")
        ):
            series = text
            series_description = _unformatted(items[i].para)
            i += 1
            continue
        if block.kind == "h":
            continue  # headings before the first expert are not part of the intro
        intro.append(block.para)

    if not experts:
        raise SourceError(
            source,
            "no experts found (expected '### Name' or '## **Name**' headings, or 'Name:' lines)",
        )
    experts = _authors_listed_first(experts, roster, intro)
    intro = clean_intro(intro, {expert.name for expert in experts})
    firsts: dict[str, _Expert] = {}
    for expert in experts:  # a reply later in the page: the expert's first turn speaks
        if expert.name in firsts:
            notes.append(f"{expert.name} speaks again later; their first turn is used")
        firsts.setdefault(expert.name, expert)
    comments = tuple(_comment(expert, roster) for expert in firsts.values())
    empty = [c.name for c in comments if not c.paragraphs]
    if empty:
        raise SourceError(source, f"expert {empty[0]!r} has no comment text")
    if all(_only_a_title(c) for c in comments):
        raise SourceError(
            source,
            f"nobody comments: each of the {len(comments)} name(s) has only a short line under"
            " it (a list of speakers or authors, not a conversation)",
        )
    return Conversation(
        title=title,
        url=url,
        date=date,
        intro=tuple(join_broken_paragraphs(_strip_signoff(intro))),
        comments=comments,
        series=series,
        series_description=series_description,
        source=source,
        notes=tuple(notes),
    )


def _title_line(block: Block, more: bool) -> bool:
    """A plain line under a name that is a title, not a sentence: 'Chief economist,
    Harbor Bank' (short, a comma, no closing punctuation, text after it)."""
    text = _unformatted(block.para)
    return (
        more
        and block.kind == "p"
        and not any(s.strong or s.em for s in block.para if s.text.strip())
        and "," in text
        and parse_date(text) is None
        and len(text.split()) <= 12
        and text[-1:] not in ".!?:;"
    )


def _only_a_title(comment: Comment) -> bool:
    """One short line that is no sentence ("Chief Economist, Harbor Bank"): what a
    speaker's card says, where a comment would say something."""
    if len(comment.paragraphs) != 1:
        return False
    text = plain_text(comment.paragraphs[0]).strip()
    return len(text.split()) <= SHORT_LINE_WORDS and text[-1:] not in '.!?…"”)。！？」』'


def _authors_listed_first(
    experts: list[_Expert], roster: dict[str, str], intro: list[Paragraph]
) -> list[_Expert]:
    """An authors list of "**Name**, Title" paragraphs before the article, naming the
    experts who speak later under their own headings: a roster, not comments. Their
    titles go to the roster, the text read under them back to the intro."""
    later = {e.name for e in experts if e.affiliation is None}
    listed = []
    for expert in experts:
        if expert.affiliation is None or expert.name not in later:
            break  # the list is what comes first, before anyone speaks
        listed.append(expert)
    for expert in listed:
        roster.setdefault(expert.name, expert.affiliation or "")
        intro.extend(b.para for b in expert.blocks if b.kind in {"p", "li"})
    return experts[len(listed) :]


def _drop_date_line(blocks: list[Block]) -> None:
    """The date line over a post says when, not what: it leaves the comment."""
    if blocks and blocks[0].kind == "p" and parse_date(blocks[0].text):
        blocks.pop(0)


def _comment(expert: _Expert, roster: dict[str, str] | None = None) -> Comment:
    blocks = list(expert.blocks)
    affiliation, headline = expert.affiliation, None
    _drop_date_line(blocks)
    if affiliation is None and blocks and blocks[0].kind == "p" and _is_whole(blocks[0].para, "em"):
        candidate = _unformatted(blocks[0].para)
        if len(candidate.split()) <= 25:
            affiliation = candidate.strip("*_ ")
            blocks.pop(0)
    if affiliation is None and blocks and _title_line(blocks[0], len(blocks) > 1):
        affiliation = _unformatted(blocks[0].para)
        blocks.pop(0)
    if blocks and blocks[0].kind in {"p", "h"} and _is_whole(blocks[0].para, "strong"):
        candidate = _unformatted(blocks[0].para)
        if len(candidate.split()) <= 25 and len(blocks) > 1:
            headline = candidate
            blocks.pop(0)
    _drop_date_line(blocks)
    if blocks and (noted := author_note(blocks[-1].text)) is not None:
        affiliation = affiliation or noted  # （作者系……）: who the author is
        blocks.pop()
    headline = headline or expert.headline
    paras: list[Paragraph] = []
    for block in blocks:
        if block.kind == "h":
            paras.append(tuple(Span(s.text, s.href, s.em, True) for s in block.para))
        else:
            paras.append(block.para)
    return Comment(
        name=expert.name,
        affiliation=affiliation or (roster or {}).get(expert.name),
        paragraphs=tuple(join_broken_paragraphs(paras)),
        anchor=expert.anchor,
        headline=headline,
    )
