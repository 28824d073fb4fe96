"""Sign-in throttling: after a few failures for one account, or from one client address,
each further try must wait, twice as long each time (up to a quarter of an hour). Kept
in memory, per process; a success clears the account's count."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

LONGEST_WAIT = 900.0
REMEMBERED = 100_000  # keys kept before the oldest are forgotten


class SignInGuard:
    def __init__(self, free: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.free = free
        self.clock = clock
        self.failures: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()

    def wait(self, *keys: str) -> float:
        """Seconds before any of ``keys`` may try again (0: now)."""
        now = self.clock()
        longest = 0.0
        for key in keys:
            count, last = self.failures.get(key, (0, 0.0))
            if count >= self.free:
                delay = min(LONGEST_WAIT, 2.0 ** (count - self.free))
                longest = max(longest, last + delay - now)
        return max(0.0, longest)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            count, _ = self.failures.pop(key, (0, 0.0))
            self.failures[key] = (count + 1, now)
        while len(self.failures) > REMEMBERED:
            self.failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self.failures.pop(key, None)
