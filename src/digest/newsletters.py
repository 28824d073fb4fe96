"""Newsletters: the default one (config.yaml ``newsletter:``) and any more
(``newsletters:``), each a key, a name, a From, a List-Id and a footer of its own.

A subscriber is subscribed or not to each; an issue names the one it goes to (its file's
``newsletter:`` key, else the default). Subscribers from before newsletters were
declared are on the default newsletter's key, ``main`` unless ``newsletter.key`` says
otherwise (``digest newsletters rename`` moves them to another key).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from digest.defaultkey import DEFAULT_KEY
from digest.headerchars import has_line_break

KEY_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
GREETING_FIELD = re.compile(r"(?<!\{)\{([a-z][a-z0-9_]*)\}(?!\})")


def newsletter_key(key: str) -> str:
    """``key`` if it can name a newsletter (lower-case letters, digits, - and _)."""
    if not re.match(KEY_PATTERN, key):
        raise ValueError(
            f"{key!r} cannot name a newsletter: use lower-case letters, digits, - and _, "
            "starting with a letter (e.g. weekly, alerts-asia)"
        )
    return key


class Newsletter(BaseModel):
    """One newsletter: the default one is config.yaml's ``newsletter:`` section; each of
    ``newsletters:`` is the default with some settings of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    key: str = Field(DEFAULT_KEY, pattern=KEY_PATTERN)  # how issues, links and the store name it
    description: str | None = None  # one line on the signup form and the subscription page
    # a folder with this newsletter's own email.mjml.j2 and email.txt.j2 (an alert can
    # look unlike the weekly); None: render.templates, or the bundled ones
    templates: str | None = None
    name: str = "The Conversation Digest"
    language: str = Field("en", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    sender: str = Field("The Conversation Digest <digest@example.org>", alias="from")
    reply_to: str | None = None
    postal_address: str = "The Conversation Digest, 1 Example Street, Springfield 01234, USA"
    greeting: str | None = None  # e.g. "Dear {name},"; {name} is filled per recipient
    greeting_fallback: str = "reader"
    direction: Literal["ltr", "rtl"] | None = None  # None: from the language
    list_id: str | None = Field(  # RFC 2919; None: "<name>.<sender's domain>"
        None,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$",
        max_length=255,
    )
    sender_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$", max_length=64)

    @field_validator("name", "sender", "reply_to", "greeting", "greeting_fallback", "description")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and has_line_break(value):
            raise ValueError("must be one line (no line breaks or control characters)")
        return value

    @field_validator("sender", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            from email.utils import parseaddr  # on use: it costs start-up time

            _, address = parseaddr(value)
            if "@" not in address:
                raise ValueError("must be an email address, e.g. 'Name <news@example.org>'")
        return value

    @field_validator("greeting")
    @classmethod
    def _greeting(cls, value: str | None) -> str | None:
        if value is None:
            return value
        names = GREETING_FIELD.findall(value)
        if len(names) != 1:
            raise ValueError(
                "must contain one {name}, or one subscriber field such as {first_name}"
            )
        try:
            value.format(**{names[0]: "Reader"})
        except (IndexError, KeyError, ValueError, AttributeError):
            raise ValueError(
                f"may hold {{{names[0]}}} and nothing else in braces (write {{{{ and }}}} "
                "for a brace)"
            ) from None
        return value

    @property
    def greeting_field(self) -> str:
        """What the greeting greets by: ``name``, or a subscriber field's name."""
        found = GREETING_FIELD.findall(self.greeting or "")
        return found[0] if found else "name"


class NewsletterOverride(BaseModel):
    """A newsletter under ``newsletters:``: what differs from the default newsletter."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    description: str | None = None
    templates: str | None = None
    name: str | None = None
    language: str | None = None
    sender: str | None = Field(None, alias="from")
    reply_to: str | None = None
    postal_address: str | None = None
    greeting: str | None = None
    greeting_fallback: str | None = None
    direction: Literal["ltr", "rtl"] | None = None
    list_id: str | None = None
    sender_id: str | None = None

    @field_validator("*")
    @classmethod
    def _as_the_default_would(cls, value: Any, info: ValidationInfo) -> Any:
        """Each value checked by the default newsletter's own rules, so that an error
        names its line in config.yaml."""
        if value is None or info.field_name is None:
            return value
        field = cls.model_fields[info.field_name]
        try:
            Newsletter.model_validate({field.alias or info.field_name: value})
        except ValidationError as err:
            message = str(err.errors()[0]["msg"]).removeprefix("Value error, ")
            raise ValueError(message) from None
        return value


def merged(default: Newsletter, key: str, override: NewsletterOverride) -> Newsletter:
    """The newsletter ``key``: the default's settings with ``override``'s own. Its
    List-Id is its own: the default's explicit one is never inherited."""
    values: dict[str, Any] = default.model_dump(by_alias=True)
    values["list_id"] = None
    values.update(override.model_dump(by_alias=True, exclude_unset=True))
    values["key"] = key
    return Newsletter.model_validate(values)
