"""Scheduler ticks: each due slot is claimed by exactly one caller."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from envsync.store import Store
from tests.store.processes import finish, start_together, start_worker

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SLOTS = [T0 + timedelta(hours=hour) for hour in range(12)]


def test_claim_tick_true_once(store: Store) -> None:
    assert store.claim_tick("@hourly", T0) is True
    assert store.claim_tick("@hourly", T0) is False


def test_claim_tick_per_schedule_name(store: Store) -> None:
    store.claim_tick("@hourly", T0)

    assert store.claim_tick("@daily", T0) is True


def test_claim_tick_same_instant_other_zone(store: Store) -> None:
    store.claim_tick("@hourly", T0)
    same_instant = T0.astimezone(datetime.now().astimezone().tzinfo)

    assert store.claim_tick("@hourly", same_instant) is False


def test_claim_tick_once_across_threads(store: Store) -> None:
    def claim_all(_: int) -> list[datetime]:
        return [slot for slot in SLOTS if store.claim_tick("@hourly", slot)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        claimed = [slot for found in pool.map(claim_all, range(6)) for slot in found]

    assert sorted(claimed) == SLOTS


def test_claim_tick_once_across_processes(database_url: str, store: Store) -> None:
    slots = [slot.isoformat() for slot in SLOTS]
    workers = [start_worker("claim", database_url, "@hourly", *slots) for _ in range(3)]

    start_together(workers)

    claimed = [slot for worker in workers for slot in json.loads(finish(worker))]
    assert sorted(claimed) == slots


def test_prune_ticks_frees_old_slots(store: Store) -> None:
    for slot in SLOTS:
        store.claim_tick("@hourly", slot)

    pruned = store.prune_ticks(before=SLOTS[6])

    assert pruned == 6
    assert store.claim_tick("@hourly", SLOTS[0]) is True
    assert store.claim_tick("@hourly", SLOTS[6]) is False


def test_last_tick_none_before_claims(store: Store) -> None:
    assert store.last_tick("@hourly") is None


def test_last_tick_latest_of_schedule(store: Store) -> None:
    for slot in reversed(SLOTS[:3]):
        store.claim_tick("@hourly", slot)
    store.claim_tick("@daily", SLOTS[5])

    assert store.last_tick("@hourly") == SLOTS[2]
