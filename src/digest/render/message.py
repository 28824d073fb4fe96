"""A rendered issue + one recipient -> that recipient's message, and its RFC 5322 form.

Personalising is string substitution into the already-rendered HTML and text: no
Jinja2, MJML or premailer per recipient.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.policy import default as default_policy
from email.utils import format_datetime, formataddr, parseaddr
from urllib.parse import quote

from digest.render import ADDRESS_MARKER, NAME_MARKER, UNSUBSCRIBE_MARKER, RenderedIssue
from digest.render.headers import sender_domain
from digest.render.personal import (
    FIELD_MARKER,
    FIELD_MARKER_PATTERN,
    MAX_FIELD_CHARS,
    cut,
    piece_key,
    piece_keys,
    piece_values,
    replace_markers,
)

ONE_LINE_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post", "feedback-id"})


@dataclass(slots=True)  # made per recipient: not frozen, for speed
class Recipient:
    email: str
    name: str | None = None
    token: str = "preview"  # identifies the recipient in their unsubscribe URL
    greets: str | None = None  # the greeting's field, where it greets by one (first_name)
    # the subscriber fields the issue's templates use (RenderedIssue.fields_used), as text
    fields: dict[str, str | None] | None = None


@dataclass(frozen=True)
class Message:
    """What a provider sends to one recipient."""

    to: str  # "Name <address>" or the bare address
    email: str
    subject: str
    html: str
    text: str
    sender: str
    reply_to: str | None
    tag: str  # the issue's slug, in ASCII
    headers: dict[str, str] = field(default_factory=dict)
    key: str = ""  # the sending batch's key: with the address, it makes the Message-ID


def unsubscribe_url(rendered: RenderedIssue, recipient: Recipient) -> str:
    return rendered.unsubscribe_url.format(token=quote(recipient.token, safe=""))


# The per-recipient values, by key. A provider with server-side substitution puts its own
# placeholder for each key into one shared body (see shared_bodies) and sends the values.
VALUE_KEYS = (
    "unsubscribe_html",
    "unsubscribe_text",
    "name_html",
    "name_text",
    "address_html",
    "address_text",
    "list_unsubscribe",
)


def value_keys(rendered: RenderedIssue) -> tuple[str, ...]:
    """Every per-recipient value of ``rendered``: VALUE_KEYS and its field pieces'."""
    return VALUE_KEYS + piece_keys(len(rendered.pieces)) if rendered.pieces else VALUE_KEYS


def field_texts(rendered: RenderedIssue, recipient: Recipient) -> dict[str, str]:
    """The templates' uses of subscriber fields, as ``recipient`` reads them, by value
    key (``f0_html``, ``f0_text``…): their fields, name and address filled in."""
    if not rendered.pieces:
        return {}
    return piece_values(
        rendered.piece_plans, recipient.fields or {}, recipient.name, recipient.email
    )


# what quote() and html.escape() leave as it is: such a token needs neither per recipient
is_plain_token = re.compile(r"[A-Za-z0-9._~-]+\Z").match


def greeting_for(rendered: RenderedIssue, value: str | None) -> str:
    """What stands in the greeting's place for a recipient whose name (or greeting
    field) is ``value``: the whole greeting line, with the fallback where the value is
    missing, or nothing at all when the fallback is empty ("greet by first name, else
    nothing"). A render frozen before greetings by field takes just the name."""
    shown = value or rendered.greeting_fallback
    if len(shown) > MAX_FIELD_CHARS:  # a name or field a reader cannot swell a request by
        shown = cut(shown)
    if rendered.greeting is None:
        return shown
    return rendered.greeting.format(**{rendered.greeting_field: shown}) if shown else ""


def greeting_of(rendered: RenderedIssue, recipient: Recipient) -> str:
    """What stands in the greeting's place for ``recipient`` (see greeting_for): the
    one rule every provider follows, those that fill values on their side too."""
    greets = recipient.name if rendered.greeting_field == "name" else recipient.greets
    return greeting_for(rendered, greets)


def recipient_values(rendered: RenderedIssue, recipient: Recipient) -> dict[str, str]:
    token = recipient.token
    pieces = rendered.unsubscribe_pieces
    if pieces is not None and is_plain_token(token):  # the usual case, and the fast one
        url = pieces[0] + token + pieces[1]
        url_html = pieces[2] + token + pieces[3]
        subject = "unsubscribe%20" + token
    else:
        url = unsubscribe_url(rendered, recipient)
        url_html = html.escape(url)
        subject = quote("unsubscribe " + token)
    name = greeting_of(rendered, recipient)
    values = {
        "unsubscribe_html": url_html,
        "unsubscribe_text": url,
        "name_html": html.escape(name),
        "name_text": name,
        "address_html": html.escape(recipient.email),
        "address_text": recipient.email,
        "list_unsubscribe": f"<{url}>, <mailto:{rendered.unsubscribe_mailto}?subject={subject}>",
    }
    if rendered.pieces:
        values.update(field_texts(rendered, recipient))
    return values


