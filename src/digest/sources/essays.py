"""Roundtables and symposia: an editor's introduction, then essays, each under its own
headline with a "By Name" line, perhaps footnote markers, a pull quote that repeats a
sentence of the essay, and a bio in italics at its end ("Name is a … at …") or all the
bios together after the essays; endnotes after them.

Each essay becomes a comment: the "By" line names the expert, the headline is the
comment's headline, the bio gives a short affiliation, and the byline, the pull quote,
the markers, the bio and the notes leave the text.
"""

from __future__ import annotations

import re

from digest.model import Comment, Paragraph, Span
from digest.sources.attributions import VERB, short_affiliation
from digest.sources.blocks import Block
from digest.sources.lines import looks_like_name

BYLINE = re.compile(r"^\s*by\s+(?P<name>.+?)\s*$", re.I)
INTRODUCED = re.compile(r"^\s*(introduced|edited|curated|compiled)\s+by\b", re.I)
NOTES = frozenset({"notes", "endnotes", "footnotes", "references", "sources"})
BIOS = frozenset({"contributors", "about the contributors", "about the authors", "the authors"})
# "[2]", or a note number run into the text after a stop or a closing quote ("… built.1")
MARKER = re.compile(r"\[\d{1,3}\]|(?<=\D[.,;:!?”’\"])\d{1,3}(?=\s|$)")


def _byline(block: Block) -> str | None:
    found = BYLINE.match(block.text) if block.kind == "p" else None
    name = found["name"] if found else ""
    return name if found and looks_like_name(name) else None


def _bio(block: Block, name: str | None = None) -> tuple[str, str] | None:
    """(name, affiliation) from "Name is a … at …" (the whole paragraph)."""
    text = block.text.strip()
    for candidate in [name] if name else []:
        if text.startswith(candidate) and (found := VERB.match(text[len(candidate) :])):
            return candidate, short_affiliation(found["role"])
    spans = [s for s in block.para if s.text.strip()]
    if spans and spans[0].strong and looks_like_name(spans[0].text.strip()):
        who = spans[0].text.strip()
        found = VERB.match("".join(s.text for s in spans[1:]))
        if found:
            return who, short_affiliation(found["role"])
    return None


def _without_markers(para: Paragraph) -> Paragraph:
    """Footnote markers out: "[2]" in the text, or a bare number after a word or stop."""
    out: list[Span] = []
    for span in para:
        text = MARKER.sub("", span.text)
        if out and text.strip().isdigit() and len(text.strip()) <= 3 and out[-1].text[-1:].strip():
            continue  # a superscript note number
        out.append(Span(text, span.href, span.em, span.strong))
    return tuple(s for s in out if s.text)


def essays(blocks: list[Block]) -> tuple[list[Paragraph], list[Comment]] | None:
    """The introduction and the essays, when at least two headlines carry a "By" line."""
    intro: list[Block] = []
    parts: list[tuple[Block, str, list[Block]]] = []
    bios: dict[str, str] = {}
    heading: Block | None = None
    after = ""  # past the essays: "notes" or "bios"
    for block in blocks:
        lowered = block.text.strip().strip(":").lower()
        if block.kind == "h" and lowered in NOTES | BIOS:
            after, heading = ("notes" if lowered in NOTES else "bios"), None
            continue
        if after == "notes":
            continue  # endnotes: sources, never anyone's words here
        if after == "bios":
            if (found := _bio(block)) is not None:
                bios[found[0]] = found[1]
            continue
        if block.kind == "h":
            heading = block
            continue
        if heading is not None and (name := _byline(block)) is not None:
            parts.append((heading, name, []))
            heading = None
            continue
        if parts and heading is None:
            parts[-1][2].append(block)
        elif not parts:
            intro.append(block)
    if len(parts) < 2:
        return None
    comments = []
    for title, name, body in parts:
        said = " ".join(b.text for b in body if b.kind in {"p", "li"})
        # a pull quote repeats a sentence of the essay; a quotation that does not, stays
        paragraphs = [
            b for b in body
            if b.kind in {"p", "li"} or (b.kind == "quote" and b.text.strip() not in said)
        ]  # fmt: skip
        affiliation = bios.get(name)
        if paragraphs and _is_italic(paragraphs[-1]) and (found := _bio(paragraphs[-1], name)):
            affiliation = found[1]
            paragraphs = paragraphs[:-1]
        if paragraphs:
            comments.append(
                Comment(
                    name,
                    affiliation,
                    tuple(_without_markers(b.para) for b in paragraphs),
                    title.anchor,
                    title.text.strip(),
                )
            )
    kept = [b.para for b in intro if b.kind == "p" and not INTRODUCED.match(b.text)]
    return (kept, comments) if len(comments) >= 2 else None


def _is_italic(block: Block) -> bool:
    visible = [s for s in block.para if s.text.strip()]
    return bool(visible) and all(s.em for s in visible)
