"""What the public app shares between requests: settings, keys and the store.

Store calls run in worker threads, never on the event loop. Two connections are kept:
one answers requests (it only writes to the small inbox, which no long write holds),
the other works in the background: it applies the inbox to the subscriber list, waiting
for the main database when an import or a delivery holds it, then sends the signup
confirmations that are due through the configured provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from digest.config import Settings
from digest.errors import DigestError, StoreError
from digest.events import Event
from digest.signup import send_confirmations
from digest.store import Published, open_database
from digest.store.sqlite import SQLiteStore, now_utc

if TYPE_CHECKING:
    import httpx

    from digest.providers import Provider

log = logging.getLogger("digest.web")
APPLY_EVERY = 1.0  # seconds between attempts to apply the inbox while requests wait
APPLY_BUSY_SECONDS = 0.5  # how long one attempt waits for the main database
REQUEST_BUSY_SECONDS = 5.0  # how long a reader's request waits for the database (then 503)


class WebState:
    def __init__(self, settings: Settings, keys: tuple[bytes, ...]) -> None:
        self.settings = settings
        self.keys = keys
        database, password = settings.delivery.database, settings.delivery.password_env
        self.requests: SQLiteStore = open_database(  # type: ignore[assignment]
            database, password_env=password, busy_seconds=REQUEST_BUSY_SECONDS
        )
        self.applier: SQLiteStore = open_database(  # type: ignore[assignment]
            database, password_env=password, busy_seconds=APPLY_BUSY_SECONDS
        )
        self.list_id = self.requests.list_identity()
        self.wake = asyncio.Event()
        self.stopping = False  # set at shutdown: the background loop ends at its next turn
        self.provider: Provider | None = None
        self.provider_error = ""
        self.http: httpx.Client | None = None

    async def request_signup(
        self, email: str, name: str | None, newsletters: tuple[str, ...]
    ) -> None:
        await run_in_threadpool(self.requests.request_signup, email, name, newsletters)
        self.wake.set()

    async def request_confirm(self, uid: str) -> None:
        await run_in_threadpool(self.requests.request_confirm, uid)
        self.wake.set()

    async def published(self) -> list[Published]:
        scheduled_too = self.settings.web.publish == "scheduled"
        return await run_in_threadpool(
            functools.partial(self.requests.published_issues, scheduled_too=scheduled_too)
        )

    async def request_unsubscribe(
        self, uid: str, channel: str, newsletter: str | None = None
    ) -> None:
        await run_in_threadpool(self.requests.request_unsubscribe, uid, channel, newsletter)
        self.wake.set()

    async def request_choice(self, uid: str, choice: dict[str, object]) -> None:
        await run_in_threadpool(self.requests.request_choice, uid, choice)
        self.wake.set()

    async def subscription(self, uid: str) -> tuple[Any, dict[str, str]] | None:
        """The subscriber ``uid`` and their status by newsletter, or None."""
        return await run_in_threadpool(self.requests.subscriptions_of, uid)

    def webhook_secret(self, provider: str) -> str | None:
        """The provider's webhook secret from its environment variable; None when unset."""
        return os.environ.get(self.settings.webhooks.secret_env(provider)) or None

    async def receive_events(self, events: list[Event], replay_key: str | None) -> bool:
        fresh = await run_in_threadpool(self.requests.receive_events, events, replay_key)
        self.wake.set()
        return fresh

    def _apply(self) -> int:
        hooks = self.settings.webhooks
        return self.applier.apply_inbox(hooks.soft_bounce_limit, hooks.soft_bounce_days)

    def _confirm(self) -> None:
        """Send the confirmations that are due; a provider that cannot be set up (a
        missing API key) is reported once and tried again next round."""
        if not self.applier.confirmations_due():
            return
        if self.provider is None:
            from digest.providers import create_provider, make_http_client

            self.http = self.http or make_http_client(self.settings)
            try:
                self.provider = create_provider(self.settings, self.http)
            except DigestError as err:
                if not self.provider_error:
                    log.error("signup confirmations wait: %s", err)
                self.provider_error = str(err)
                return
        send_confirmations(
            self.applier, self.settings, self.keys[0], self.list_id, self.provider, now_utc()
        )

    def _background(self) -> None:
        self._apply()
        self._confirm()

    async def apply_inbox_forever(self) -> None:
        # the flag, not only cancellation, ends the loop: Python 3.11's wait_for can
        # swallow a cancellation that arrives as its timeout fires, and a shutdown
        # waiting for this task would then wait for ever
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), APPLY_EVERY)
            self.wake.clear()
            try:
                await run_in_threadpool(self._background)
            except StoreError as err:  # locked by a long write: the next round tries again
                log.info("unsubscribes wait in the inbox: %s", err)
            except Exception:  # a broken template of one's own, say: say so, keep going
                log.exception("background work failed; trying again in a second")

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(self.apply_inbox_forever())
        try:
            yield
        finally:
            self.stopping = True
            self.wake.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(StoreError):
                await run_in_threadpool(self._apply)
            self.requests.close()
            self.applier.close()
            if self.provider is not None:
                self.provider.close()
            if self.http is not None:
                self.http.close()