def shared_bodies(rendered: RenderedIssue, placeholders: dict[str, str]) -> tuple[str, str]:
    """The HTML and text with each marker replaced by a provider's placeholder."""
    html_body = rendered.html.replace(UNSUBSCRIBE_MARKER, placeholders["unsubscribe_html"])
    html_body = html_body.replace(NAME_MARKER, placeholders["name_html"])
    html_body = html_body.replace(ADDRESS_MARKER, placeholders["address_html"])
    text_body = rendered.text.replace(UNSUBSCRIBE_MARKER, placeholders["unsubscribe_text"])
    text_body = text_body.replace(NAME_MARKER, placeholders["name_text"])
    text_body = text_body.replace(ADDRESS_MARKER, placeholders["address_text"])
    if rendered.pieces:
        html_body = replace_markers(html_body, "html", placeholders)
        text_body = replace_markers(text_body, "text", placeholders)
    return html_body, text_body


def list_headers(rendered: RenderedIssue, list_unsubscribe: str) -> dict[str, str]:
    """Every header a message of this issue carries beyond the usual ones."""
    if rendered.transactional:
        return dict(rendered.headers)
    return {
        "List-Unsubscribe": list_unsubscribe,
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        **rendered.headers,
    }


_PLAIN_NAME = re.compile(r"[A-Za-z0-9 ]+\Z").match  # a display name needing no quoting


def address_of(recipient: Recipient) -> str:
    name = recipient.name
    if not name:
        return recipient.email
    if _PLAIN_NAME(name) and name.strip() == name:
        return f"{name} <{recipient.email}>"  # what formataddr gives, without its checks
    return formataddr((name, recipient.email))


def personalise(
    rendered: RenderedIssue, recipient: Recipient, *, subject_prefix: str = "", key: str = ""
) -> Message:
    values = recipient_values(rendered, recipient)
    html_body, text_body = shared_bodies(rendered, values)
    return Message(
        to=address_of(recipient),
        email=recipient.email,
        subject=subject_prefix + rendered.subject,
        html=html_body,
        text=text_body,
        sender=rendered.sender,
        reply_to=rendered.reply_to,
        tag=rendered.issue_id,
        headers=list_headers(rendered, values["list_unsubscribe"]),
        key=key,
    )


class _Policy(EmailPolicy):
    """The default policy, except that List-Unsubscribe headers are never folded:
    folded values have broken DKIM signatures at some relays."""

    def fold(self, name: str, value: str) -> str:
        if name.lower() in ONE_LINE_HEADERS:
            return f"{name}: {value}{self.linesep}"
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in ONE_LINE_HEADERS:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return bytes(super().fold_binary(name, value))


POLICY = _Policy().clone(**{k: getattr(default_policy, k) for k in ("utf8", "max_line_length")})


def message_id(message: Message) -> str:
    """Made from the sender's key and the address. A test send's key is new each time,
    so no two test sends (and no test send and delivery) share a Message-ID; a
    delivery's key is the list and issue, so each try of one issue to one person is the
    same message with the same ID. A message rendered for preview (no key) gets one
    from the issue and address, stable for golden files."""
    seed = (
        f"{message.key}\0{message.tag}\0{message.email}"
        if message.key
        else f"{message.tag}\0{message.email}"
    )
    digest = hashlib.sha256(seed.encode()).hexdigest()[:24]
    return f"<{message.tag}.{digest}@{sender_domain(message.sender)}>"


