"""Subscriber fields in a template, filled per reader after the issue is rendered.

A template writes ``{{ subscriber.region }}``, ``{{ subscriber.get('region', 'your
region') }}`` or a whole phrase, ``{{ subscriber.line('News from {region}.',
fallback='') }}``. Each use becomes a marker (``__DIGEST_F0__``…) in the one render of
the issue, and a *piece*: the phrase with its fields, and the fallback a reader gets
when any of those fields is missing (an empty fallback leaves nothing at all). Every
provider fills the markers per reader the way it fills the unsubscribe link.

Because the value is not known when the template runs, a template cannot test a field
(``{% if subscriber.region %}``, ``subscriber.region or 'x'``) or change it with a filter
(``| upper``): that is refused with a message saying what to write instead, never
silently wrong. ``| default('x')`` is the one filter that means something here: it is
the fallback.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import string
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from html import escape

FIELD_MARKER = "__DIGEST_F{}__"
FIELD_MARKER_PATTERN = rb"__DIGEST_F\d+__"  # what JSON bodies are cut at
FIELD_MARKERS = re.compile(r"__DIGEST_F(\d+)__")
BUILT_IN = ("name", "email")  # every subscriber's own: no declaration needed
# a marker inside a link or an image address: a subscriber's value there could make it
# point anywhere, so fields never go into URLs
IN_URL = re.compile(
    r"""(?:\b(?:href|src|srcset|action|formaction|background|poster|cite)\s*=\s*["'][^"']*"""
    r"""|url\(\s*[^)]*)__DIGEST_F\d+__""",
    re.IGNORECASE,
)

Piece = tuple[str, str]  # (the phrase, "Hi {first_name}", and its fallback)


class FieldUseError(ValueError):
    """A template used a subscriber field in a way that cannot work."""


# filters that leave the marker whole and mean the same for any value; default is the
# fallback (see fallback_filter); any other filter on a field is refused
HARMLESS_FILTERS = frozenset(
    {"e", "escape", "string", "safe", "wrap", "nowrap", "no_widow", "with_last_word"}
)
# a marker a filter or a method has changed ("| lower", ".title()"): it would reach
# readers as it is, so the render stops instead
ALTERED = re.compile(r"__digest_f\d+__", re.IGNORECASE)


def _refuse_test(self: object) -> bool:
    raise FieldUseError(
        "a subscriber field is filled per reader after rendering, so a template cannot "
        "test it (if/or): write subscriber.get('FIELD', 'fallback') or "
        "subscriber.line('… {FIELD} …', fallback='') instead"
    )


class Marker(str):
    """What a use of a field writes: the marker, which refuses to be tested, and knows
    its phrase so that ``| default(...)`` can give it a fallback."""

    __bool__ = _refuse_test
    owner: Subscriber
    phrase: str

    def __new__(cls, text: str, owner: Subscriber, phrase: str) -> Marker:
        made = super().__new__(cls, text)
        made.owner, made.phrase = owner, phrase
        return made

    def with_fallback(self, fallback: str) -> Marker:
        return self.owner.line(self.phrase, fallback)


def fallback_filter(original: Callable[..., object]) -> Callable[..., object]:
    """Jinja's ``default`` filter, which on a subscriber field sets its fallback."""

    def default(value: object, fallback: object = "", boolean: bool = False) -> object:
        if isinstance(value, Marker):
            return value.with_fallback(str(fallback))
        return original(value, fallback, boolean)

    return default


def refusing_fields(name: str, original: Callable[..., object]) -> Callable[..., object]:
    """Filter ``name``, refusing a subscriber field: its value is not known yet."""

    # a filter Jinja passes its environment or context first takes the value second
    passed_first = getattr(original, "jinja_pass_arg", None) is not None

    @functools.wraps(original)
    def guarded(*args: object, **kwargs: object) -> object:
        value = args[1] if passed_first and len(args) > 1 else args[0] if args else None
        if isinstance(value, Marker):
            raise FieldUseError(
                f"the filter {name} cannot change a subscriber field: its value is filled "
                "per reader after rendering (write the field as it is, with a fallback "
                "by | default('…') or subscriber.get)"
            )
        return original(*args, **kwargs)

    return guarded


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
        return Marker(FIELD_MARKER.format(self._pieces.index(piece)), self, str(phrase))

    def get(self, field: str, fallback: str = "") -> Marker:
        """One field's value, or ``fallback`` where the reader has none."""
        if not str(field).isidentifier():
            raise FieldUseError(f"subscriber.get({field!r}): not a field name")
        return self.line("{" + str(field) + "}", fallback)

    def __str__(self) -> str:
        raise FieldUseError("write one field, subscriber.FIELD, not the whole subscriber")

    def __getattr__(self, name: str) -> Marker:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)


