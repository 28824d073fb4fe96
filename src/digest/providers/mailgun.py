"""Mailgun: POST /v3/{domain}/messages, multipart/form-data, HTTP Basic (user "api").

One call carries up to 1000 recipients and one shared body; `recipient-variables` fill
`%recipient.KEY%` in the body and headers, and keep each recipient from seeing the
others. One bad address fails the whole call (400), so addresses are checked first.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import httpx
from email_validator import EmailNotValidError, validate_email

from digest.config import Settings
from digest.errors import ConfigError
from digest.providers.base import (
    ACCEPTED,
    REJECTED,
    Batch,
    HttpProvider,
    Outcome,
    all_failed,
    short,
)
from digest.render import ADDRESS_MARKER, NAME_MARKER
from digest.render.message import (
    address_of,
    field_texts,
    greeting_of,
    is_plain_token,
    recipient_values,
    shared_bodies,
    value_keys,
)
from digest.render.personal import piece_keys

HTML_SPECIAL = frozenset("&<>\"'")  # what HTML escaping changes in an address


def placeholder(key: str) -> str:
    return f"%recipient.{key}%"


def invalid_reason(address: str) -> str | None:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as err:
        return str(err)
    return None


class Mailgun(HttpProvider):
    name = "mailgun"
    max_batch = 1000
    default_base_url = "https://api.mailgun.net"
    default_key_env = "MAILGUN_API_KEY"

    def __init__(self, settings: Settings, client: httpx.Client) -> None:
        super().__init__(settings, client)
        if not self.settings.domain:
            raise ConfigError(
                "provider.domain: Mailgun needs the sending domain (e.g. mg.example.org)"
            )
        self.domain = self.settings.domain

    def request(self, batch: Batch) -> dict[str, Any]:
        rendered = batch.rendered
        html, text, list_unsubscribe, variables = self.personal_parts(batch)
        data: dict[str, Any] = {
            "from": rendered.sender,
            # one field, the addresses separated by commas, as Mailgun takes them: a
            # thousand fields would cost a thousand multipart parts
            "to": ", ".join(address_of(r) for r in batch.recipients),
            "subject": batch.subject,
            "html": html,
            "text": text,
            "recipient-variables": variables,
            "o:tag": rendered.issue_id,
            "o:tracking": "yes" if self.settings.tracking else "no",
            "v:issue": rendered.issue_id,
        }
        if not rendered.transactional:
            data["h:List-Unsubscribe"] = list_unsubscribe
            data["h:List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        data.update({f"h:{name}": value for name, value in rendered.headers.items()})
        if rendered.reply_to:
            data["h:Reply-To"] = rendered.reply_to
        if self.settings.test_mode:
            data["o:testmode"] = "yes"
        # multipart/form-data: the fields go as they are, where urlencoding the bodies and
        # the recipient variables cost about 40 µs a recipient. Encoded here, once, into
        # one body: httpx would otherwise write each of the thousand fields separately.
        fields = [
            (name, (None, item))
            for name, value in data.items()
            for item in (value if isinstance(value, list) else [value])
        ]
        url = f"{self.base_url}/v3/{self.domain}/messages"
        encoded = httpx.Request("POST", url, files=fields)
        return {
            "method": "POST",
            "url": url,
            "content": encoded.read(),
            "headers": {"Content-Type": encoded.headers["Content-Type"]},
            "auth": ("api", self.key),
        }

    @staticmethod
    def personal_parts(batch: Batch) -> tuple[str, str, str, str]:
        """The shared HTML, text and List-Unsubscribe with Mailgun's placeholders, and the
        recipient variables as JSON. When every token and address is plain (the usual
        case) the variables are the token itself, ``%recipient.t%``, inside the URL
        written once, the address (``%recipient.a%``, for the footer's "Sent to"), the
        greeting if the template has one and the subscriber fields it uses; otherwise
        every value is sent."""
        rendered = batch.rendered
        pieces = rendered.unsubscribe_pieces
        if pieces is None or not all(
            is_plain_token(r.token) and not HTML_SPECIAL.intersection(r.email)
            for r in batch.recipients
        ):
            keys = value_keys(rendered)
            html, text = shared_bodies(rendered, {key: placeholder(key) for key in keys})
            every = {r.email: recipient_values(rendered, r) for r in batch.recipients}
            return html, text, placeholder("list_unsubscribe"), json.dumps(every)
        token = placeholder("t")
        html, text = shared_bodies(
            rendered,
            {
                "unsubscribe_html": pieces[2] + token + pieces[3],
                "unsubscribe_text": pieces[0] + token + pieces[1],
                "name_html": placeholder("name_html"),
                "name_text": placeholder("name_text"),
                # an address HTML escaping leaves as it is: one variable for both parts
                "address_html": placeholder("a"),
                "address_text": placeholder("a"),
                **{key: placeholder(key) for key in piece_keys(len(rendered.pieces))},
            },
        )
        list_unsubscribe = (
            f"<{pieces[0]}{token}{pieces[1]}>,"
            f" <mailto:{rendered.unsubscribe_mailto}?subject=unsubscribe%20{token}>"
        )
        named = NAME_MARKER in rendered.html or NAME_MARKER in rendered.text
        addressed = ADDRESS_MARKER in rendered.html or ADDRESS_MARKER in rendered.text
        variables: dict[str, dict[str, str]] = {}
        for r in batch.recipients:
            values = {"t": r.token}
            if addressed:
                values["a"] = r.email
            if named:  # the whole greeting line, as every provider sends it
                greeting = greeting_of(rendered, r)
                values["name_html"] = escape(greeting)
                values["name_text"] = greeting
            if rendered.pieces:  # the subscriber fields the templates use
                values.update(field_texts(rendered, r))
            variables[r.email] = values
        return html, text, list_unsubscribe, json.dumps(variables)

    def parse(self, response: httpx.Response, batch: Batch) -> list[Outcome]:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {"message": short(response.text)}
        message = (
            short(str(body.get("message", ""))) if isinstance(body, dict) else short(str(body))
        )
        if status == 200:
            return [
                Outcome(r.email, ACCEPTED, message_id=str(body.get("id"))) for r in batch.recipients
            ]
        if status == 404:
            raise ConfigError(
                f"mailgun: {message or 'not found'} (HTTP 404): check provider.domain "
                "and provider.base_url (https://api.eu.mailgun.net for EU domains)"
            )
        if status == 400:
            reasons = {r.email: invalid_reason(r.email) for r in batch.recipients}
            if any(reasons.values()):
                return [
                    Outcome(
                        r.email, REJECTED, reason=f"mailgun: invalid address ({reasons[r.email]})"
                    )
                    if reasons[r.email]
                    else Outcome(
                        r.email,
                        "failed",
                        reason="mailgun: call refused for another recipient",
                        retryable=True,
                        retry_after=0,
                    )
                    for r in batch.recipients
                ]
        return all_failed(
            batch, f"mailgun refused the request (HTTP {status}): {message}", retryable=False
        )


def create(settings: Settings, client: httpx.Client) -> Mailgun:
    return Mailgun(settings, client)