def to_email(message: Message, *, date: dt.datetime) -> EmailMessage:
    """A complete multipart/alternative message: text first, then HTML, UTF-8."""
    mail = EmailMessage(policy=POLICY)
    mail["Subject"] = message.subject
    mail["From"] = message.sender
    if message.reply_to:
        mail["Reply-To"] = message.reply_to
    name, address = parseaddr(message.to)
    mail["To"] = Address(display_name=name, addr_spec=address) if name else address
    mail["Date"] = format_datetime(date)
    mail["Message-ID"] = message_id(message)
    for key, value in message.headers.items():
        mail[key] = value
    mail.set_content(message.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    mail.add_alternative(message.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # A boundary derived from the content keeps the same message byte-for-byte the same.
    body = f"{message.text}\0{message.html}".encode()
    mail.set_boundary(f"=_digest_{hashlib.sha256(body).hexdigest()[:32]}")
    return mail


def _json_bytes(value: str) -> bytes:
    """``value`` as the UTF-8 inside of a JSON string literal."""
    return json.dumps(value, ensure_ascii=False)[1:-1].encode("utf-8")


# a subscriber field's text repeats from reader to reader (a region, a first name):
# encoded once each (a link with a reader's token never repeats, so it is not kept)
_json_field_bytes = functools.lru_cache(maxsize=4096)(_json_bytes)


_MARKERS = b"|".join(m.encode() for m in (UNSUBSCRIBE_MARKER, NAME_MARKER, ADDRESS_MARKER))
_MARKER_SPLIT = re.compile(b"(" + _MARKERS + b")")
# a render with uses of fields is cut at those too (only then: in a render frozen before
# fields existed, such text is the issue's own)
_FIELD_MARKER_SPLIT = re.compile(b"(" + _MARKERS + b"|" + FIELD_MARKER_PATTERN + b")")
_KEYS = {
    part: {
        UNSUBSCRIBE_MARKER.encode(): f"unsubscribe_{part}",
        NAME_MARKER.encode(): f"name_{part}",
        ADDRESS_MARKER.encode(): f"address_{part}",
    }
    for part in ("html", "text")
}


_MARKER_BYTES = frozenset(m.encode() for m in (UNSUBSCRIBE_MARKER, NAME_MARKER, ADDRESS_MARKER))


class JsonBodies:
    """The rendered HTML and text as UTF-8 JSON string literals, encoded once per issue
    and cut at the per-recipient markers.

    Providers that need one full body per recipient in a JSON request (Postmark, Resend)
    send, for each recipient, the shared pieces (the same bytes objects every time) with
    that recipient's small values between them: no body is encoded or copied again per
    recipient."""

    def __init__(self, rendered: RenderedIssue) -> None:
        self.rendered = rendered
        self.keys = _KEYS
        if rendered.pieces:  # each field marker, to its piece's value
            self.keys = {
                part: keys
                | {
                    FIELD_MARKER.format(i).encode(): piece_key(i, part)
                    for i in range(len(rendered.pieces))
                }
                for part, keys in _KEYS.items()
            }
        split = _FIELD_MARKER_SPLIT.split if rendered.pieces else _MARKER_SPLIT.split
        self.html = split(json.dumps(rendered.html, ensure_ascii=False).encode("utf-8"))
        self.text = split(json.dumps(rendered.text, ensure_ascii=False).encode("utf-8"))

    @staticmethod
    def _fill(pieces: list[bytes], keys: dict[bytes, str], values: dict[str, str]) -> list[bytes]:
        # re.split with a group puts the markers at the odd positions
        return [p if i % 2 == 0 else _json_bytes(values[keys[p]]) for i, p in enumerate(pieces)]

    @staticmethod
    def _fill_fields(
        pieces: list[bytes], keys: dict[bytes, str], values: dict[str, str]
    ) -> list[bytes]:
        """_fill, with subscriber fields' texts encoded once each for all readers."""
        return [
            p
            if i % 2 == 0
            else (_json_bytes if p in _MARKER_BYTES else _json_field_bytes)(values[keys[p]])
            for i, p in enumerate(pieces)
        ]

    def for_recipient(self, values: dict[str, str]) -> tuple[list[bytes], list[bytes]]:
        fill = self._fill_fields if self.rendered.pieces else self._fill
        return fill(self.html, self.keys["html"], values), fill(
            self.text, self.keys["text"], values
        )


def json_value(value: object) -> bytes:
    """``value`` as UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


class JsonObjects:
    """One JSON object per recipient, as UTF-8 pieces: the members every recipient shares
    encoded once, the few personal ones per recipient, and members that come as pieces
    of JSON already (the bodies, a header list) spliced in as they are."""

    def __init__(self, shared: dict[str, object]) -> None:
        self.shared = json_value(shared)[1:-1] if shared else b""

    def one(self, personal: dict[str, object], raw: dict[str, list[bytes]]) -> list[bytes]:
        encoded = [m for m in (json_value(personal)[1:-1] if personal else b"", self.shared) if m]
        out = [b"{" + b", ".join(encoded)]
        separator = b", " if encoded else b""
        for key, pieces in raw.items():
            out.append(separator + json.dumps(key).encode() + b": ")
            out.extend(pieces)
            separator = b", "
        out.append(b"}")
        return out


def json_array(items: list[list[bytes]]) -> list[bytes]:
    """A JSON array of pieces, flattened."""
    out = [b"["]
    for index, item in enumerate(items):
        if index:
            out.append(b", ")
        out.extend(item)
    out.append(b"]")
    return out


def coalesce(pieces: list[bytes], small: int = 1_048_576) -> Iterator[bytes]:
    """Stream ``pieces``: large ones as they are (shared, never copied), runs of small
    ones joined, so a request body goes out in few writes and is never built whole."""
    buffer: list[bytes] = []
    size = 0
    for piece in pieces:
        if len(piece) >= small:
            if buffer:
                yield b"".join(buffer)
                buffer, size = [], 0
            yield piece
            continue
        buffer.append(piece)
        size += len(piece)
        if size >= small:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)
