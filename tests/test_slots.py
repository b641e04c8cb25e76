"""Request slots handed out by priority: a started target goes on before new ones start."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from envsync.http import ApiClient, RetryPolicy
from envsync.model import SecretValue
from envsync.slots import PrioritySlots


async def _hold(slots: PrioritySlots, priority: int, name: str, order: list[str]) -> None:
    async with slots.slot(priority):
        order.append(name)
        await asyncio.sleep(0)


def test_slots_reject_zero_size() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        PrioritySlots(0)


def test_slots_limit_holders() -> None:
    holding = 0
    max_holding = 0

    async def work(slots: PrioritySlots) -> None:
        nonlocal holding, max_holding
        async with slots.slot(0):
            holding += 1
            max_holding = max(max_holding, holding)
            await asyncio.sleep(0.001)
            holding -= 1

    async def main() -> None:
        slots = PrioritySlots(3)
        await asyncio.gather(*(work(slots) for _ in range(20)))

    asyncio.run(main())

    assert max_holding == 3


def test_slots_admit_lowest_priority_first() -> None:
    order: list[str] = []

    async def main() -> None:
        slots = PrioritySlots(1)
        async with slots.slot(0):
            # Queued while the only slot is held: admitted by priority, then arrival.
            waiters = [
                asyncio.create_task(_hold(slots, priority, name, order))
                for priority, name in [(5, "late"), (1, "first"), (5, "later"), (2, "second")]
            ]
            await asyncio.sleep(0)
        await asyncio.gather(*waiters)

    asyncio.run(main())

    assert order == ["first", "second", "late", "later"]


def test_cancelled_waiter_loses_no_slot() -> None:
    order: list[str] = []

    async def main() -> None:
        slots = PrioritySlots(1)
        async with slots.slot(0):
            cancelled = asyncio.create_task(_hold(slots, 0, "cancelled", order))
            waiting = asyncio.create_task(_hold(slots, 1, "waiting", order))
            await asyncio.sleep(0)
            cancelled.cancel()
            await asyncio.sleep(0)
        await asyncio.wait_for(waiting, timeout=5)
        # The slot is free again once the last holder is done.
        await asyncio.wait_for(_hold(slots, 0, "after", order), timeout=5)

    asyncio.run(main())

    assert order == ["waiting", "after"]


def test_slot_handed_to_a_cancelled_task_passes_on() -> None:
    order: list[str] = []

    async def main() -> None:
        slots = PrioritySlots(1)
        holder = slots.slot(0)
        await holder.__aenter__()
        handed = asyncio.create_task(_hold(slots, 0, "handed", order))
        third = asyncio.create_task(_hold(slots, 1, "third", order))
        await asyncio.sleep(0)
        # The release hands the slot to `handed`, which is cancelled before it runs.
        await holder.__aexit__(None, None, None)
        handed.cancel()
        await asyncio.wait_for(third, timeout=5)

    asyncio.run(main())

    assert order == ["third"]


def test_started_target_goes_before_new_targets() -> None:
    # Six targets each read three pages one after another, through two slots. Every
    # target's first request comes in at once, as when an apply starts.
    sent: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        await asyncio.sleep(0.005)
        return httpx.Response(200, json={})

    async def read_pages(client: ApiClient, target: str) -> None:
        for page in range(3):
            await client.get(f"/{target}/{page}", operation="list", target=target)

    async def main() -> None:
        client = ApiClient(
            provider="render",
            base_url="http://127.0.0.1:9/v1",
            token=SecretValue("token"),
            policy=RetryPolicy(),
            concurrency=2,
            transport=httpx.MockTransport(answer),
        )
        try:
            await asyncio.gather(*(read_pages(client, f"t{index}") for index in range(6)))
        finally:
            await client.aclose()

    asyncio.run(main())

    assert sent.index("/v1/t0/2") < sent.index("/v1/t2/0")
    assert sent.index("/v1/t1/2") < sent.index("/v1/t2/0")
    assert sent[-1] == "/v1/t5/2"
