"""Resend: POST /emails (one) and /emails/batch (up to 100), JSON, Bearer key.

No server-side merge: one email per recipient. Every request carries an Idempotency-Key
derived from the batch, so a batch resent after a crash is delivered once.

Resend refuses a request by error name (validation_error, invalid_parameter, …), and no
documented name means "this recipient does not exist": its bounces arrive later, as
webhook events. So a refused request fails its recipients and suppresses no one.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from digest.config import Settings
from digest.errors import ProviderError
from digest.providers.base import (
    ACCEPTED,
    Batch,
    HttpProvider,
    Outcome,
    all_failed,
    short,
)
from digest.render.headers import ascii_id
from digest.render.message import (
    JsonObjects,
    address_of,
    list_headers,
    recipient_values,
)

NOT_RETRYABLE = {"daily_quota_exceeded", "monthly_quota_exceeded"}


def idempotency_key(batch: Batch) -> str:
    """Stable for the same batch and recipients, different when the recipients differ."""
    members = hashlib.sha256("\n".join(r.email for r in batch.recipients).encode()).hexdigest()[:16]
    return ascii_id(f"{batch.key or batch.rendered.issue_id}:{members}")[:256]


class Resend(HttpProvider):
    name = "resend"
    max_batch = 100
    idempotent = True
    default_base_url = "https://api.resend.com"
    default_key_env = "RESEND_API_KEY"

    def request(self, batch: Batch) -> dict[str, Any]:
        rendered = batch.rendered
        bodies = self.bodies(rendered)
        shared: dict[str, object] = {
            "from": rendered.sender,
            "subject": batch.subject,
            "tags": [{"name": "issue", "value": rendered.issue_id[:256]}],
        }
        if rendered.reply_to:
            shared["reply_to"] = rendered.reply_to
        objects = JsonObjects(shared)
        emails = []
        for recipient in batch.recipients:
            values = recipient_values(rendered, recipient)
            html, text = bodies.for_recipient(values)
            personal: dict[str, object] = {
                "to": [address_of(recipient)],
                "headers": list_headers(rendered, values["list_unsubscribe"]),
            }
            emails.append(objects.one(personal, {"html": html, "text": text}))
        headers = {"Authorization": f"Bearer {self.key}", "Idempotency-Key": idempotency_key(batch)}
        return self.json_messages(emails, "/emails", "/emails/batch", headers)

    def rate_limited(self, response: httpx.Response, batch: Batch) -> list[Outcome]:
        try:
            name = str(response.json().get("name", ""))
        except (ValueError, AttributeError):
            name = ""
        if name in NOT_RETRYABLE:
            return all_failed(
                batch, f"resend: {name}: the sending quota is used up", retryable=False
            )
        return super().rate_limited(response, batch)

    def parse(self, response: httpx.Response, batch: Batch) -> list[Outcome]:
        try:
            body = response.json()
        except ValueError:
            body = {}
        status = response.status_code
        if status == 200:
            items = body.get("data", [body]) if isinstance(body, dict) else []
            if len(items) != len(batch.recipients):
                raise ProviderError(
                    f"resend answered {len(items)} ids for {len(batch.recipients)} emails"
                )
            return [
                Outcome(r.email, ACCEPTED, message_id=str(i.get("id")))
                for r, i in zip(batch.recipients, items, strict=True)
            ]
        name = str(body.get("name", "")) if isinstance(body, dict) else ""
        message = (
            short(str(body.get("message", response.text)))
            if isinstance(body, dict)
            else short(response.text)
        )
        if status == 409:  # the same key is still being processed, or was used for other content
            return all_failed(
                batch, f"resend: {name or 'conflict'}: {message}", retryable=True, retry_after=1.0
            )
        if name in NOT_RETRYABLE:
            return all_failed(batch, f"resend: {name}: {message}", retryable=False)
        return all_failed(
            batch, f"resend refused the request (HTTP {status}, {name}): {message}", retryable=False
        )


def create(settings: Settings, client: httpx.Client) -> Resend:
    return Resend(settings, client)
