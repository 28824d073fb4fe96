"""Outbox: writes each message as an .eml file under provider.outbox_dir.

The default provider: a test send or a delivery with no account and no network. Each
message is exactly what an SMTP relay would receive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
from pathlib import Path

import httpx

from digest.config import Settings
from digest.providers.base import ACCEPTED, FAILED, Batch, Outcome, Provider
from digest.render.message import personalise, to_email


def file_name(email: str, tag: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9@._+-]", "_", email)[:80]
    digest = hashlib.sha256(f"{tag}\0{email}".encode()).hexdigest()[:8]
    return f"{safe}.{digest}.eml"


class Outbox(Provider):
    name = "outbox"
    max_batch = 1000
    idempotent = True  # a resent message rewrites the same file: nobody gets two

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.folder = Path(self.settings.outbox_dir)

    def send(self, batch: Batch) -> list[Outcome]:
        folder = self.folder / batch.rendered.slug
        outcomes = []
        now = dt.datetime.now(dt.UTC)
        for recipient in batch.recipients:
            message = personalise(
                batch.rendered,
                recipient,
                subject_prefix=batch.subject_prefix,
                key=batch.message_key,
            )
            path = folder / file_name(recipient.email, batch.rendered.slug + batch.subject_prefix)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
                with os.fdopen(fd, "wb") as handle:
                    handle.write(bytes(to_email(message, date=now)))
                os.replace(tmp, path)
            except OSError as err:
                outcomes.append(
                    Outcome(
                        recipient.email, FAILED, reason=f"outbox: {err.strerror}", retryable=False
                    )
                )
                continue
            outcomes.append(Outcome(recipient.email, ACCEPTED, message_id=str(path)))
        return outcomes


def create(settings: Settings, client: httpx.Client) -> Outbox:
    return Outbox(settings)
