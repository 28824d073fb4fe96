"""Mailgun: POST /v3/{domain}/messages, multipart/form-data, HTTP Basic (user "api").

One call carries up to 1000 recipients and one shared body; `recipient-variables` fill
`%recipient.KEY%` in the body and headers, and keep each recipient from seeing the
others. One bad address fails the whole call (400), so addresses are checked first.
"""

from __future__ import annotations

import json
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
from digest.render.message import VALUE_KEYS, address_of, recipient_values, shared_bodies


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
        html, text = shared_bodies(rendered, {key: placeholder(key) for key in VALUE_KEYS})
        variables = {r.email: recipient_values(rendered, r) for r in batch.recipients}
        data: dict[str, Any] = {
            "from": rendered.sender,
            "to": [address_of(r) for r in batch.recipients],
            "subject": batch.subject,
            "html": html,
            "text": text,
            "recipient-variables": json.dumps(variables, ensure_ascii=False),
            "o:tag": rendered.issue_id,
            "o:tracking": "yes" if self.settings.tracking else "no",
            "v:issue": rendered.issue_id,
        }
        if not rendered.transactional:
            data["h:List-Unsubscribe"] = placeholder("list_unsubscribe")
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
