"""The send desk's test send: the issue, as subscribers will get it, to staff inboxes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from email_validator import EmailNotValidError, validate_email

from digest.build import build
from digest.config import Settings
from digest.errors import DigestError
from digest.providers import Batch, Outcome, create_provider, make_http_client, send_with_retries
from digest.render.message import Recipient
from digest.tokens import TEST_TOKEN

TEST_PREFIX = "[TEST] "


def normalise_address(address: str, what: str) -> str:
    """A syntactically valid address, normalised; no DNS look-ups."""
    try:
        return str(validate_email(address.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as err:
        raise DigestError(
            f"{what} {address.strip()!r} is not a valid email address ({err})"
        ) from None


def send_test(
    issue_path: Path,
    settings: Settings,
    *,
    to: list[str] | None = None,
    client: httpx.Client | None = None,
    prefix: str = TEST_PREFIX,
    staff_note: str | None = None,
) -> list[Outcome]:
    """Check, render once, and send to staff; one Outcome per address, in order.
    ``staff_note`` (inline Markdown) goes on top of the email, for staff only."""
    result = build(issue_path, settings, staff_note=staff_note, for_staff=True)
    errors = [f for f in result.findings if f.level == "error"]
    if errors:
        raise DigestError(
            f"{issue_path}: fails the pre-send check with {len(errors)} error(s), "
            f"first: {errors[0].message}; nothing sent (see digest check)"
        )
    what = "--to address" if to else "staff address"
    addresses = [normalise_address(a, what) for a in (to or list(settings.staff))]
    if not addresses:
        raise DigestError(
            "no staff addresses: list them under `staff:` in config.yaml or pass --to"
        )
    unique = list(dict.fromkeys(addresses))
    own_client = client is None
    http = client or make_http_client(settings)
    try:
        provider = create_provider(settings, http)
        try:
            outcomes: list[Outcome] = []
            run = f"test-{result.slug}-{time.time_ns()}"
            for start in range(0, len(unique), provider.batch_size):
                chunk = tuple(
                    Recipient(a, None, TEST_TOKEN)
                    for a in unique[start : start + provider.batch_size]
                )
                batch = Batch(result.rendered, chunk, prefix, key=f"{run}-{start}")
                outcomes.extend(
                    send_with_retries(
                        provider,
                        batch,
                        attempts=settings.provider.max_attempts,
                        base_delay=settings.provider.retry_delay,
                        max_delay=settings.provider.max_retry_delay,
                    )
                )
            return outcomes
        finally:
            provider.close()
    finally:
        if own_client:
            http.close()