def check_markers(body: str, *, html: bool) -> None:
    """Refuse a marker changed as a template ran (``| lower``, ``.title()``), which
    would reach readers as it is, and (in HTML) a field in a link or an image address,
    where a reader's value could make it point anywhere."""
    if any(not FIELD_MARKERS.fullmatch(m) for m in ALTERED.findall(body)):
        raise FieldUseError(
            "a subscriber field was changed as the template ran (by a filter or a method "
            "such as lower() or title()): its value is filled per reader afterwards, so "
            "write the field as it is"
        )
    if html and IN_URL.search(body):
        raise FieldUseError(
            "a subscriber field is in a link or an image address: fields are text, and a "
            "reader's value could make the link point anywhere"
        )


def used_pieces(subscriber: Subscriber, html: str, text: str) -> tuple[tuple[Piece, ...], str, str]:
    """The uses of fields that reached the HTML or the text (a field given a fallback
    by ``| default`` leaves its first use unused), numbered again from 0, with the two
    bodies' markers renumbered to match."""
    found = FIELD_MARKERS.findall(html) + FIELD_MARKERS.findall(text)
    kept = sorted({int(index) for index in found})
    if kept == list(range(len(subscriber._pieces))):
        return tuple(subscriber._pieces), html, text
    new = {old: index for index, old in enumerate(kept)}

    def renumber(body: str) -> str:
        return FIELD_MARKERS.sub(lambda m: FIELD_MARKER.format(new[int(m.group(1))]), body)

    return tuple(subscriber._pieces[i] for i in kept), renumber(html), renumber(text)


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


def piece_key(index: int, part: str) -> str:
    """The per-recipient value key of piece ``index`` in ``part`` (html or text):
    ``f0_html``; what every provider's placeholders are named after."""
    return f"f{index}_{part}"


@dataclass(frozen=True, slots=True)
class Plan:
    """How one piece is filled, worked out once per issue: its value keys, its fields,
    and whether it is one field alone (the value as it is, no formatting)."""

    phrase: str
    fallback: str
    names: tuple[str, ...]
    key_html: str
    key_text: str
    alone: bool
    fallback_html: str


def plans_for(pieces: tuple[Piece, ...]) -> tuple[Plan, ...]:
    plans = []
    for index, (phrase, fallback) in enumerate(pieces):
        names = fields_of(phrase)
        alone = len(names) == 1 and phrase == "{" + names[0] + "}"
        plans.append(
            Plan(phrase, fallback, names, piece_key(index, "html"), piece_key(index, "text"), alone,
                 escape(fallback))
        )  # fmt: skip
    return tuple(plans)


# a field is a short text (a city, a first name; Mailchimp allows 255): a longer value
# is cut, so that no one reader can push a provider's per-recipient data past its limit
MAX_FIELD_CHARS = 255


def cut(value: str) -> str:
    """``value`` in at most MAX_FIELD_CHARS characters, ending in "…" when cut."""
    return value[: MAX_FIELD_CHARS - 1].rstrip() + "…"


def piece_values(
    plans: tuple[Plan, ...], fields: Mapping[str, str | None], name: str | None, email: str
) -> dict[str, str]:
    """Each piece's text for one reader, by value key: ``f0_html`` (escaped) and
    ``f0_text``; the phrase with their values, or the fallback where one is missing."""
    out = {}
    for plan in plans:
        found = {}
        for field in plan.names:
            value = name if field == "name" else email if field == "email" else fields.get(field)
            if not value:
                break
            found[field] = value if len(value) <= MAX_FIELD_CHARS else cut(value)
        else:
            text = found[plan.names[0]] if plan.alone else plan.phrase.format_map(found)
            out[plan.key_html] = escape(text)
            out[plan.key_text] = text
            continue
        out[plan.key_html] = plan.fallback_html
        out[plan.key_text] = plan.fallback
    return out


def fallbacks_html(plans: tuple[Plan, ...]) -> dict[str, str]:
    """Each piece's fallback, escaped, by HTML value key: what a page everyone sees
    shows (the archive), as for a reader without fields."""
    return {plan.key_html: plan.fallback_html for plan in plans}


def piece_keys(count: int) -> tuple[str, ...]:
    return tuple(piece_key(i, part) for i in range(count) for part in ("html", "text"))


def replace_markers(body: str, part: str, values: Mapping[str, str]) -> str:
    """``body`` with each field marker replaced by its ``part`` value in ``values``."""
    if "__DIGEST_F" not in body:
        return body
    return FIELD_MARKERS.sub(lambda m: values[piece_key(int(m.group(1)), part)], body)
