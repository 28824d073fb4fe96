"""What every provider shares: the batch it is given, the outcome per recipient, the
HTTP flow with its error handling, and bounded retries.

A provider module only maps data: it builds one request for a batch and reads the
provider's answer into one Outcome per recipient. Status codes every API shares
(401/403, 429, 5xx, timeouts, dropped connections) are handled here, once.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import httpx

from digest import __version__
from digest.config import Settings
from digest.errors import ConfigError, ProviderAuthError
from digest.render import RenderedIssue
from digest.render.message import JsonBodies, Recipient, coalesce, json_array

ACCEPTED, REJECTED, FAILED = "accepted", "rejected", "failed"
USER_AGENT = f"digest/{__version__} (+https://github.com/digest-newsletter/digest)"


@dataclass(slots=True)  # made per recipient: a frozen one costs three times as much
class Outcome:
    """What became of one recipient in one attempt."""

    email: str
    status: str  # accepted | rejected (for good) | failed (this attempt)
    message_id: str | None = None
    reason: str | None = None
    retryable: bool = False  # for failed: worth trying again
    retry_after: float | None = None  # seconds the provider asked us to wait
    ambiguous: bool = False  # for failed: the request may have been acted on (answer lost)
    throttled: bool = False  # for failed: the provider asked us to slow down (429)
    # for failed: the refusal is the issue's, not this recipient's (a relay refusing the
    # sender or the message): the issue stops, and nobody is suppressed
    halt: bool = False


@dataclass(frozen=True)
class Batch:
    """Recipients sent in one provider request, all for the same rendered issue."""

    rendered: RenderedIssue
    recipients: tuple[Recipient, ...]
    subject_prefix: str = ""
    key: str = ""  # idempotency key: the same batch always carries the same key
    # called with each recipient's outcome as soon as it is known, by providers that
    # send one message at a time (reports_each), so it can be recorded at once
    on_outcome: Callable[[Outcome], None] | None = field(default=None, compare=False)
    # what, with the address, makes each message's Message-ID (default: ``key``): a
    # delivery gives every try of one issue to one person the same Message-ID, so a
    # resent copy is recognised as the same message by mailboxes that keep one
    message_seed: str = ""

    @property
    def message_key(self) -> str:
        return self.message_seed or self.key

    @property
    def subject(self) -> str:
        return self.subject_prefix + self.rendered.subject


class Provider(ABC):
    """Sends batches; one module per provider implements this."""

    name: ClassVar[str]
    max_batch: ClassVar[int]
    idempotent: ClassVar[bool] = False  # a resent batch with the same key is sent once
    reports_each: ClassVar[bool] = False  # calls Batch.on_outcome after each message

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.provider
        wanted = self.settings.batch_size or self.max_batch
        self.batch_size = min(wanted, self.max_batch)

    @abstractmethod
    def send(self, batch: Batch) -> list[Outcome]:
        """One Outcome per recipient of ``batch``, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (the shared httpx client is closed by its owner)."""


def all_failed(
    batch: Batch,
    reason: str,
    *,
    retryable: bool,
    retry_after: float | None = None,
    ambiguous: bool = False,
    throttled: bool = False,
) -> list[Outcome]:
    return [
        Outcome(
            r.email,
            FAILED,
            reason=reason,
            retryable=retryable,
            retry_after=retry_after,
            ambiguous=ambiguous,
            throttled=throttled,
        )
        for r in batch.recipients
    ]


def api_key(settings: Settings, default_env: str) -> str:
    """The API key from the environment variable config.yaml names (never from a file)."""
    env = settings.provider.api_key_env or default_env
    value = os.environ.get(env, "").strip()
    if not value:
        raise ConfigError(
            f"provider {settings.provider.name}: environment variable {env} is not set or empty "
            "(set it, or name another with provider.api_key_env)"
        )
    return value


def make_http_client(settings: Settings) -> httpx.Client:
    """The one client all HTTP providers share: bounded time, connection reuse."""
    timeout = settings.provider.timeout
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        follow_redirects=False,
    )


def retry_delay(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait, from Retry-After (seconds or a date) or rate-limit reset headers."""
    headers = response.headers
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - now())
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        value = headers.get(name)
        if value:
            try:
                number = float(value)
            except ValueError:
                continue
            # epoch seconds (SendGrid) or seconds from now (IETF draft, Resend)
            return max(0.0, number - now()) if number > 1_000_000_000 else number
    return None


