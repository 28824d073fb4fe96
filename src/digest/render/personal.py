"""Subscriber fields in a template, filled per reader after the issue is rendered.

A template writes ``{{ subscriber.region }}``, ``{{ subscriber.get('region', 'your
region') }}`` or a whole phrase, ``{{ subscriber.line('News from {region}.',
fallback='') }}``. Each use becomes a marker (``__DIGEST_F0__``…) in the one render of
the issue, and a *piece*: the phrase with its fields, and the fallback a reader gets
when any of those fields is missing (an empty fallback leaves nothing at all). Every
provider fills the markers per reader the way it fills the unsubscribe link.

Because the value is not known when the template runs, a template cannot test a field
(``{% if subscriber.region %}``, ``subscriber.region or 'x'``): that is refused with a
message saying what to write instead, never silently always true.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Collection, Mapping
from html import escape

FIELD_MARKER = "__DIGEST_F{}__"
FIELD_MARKER_PATTERN = rb"__DIGEST_F\d+__"  # what JSON bodies are cut at
FIELD_MARKERS = re.compile(r"__DIGEST_F(\d+)__")
BUILT_IN = ("name", "email")  # every subscriber's own: no declaration needed
# a marker inside a link or an image address: a subscriber's value there could make it
# point anywhere, so fields never go into URLs
IN_URL = re.compile(r"""(?:href|src|action)\s*=\s*["'][^"']*__DIGEST_F\d+__""", re.IGNORECASE)

Piece = tuple[str, str]  # (the phrase, "Hi {first_name}", and its fallback)


class FieldUseError(ValueError):
    """A template used a subscriber field in a way that cannot work."""


def _refuse_test(self: object) -> bool:
    raise FieldUseError(
        "a subscriber field is filled per reader after rendering, so a template cannot "
        "test it (if/or/default): write subscriber.get('FIELD', 'fallback') or "
        "subscriber.line('… {FIELD} …', fallback='') instead"
    )


class Marker(str):
    """What a use of a field writes: the marker, which refuses to be tested."""

    __slots__ = ()
    __bool__ = _refuse_test


def fields_of(phrase: str) -> tuple[str, ...]:
    """The fields ``phrase`` names, checked to be plain ``{field}`` references: no
    attribute or index access, no conversion or format spec."""
    names = []
    try:
        parsed = list(string.Formatter().parse(phrase))
    except ValueError as err:
        raise FieldUseError(f"subscriber.line({phrase!r}): {err}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise FieldUseError(
                f"subscriber.line({phrase!r}): write each field as {{field}} alone, "
                f"not {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}}"
            )
        names.append(name)
    return tuple(dict.fromkeys(names))


class Subscriber:
    """What a template sees as ``subscriber``: its uses of fields, collected as pieces."""

    def __init__(self, declared: Collection[str]) -> None:
        self._declared = tuple(declared)
        self._pieces: list[Piece] = []

    def line(self, phrase: str, fallback: str = "") -> Marker:
        """``phrase`` with each reader's fields in it; ``fallback`` for a reader
        missing any of them (empty: nothing at all)."""
        names = fields_of(str(phrase))
        if not names:
            raise FieldUseError(f"subscriber.line({phrase!r}) names no field, e.g. {{region}}")
        for name in names:
            if name not in self._declared and name not in BUILT_IN:
                known = ", ".join((*BUILT_IN, *self._declared))
                raise FieldUseError(
                    f"subscriber.{name}: no such field (declare it in audience.fields; "
                    f"known: {known})"
                )
        piece = (str(phrase), str(fallback))
        if piece not in self._pieces:
            self._pieces.append(piece)
        return Marker(FIELD_MARKER.format(self._pieces.index(piece)))

    def get(self, field: str, fallback: str = "") -> Marker:
        """One field's value, or ``fallback`` where the reader has none."""
        if not str(field).isidentifier():
            raise FieldUseError(f"subscriber.get({field!r}): not a field name")
        return self.line("{" + str(field) + "}", fallback)

    def __getattr__(self, name: str) -> Marker:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)


def pieces_of(subscriber: Subscriber) -> tuple[Piece, ...]:
    """Every use of a field the templates made, in marker order."""
    return tuple(subscriber._pieces)


def shown(value: object) -> str | None:
    """A stored field value as a reader sees it, on one line; None when there is none."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dt.date):
        value = value.isoformat()
    text = " ".join(str(value).split())
    return text or None


def fill(piece: Piece, names: tuple[str, ...], values: Mapping[str, str | None]) -> str:
    """One reader's text for ``piece``: the phrase with their values, or the fallback."""
    phrase, fallback = piece
    found = {}
    for name in names:
        value = values.get(name)
        if not value:
            return fallback
        found[name] = value
    return phrase.format_map(found)


def piece_values(
    pieces: tuple[Piece, ...], names: tuple[tuple[str, ...], ...], values: Mapping[str, str | None]
) -> dict[str, str]:
    """Each piece's text for one reader, by value key: ``f0_html`` (escaped), ``f0_text``."""
    out = {}
    for index, piece in enumerate(pieces):
        text = fill(piece, names[index], values)
        out[f"f{index}_html"] = escape(text)
        out[f"f{index}_text"] = text
    return out


def piece_keys(count: int) -> tuple[str, ...]:
    return tuple(f"f{i}_{part}" for i in range(count) for part in ("html", "text"))


def replace_markers(body: str, part: str, values: Mapping[str, str]) -> str:
    """``body`` with each field marker replaced by its ``part`` value in ``values``."""
    if "__DIGEST_F" not in body:
        return body
    return FIELD_MARKERS.sub(lambda m: values[f"f{m.group(1)}_{part}"], body)
