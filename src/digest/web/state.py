"""What the public app shares between requests: settings, keys and the store.

Store calls run in worker threads, never on the event loop. Two connections are kept:
one answers requests (it only writes to the small inbox, which no long write holds),
the other applies the inbox to the subscriber list in the background, waiting for the
main database when an import or a delivery holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from digest.config import Settings
from digest.errors import StoreError
from digest.events import Event
from digest.store.sqlite import SQLiteStore

log = logging.getLogger("digest.web")
APPLY_EVERY = 1.0  # seconds between attempts to apply the inbox while requests wait
APPLY_BUSY_SECONDS = 0.5  # how long one attempt waits for the main database


class WebState:
    def __init__(self, settings: Settings, keys: tuple[bytes, ...]) -> None:
        self.settings = settings
        self.keys = keys
        database = Path(settings.delivery.database)
        self.requests = SQLiteStore(database)
        self.applier = SQLiteStore(database, busy_seconds=APPLY_BUSY_SECONDS)
        self.list_id = self.requests.list_identity()
        self.wake = asyncio.Event()

    async def request_unsubscribe(self, uid: str, channel: str) -> None:
        await run_in_threadpool(self.requests.request_unsubscribe, uid, channel)
        self.wake.set()

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

    async def apply_inbox_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), APPLY_EVERY)
            self.wake.clear()
            try:
                await run_in_threadpool(self._apply)
            except StoreError as err:  # locked by a long write: the next round tries again
                log.info("unsubscribes wait in the inbox: %s", err)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(self.apply_inbox_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(StoreError):
                await run_in_threadpool(self._apply)
            self.requests.close()
            self.applier.close()