def short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HttpProvider(Provider):
    """The send flow for HTTP APIs; subclasses build the request and read the answer."""

    default_base_url: ClassVar[str]
    default_key_env: ClassVar[str]

    def __init__(self, settings: Settings, client: httpx.Client) -> None:
        super().__init__(settings)
        self.client = client
        self.base_url = self.settings.base_url or self.default_base_url
        self.key_env = self.settings.api_key_env or self.default_key_env
        self.key = self.credentials(settings)
        self._bodies: JsonBodies | None = None

    def credentials(self, settings: Settings) -> str:
        return api_key(settings, self.default_key_env)

    def json_messages(
        self,
        messages: list[list[bytes]],
        single_path: str,
        batch_path: str,
        headers: dict[str, str],
    ) -> dict[str, Any]:
        """A POST of one JSON message, or of a JSON array of them, streamed in pieces."""
        single = len(messages) == 1
        pieces = messages[0] if single else json_array(messages)
        return {
            "method": "POST",
            "url": self.base_url + (single_path if single else batch_path),
            "content": coalesce(pieces),
            "headers": {
                **headers,
                "Content-Type": "application/json",
                "Content-Length": str(sum(len(p) for p in pieces)),
            },
        }

    def bodies(self, rendered: RenderedIssue) -> JsonBodies:
        """The issue's bodies JSON-encoded once, reused for every batch of the issue."""
        cached = self._bodies
        if cached is None or cached.rendered is not rendered:
            cached = self._bodies = JsonBodies(rendered)
        return cached

    @abstractmethod
    def request(self, batch: Batch) -> dict[str, Any]:
        """Keyword arguments for httpx.Client.request: method, url, json/data, headers."""

    @abstractmethod
    def parse(self, response: httpx.Response, batch: Batch) -> list[Outcome]:
        """One Outcome per recipient from a non-401/403/429/5xx answer."""

    def rate_limited(self, response: httpx.Response, batch: Batch) -> list[Outcome]:
        """HTTP 429: wait as asked and try again (a provider may know better)."""
        return all_failed(
            batch,
            f"{self.name}: rate limited (HTTP 429)",
            retryable=True,
            retry_after=retry_delay(response),
            throttled=True,
        )

    def send(self, batch: Batch) -> list[Outcome]:
        try:
            response = self.client.request(**self.request(batch))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as err:
            # the request never reached the provider: safe to send again
            reason = f"{self.name}: cannot connect ({type(err).__name__})"
            return all_failed(batch, reason, retryable=True)
        except httpx.TimeoutException:
            reason = f"{self.name}: no answer in time"
            return all_failed(batch, reason, retryable=True, ambiguous=True)
        except httpx.TransportError as err:
            reason = f"{self.name}: connection lost before the answer ({type(err).__name__})"
            return all_failed(batch, reason, retryable=True, ambiguous=True)
        except httpx.HTTPError as err:  # e.g. a body that does not decompress
            reason = f"{self.name}: the answer could not be read ({type(err).__name__}: {err})"
            return all_failed(batch, short(reason), retryable=True, ambiguous=True)
        status = response.status_code
        if status in (401, 403):
            raise ProviderAuthError(
                f"{self.name} refused the credentials (HTTP {status}): check the API key in "
                f"environment variable {self.key_env}"
            )
        if status == 429:
            return self.rate_limited(response, batch)
        if status >= 500:
            return all_failed(
                batch,
                f"{self.name}: server error (HTTP {status})",
                retryable=True,
                retry_after=retry_delay(response),
            )
        return self.parse(response, batch)


def send_with_retries(
    provider: Provider,
    batch: Batch,
    *,
    attempts: int,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome]:
    """Send ``batch``, resending only the recipients whose failure is retryable, at most
    ``attempts`` times, waiting with exponential back-off and jitter or as asked."""
    final: dict[str, Outcome] = {}
    pending = batch
    for attempt in range(1, attempts + 1):
        outcomes = provider.send(pending)
        retry = [o for o in outcomes if o.status == FAILED and o.retryable]
        for outcome in outcomes:
            final[outcome.email] = outcome
        if not retry or attempt == attempts:
            break
        asked = max((o.retry_after or 0.0) for o in retry)
        backoff = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        sleep(min(max_delay, max(asked, backoff)))
        again = {o.email for o in retry}
        pending = replace(
            pending, recipients=tuple(r for r in pending.recipients if r.email in again)
        )
    return [final[r.email] for r in batch.recipients]
