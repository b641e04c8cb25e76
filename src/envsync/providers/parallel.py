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

from envsync.model import Change
from envsync.providers.base import WriteProgress

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


async def report_together(
    progress: WriteProgress, confirmed: Sequence[tuple[Change, str | None]]
) -> None:
    """Report every change that one response confirmed at once.

    The engine saves each confirmed write to the run history before `progress` returns,
    and it saves the writes reported at the same time in one transaction.
    """
    await asyncio.gather(*(progress(change, updated_at) for change, updated_at in confirmed))
