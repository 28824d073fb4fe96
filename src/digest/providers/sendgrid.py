"""SendGrid: POST /v3/mail/send, JSON, Bearer key, up to 1000 personalizations.

One shared body with literal substitution keys; each personalization carries the
recipient's values and List-Unsubscribe headers. Success is 202 with an empty body (200 in
sandbox mode), 400 lists errors by field, 413 is an HTML page.
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Any

import httpx

from digest.config import Settings
from digest.providers.base import (
    ACCEPTED,
    REJECTED,
    Batch,
    HttpProvider,
    Outcome,
    all_failed,
    short,
)
from digest.render.message import list_headers, recipient_values, shared_bodies, value_keys

_FIELD = re.compile(r"^personalizations\.(\d+)\.to")


def placeholder(key: str) -> str:
    return f"-digest_{key}-"


def _address(value: str) -> dict[str, str]:
    name, address = parseaddr(value)
    return {"email": address, "name": name} if name else {"email": address}


class SendGrid(HttpProvider):
    name = "sendgrid"
    max_batch = 1000
    default_base_url = "https://api.sendgrid.com"
    default_key_env = "SENDGRID_API_KEY"

    def request(self, batch: Batch) -> dict[str, Any]:
        rendered = batch.rendered
        keys = value_keys(rendered)
        html, text = shared_bodies(rendered, {key: placeholder(key) for key in keys})
        personalizations = []
        for recipient in batch.recipients:
            values = recipient_values(rendered, recipient)
            to = {"email": recipient.email} | ({"name": recipient.name} if recipient.name else {})
            personalizations.append(
                {
                    "to": [to],
                    "substitutions": {placeholder(k): values[k] for k in keys},
                    "headers": list_headers(rendered, values["list_unsubscribe"]),
                }
            )
        body: dict[str, Any] = {
            "personalizations": personalizations,
            "from": _address(rendered.sender),
            "subject": batch.subject,
            "content": [
                {"type": "text/plain", "value": text},
                {"type": "text/html", "value": html},
            ],
            "categories": [rendered.issue_id[:255]],
            "custom_args": {"issue": rendered.issue_id},
            "tracking_settings": {
                "click_tracking": {"enable": self.settings.tracking},
                "open_tracking": {"enable": self.settings.tracking},
            },
        }
        if rendered.reply_to:
            body["reply_to"] = _address(rendered.reply_to)
        if self.settings.test_mode:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return {
            "method": "POST",
            "url": f"{self.base_url}/v3/mail/send",
            "json": body,
            "headers": {"Authorization": f"Bearer {self.key}"},
        }

    def parse(self, response: httpx.Response, batch: Batch) -> list[Outcome]:
        status = response.status_code
        if status in (200, 202):
            message_id = response.headers.get("x-message-id")
            return [Outcome(r.email, ACCEPTED, message_id=message_id) for r in batch.recipients]
        if status == 413:
            return all_failed(
                batch,
                "sendgrid: request too large (HTTP 413); lower provider.batch_size",
                retryable=False,
            )
        try:
            errors = response.json().get("errors", [])
        except ValueError:
            errors = []
        if status == 400 and errors:
            bad = {}
            for error in errors:
                match = _FIELD.match(str(error.get("field") or ""))
                if match:
                    bad[int(match.group(1))] = short(str(error.get("message")))
            if bad:
                # the bad addresses are refused; the others are resent without them
                return [
                    Outcome(r.email, REJECTED, reason=f"sendgrid: {bad[i]}")
                    if i in bad
                    else Outcome(
                        r.email,
                        "failed",
                        reason="sendgrid: batch refused for another recipient",
                        retryable=True,
                        retry_after=0,
                    )
                    for i, r in enumerate(batch.recipients)
                ]
        detail = "; ".join(short(str(e.get("message"))) for e in errors) or short(response.text)
        return all_failed(
            batch, f"sendgrid refused the request (HTTP {status}): {detail}", retryable=False
        )


def create(settings: Settings, client: httpx.Client) -> SendGrid:
    return SendGrid(settings, client)
