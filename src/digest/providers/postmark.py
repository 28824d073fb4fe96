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
from digest.render.message import (
    JsonObjects,
    address_of,
    json_value,
    list_headers,
    recipient_values,
)

TEST_TOKEN = "POSTMARK_API_TEST"
# 406: the recipient is inactive (bounced, complained or suppressed at Postmark). Error
# 300 ("invalid email request") also covers a bad From or a malformed field, so it fails
# the message without suppressing anyone.
RECIPIENT_ERRORS = {406}


TRANSACTIONAL_STREAM = "outbound"  # every Postmark server's default transactional stream


class Postmark(HttpProvider):
    name = "postmark"
    max_batch = 500
    default_base_url = "https://api.postmarkapp.com"
    default_key_env = "POSTMARK_SERVER_TOKEN"

    def credentials(self, settings: Settings) -> str:
        return TEST_TOKEN if settings.provider.test_mode else super().credentials(settings)

    def request(self, batch: Batch) -> dict[str, Any]:
        rendered = batch.rendered
        bodies = self.bodies(rendered)
        shared: dict[str, object] = {
            "From": rendered.sender,
            "Subject": batch.subject,
            "Tag": rendered.issue_id,
            "Metadata": {"issue": rendered.issue_id},
            "MessageStream": (
                TRANSACTIONAL_STREAM if rendered.transactional else self.settings.message_stream
            ),
            "TrackOpens": self.settings.tracking,
            "TrackLinks": "HtmlOnly" if self.settings.tracking else "None",
        }
        if rendered.reply_to:
            shared["ReplyTo"] = rendered.reply_to
        objects = JsonObjects(shared)
        # the headers all messages share, as JSON once; List-Unsubscribe is each one's own
        common = [
            json_value({"Name": k, "Value": v})
            for k, v in list_headers(rendered, "").items()
            if k != "List-Unsubscribe"
        ]
        messages = []
        for recipient in batch.recipients:
            values = recipient_values(rendered, recipient)
            own = (
                []
                if rendered.transactional
                else [
                    b'{"Name": "List-Unsubscribe", "Value": '
                    + json_value(values["list_unsubscribe"])
                    + b"}"
                ]
            )
            html, text = bodies.for_recipient(values)
            messages.append(
                objects.one(
                    {"To": address_of(recipient)},
                    {
                        "Headers": [b"[" + b", ".join(own + common) + b"]"],
                        "HtmlBody": html,
                        "TextBody": text,
                    },
                )
            )
        headers = {"X-Postmark-Server-Token": self.key, "Accept": "application/json"}
        return self.json_messages(messages, "/email", "/email/batch", headers)

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
