"""Keeping a lease alive while an issue is delivered.

A process holds an issue by a lease in the store. The lease is renewed from a thread of
its own every third of its length, whatever the batches are doing: a batch that takes
longer than the lease (a slow relay, a provider asking to wait) no longer lets another
`digest deliver` take over an issue whose first process is still sending."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable
from types import TracebackType

from digest.errors import StoreError
from digest.store import Store


class Heartbeat:
    """Renews ``owner``'s lease on ``slug`` until the ``with`` block ends."""

    def __init__(
        self,
        store: Store,
        slug: str,
        owner: str,
        lease: dt.timedelta,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.store, self.slug, self.owner = store, slug, owner
        self.lease, self.clock = lease, clock
        self.every = max(0.05, lease.total_seconds() / 3)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="digest-lease", daemon=True)

    def _beat(self) -> None:
        while not self.done.wait(self.every):
            # a busy or unreachable database: the next beat tries again
            with contextlib.suppress(StoreError):
                self.store.renew_lease(self.slug, self.owner, self.clock() + self.lease)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.done.set()
        self.thread.join(timeout=self.every + 30)
