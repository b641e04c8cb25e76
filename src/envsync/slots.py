"""A fixed number of request slots, handed to waiting tasks by priority.

A provider's requests share its `ENVSYNC_CONCURRENCY` slots. With a plain semaphore, the
slots go first come, first served, so a target's second page waits behind the first page of
every other target. All targets are then read a page at a time, and few are finished when a
rate-limit window runs out. Priority by target, in the order the targets started, lets a
started target go on first. Targets then finish one after another, and the writes of the
finished ones can use the current window.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class PrioritySlots:
    """At most `size` holders at a time. A freed slot goes to the waiter with the lowest
    priority number, and among equals to the one that came first."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"PrioritySlots needs at least one slot, not {size}")
        self._free = size
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._hand_over_scheduled = False

    @asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return

        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._arrivals), future))
        try:
            await future
        except asyncio.CancelledError:
            # The slot may have been handed over just before the cancellation arrived:
            # give it back, or it would be lost. A cancelled future stays in the heap, and
            # `_hand_over` skips it.
            if future.done() and not future.cancelled():
                self._release()
            raise

    def _release(self) -> None:
        # The hand-over waits for the next turn of the event loop. By then the task that
        # let go, such as a target reading its next page, has queued its next request
        # and competes for the slot with its own priority.
        self._free += 1
        if self._waiters and not self._hand_over_scheduled:
            self._hand_over_scheduled = True
            asyncio.get_running_loop().call_soon(self._hand_over)

    def _hand_over(self) -> None:
        self._hand_over_scheduled = False
        while self._free > 0 and self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                self._free -= 1
                future.set_result(None)
