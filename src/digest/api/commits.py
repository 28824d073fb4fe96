"""Calls that add subscribers share commits: while one transaction is being written,
the calls that arrive wait together and go in the next one. Every call is answered only
after the transaction holding it is on disk (the store writes with synchronous=FULL),
so sharing a commit costs no durability; it takes the one fsync a commit needs off
each call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")
MOST = 500  # calls in one transaction at most


class SharedCommits(Generic[T]):
    def __init__(self, write: Callable[[list[T]], None]) -> None:
        self.write = write
        self.waiting: list[tuple[T, asyncio.Future[None]]] = []
        self.writing = False

    async def add(self, item: T) -> None:
        """Returns once ``item`` is written; raises what writing it raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, done))
        if not self.writing:
            self.writing = True
            asyncio.get_running_loop().create_task(self._drain())
        await done

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:MOST], self.waiting[MOST:]
                try:
                    await run_in_threadpool(self.write, [item for item, _ in batch])
                except Exception as err:  # each call of the batch answers with it
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(err)
                    continue
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self.writing = False
