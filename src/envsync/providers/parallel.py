"""Running a target's independent writes at once.

The writers group their writes so that writes to one variable stay in order (Netlify
documents nothing about two calls changing one variable at the same time), and different
variables are written concurrently. The HTTP client's semaphore (ENVSYNC_CONCURRENCY)
bounds how many requests are in flight, and its pacer keeps them within the rate limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")


async def run_grouped(
    groups: Sequence[Sequence[Item]], run: Callable[[Item], Awaitable[None]]
) -> None:
    """Run every group at once, each group's items in order.

    After the first failure no further item starts. The failure is raised once every
    item already running has finished, so that the caller has seen every write that
    succeeded before it handles the error.
    """
    failures: list[Exception] = []

    async def run_group(items: Sequence[Item]) -> None:
        for item in items:
            if failures:
                return
            try:
                await run(item)
            except Exception as error:
                failures.append(error)
                return

    await asyncio.gather(*(run_group(items) for items in groups))
    if failures:
        raise failures[0]
