"""Pacing a delivery: the sending rate, who holds a lease, and the allocator setting a
long delivery needs."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def pin_allocator_threshold(size: int = 128 * 1024) -> bool:
    """Fix glibc's mmap threshold for a long delivery.

    glibc raises the threshold each time a large block is freed, after which large
    request and response buffers come from the heap and fragment it: a million-recipient
    Postmark delivery then grows to ~500 MB of RSS. A fixed threshold keeps large blocks
    in their own mappings, returned on free (measured flat at ~67 MB; BENCHMARKS.md).
    A no-op where the C library is not glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, size))
    except (OSError, AttributeError):
        return False


def process_owner() -> str:
    """Who holds a lease: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RateLimiter:
    """At most ``rate`` messages per second over time (0 = no limit)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.next_free = clock()
        self.lock = threading.Lock()

    def wait(self, count: int) -> None:
        if self.rate <= 0:
            return
        with self.lock:
            now = self.clock()
            start = max(now, self.next_free)
            self.next_free = start + count / self.rate
        if start > now:
            time.sleep(start - now)
