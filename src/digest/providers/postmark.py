"""Postmark: POST /email (one) and /email/batch (up to 500), JSON, X-Postmark-Server-Token.

A batch answers HTTP 200 even when messages in it fail: each item has its own ErrorCode
(0 is success, 406 an inactive/suppressed recipient, 300 an invalid request such as a
bad address). No server-side merge: one message object per recipient.
"""

from __future__ import annotations

from typing import Any

import httpx

from digest.config import Settings
from digest.errors import ProviderError
from digest.providers.base import (
    ACCEPTED,
    FAILED,
    REJECTED,
    Batch,
    HttpProvider,
    Outcome,
    all_failed,
    short,
)
from digest.render.message import personalise

TEST_TOKEN = "POSTMARK_API_TEST"
RECIPIENT_ERRORS = {300, 406}  # the recipient's fault: never worth resending


class Postmark(HttpProvider):
    name = "postmark"
    max_batch = 500
    default_base_url = "https://api.postmarkapp.com"
    default_key_env = "POSTMARK_SERVER_TOKEN"

    def credentials(self, settings: Settings) -> str:
        return TEST_TOKEN if settings.provider.test_mode else super().credentials(settings)

    def message(self, batch: Batch, index: int) -> dict[str, Any]:
        msg = personalise(
            batch.rendered, batch.recipients[index], subject_prefix=batch.subject_prefix
        )
        body: dict[str, Any] = {
            "From": msg.sender,
            "To": msg.to,
            "Subject": msg.subject,
            "HtmlBody": msg.html,
            "TextBody": msg.text,
            "Headers": [{"Name": k, "Value": v} for k, v in msg.headers.items()],
            "Tag": msg.tag,
            "Metadata": {"issue": msg.tag},
            "MessageStream": self.settings.message_stream,
            "TrackOpens": False,
        }
        if msg.reply_to:
            body["ReplyTo"] = msg.reply_to
        return body

    def request(self, batch: Batch) -> dict[str, Any]:
        messages = [self.message(batch, i) for i in range(len(batch.recipients))]
        single = len(messages) == 1
        return {
            "method": "POST",
            "url": f"{self.base_url}/email" if single else f"{self.base_url}/email/batch",
            "json": messages[0] if single else messages,
            "headers": {"X-Postmark-Server-Token": self.key, "Accept": "application/json"},
        }

    def parse(self, response: httpx.Response, batch: Batch) -> list[Outcome]:
        try:
            body = response.json()
        except ValueError:
            raise ProviderError(
                f"postmark: HTTP {response.status_code} with a body that is not JSON"
            ) from None
        if response.status_code != 200:
            # 422: the whole request was refused, e.g. a malformed field or a bad sender
            message = (
                short(str(body.get("Message", body)))
                if isinstance(body, dict)
                else short(str(body))
            )
            code = body.get("ErrorCode") if isinstance(body, dict) else None
            if len(batch.recipients) == 1 and code in RECIPIENT_ERRORS:
                return [
                    Outcome(
                        batch.recipients[0].email, REJECTED, reason=f"postmark {code}: {message}"
                    )
                ]
            return all_failed(
                batch,
                f"postmark refused the request (HTTP {response.status_code}, {code}): {message}",
                retryable=False,
            )
        items = body if isinstance(body, list) else [body]
        if len(items) != len(batch.recipients):
            raise ProviderError(
                f"postmark answered {len(items)} results for {len(batch.recipients)} messages"
            )
        outcomes = []
        for recipient, item in zip(batch.recipients, items, strict=True):
            code = item.get("ErrorCode", -1)
            if code == 0:
                outcomes.append(
                    Outcome(recipient.email, ACCEPTED, message_id=str(item.get("MessageID")))
                )
            elif code in RECIPIENT_ERRORS:
                outcomes.append(
                    Outcome(
                        recipient.email,
                        REJECTED,
                        reason=f"postmark {code}: {short(str(item.get('Message')))}",
                    )
                )
            else:
                outcomes.append(
                    Outcome(
                        recipient.email,
                        FAILED,
                        reason=f"postmark {code}: {short(str(item.get('Message')))}",
                        retryable=False,
                    )
                )
        return outcomes


def create(settings: Settings, client: httpx.Client) -> Postmark:
    return Postmark(settings, client)
