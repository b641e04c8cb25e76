"""The scheduler, driven by a virtual clock over a real SQLite store.

Nothing here waits in real time for a slot: `VirtualTime` gives the scheduler its clock and
its sleep, and moves time forward only when every task under test is asleep on it (or
done). Store calls run in threads, so the driver polls until they are back.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from envsync.config import Settings, load_settings
from envsync.schedule import parse_schedule
from envsync.scheduler import Scheduler, schedule_name
from envsync.store import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

# How long the driver polls for tasks that wait on a thread (a store call) before it gives
# up. The limit guards against a hang and is not a timing assertion.
SETTLE_POLLS = 5000
SETTLE_POLL_S = 0.002


@dataclass(order=True)
class _Timer:
    due: datetime
    order: int
    future: asyncio.Future[None] = field(compare=False)
    task: asyncio.Task[Any] | None = field(compare=False)


class VirtualTime:
    """A clock and a sleep that move only when the test advances them."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._timers: list[_Timer] = []
        self._order = itertools.count()

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        due = self.now + timedelta(seconds=seconds)
        heapq.heappush(self._timers, _Timer(due, next(self._order), future, asyncio.current_task()))
        await future

    def jump(self, delta: timedelta) -> None:
        """Move the clock without waking anyone, as when a machine is suspended."""
        self.now += delta

    async def advance(
        self, delta: timedelta, *, ignore: tuple[asyncio.Task[Any], ...] = ()
    ) -> None:
        await self.advance_to(self.now + delta, ignore=ignore)

    async def advance_to(
        self, moment: datetime, *, ignore: tuple[asyncio.Task[Any], ...] = ()
    ) -> None:
        """Wake every sleeper due by `moment`, in order, letting the tasks settle each time."""
        while True:
            await self.settle(ignore)
            self._timers = [timer for timer in self._timers if not timer.future.done()]
            heapq.heapify(self._timers)
            if not self._timers or self._timers[0].due > moment:
                break
            timer = heapq.heappop(self._timers)
            self.now = max(self.now, timer.due)
            timer.future.set_result(None)
        self.now = max(self.now, moment)

    async def settle(self, ignore: tuple[asyncio.Task[Any], ...] = ()) -> None:
        """Return once every other task is asleep on this clock or done."""
        for _ in range(SETTLE_POLLS):
            await asyncio.sleep(0)
            if self._idle(ignore):
                return
            await asyncio.sleep(SETTLE_POLL_S)
        raise AssertionError("the tasks under test did not settle on the virtual clock")

    def _idle(self, ignore: tuple[asyncio.Task[Any], ...]) -> bool:
        asleep = {timer.task for timer in self._timers if not timer.future.done()}
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        return all(task in asleep or task in ignore for task in others)


@dataclass
class RecordedRun:
    slot: datetime
    started: datetime
    ended: datetime | None = None


class FakeSync:
    """A `run_due` that takes `duration` of virtual time and records what it ran."""

    def __init__(self, time: VirtualTime, duration: timedelta = timedelta(0)) -> None:
        self.time = time
        self.duration = duration
        self.runs: list[RecordedRun] = []
        self.failures: set[datetime] = set()
        self.cancelled: list[datetime] = []

    async def __call__(self, slot: datetime) -> None:
        run = RecordedRun(slot, self.time.now)
        self.runs.append(run)
        try:
            if self.duration:
                await self.time.sleep(self.duration.total_seconds())
        except asyncio.CancelledError:
            self.cancelled.append(slot)
            raise
        run.ended = self.time.now
        if slot in self.failures:
            raise RuntimeError("the provider was unreachable")

    @property
    def slots(self) -> list[datetime]:
        return [run.slot for run in self.runs]


def make_settings(tmp_path: Path, **environ: str) -> Settings:
    values = {"ENVSYNC_SCHEDULE": "@every 60s", "ENVSYNC_MODE": "enforce", **environ}
    return load_settings(values, cwd=tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        yield opened


def run_async(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def minutes_after(start: datetime, *offsets: int) -> list[datetime]:
    return [start + offset * MINUTE for offset in offsets]


def assert_no_overlap(runs: list[RecordedRun]) -> None:
    ordered = sorted(runs, key=lambda run: run.started)
    for earlier, later in itertools.pairwise(ordered):
        assert earlier.ended is not None
        assert earlier.ended <= later.started, f"{earlier} overlaps {later}"


async def shut_down(time: VirtualTime, *schedulers: Scheduler) -> None:
    """Stop the schedulers, advancing virtual time until their running slots finish."""
    stopping = [asyncio.create_task(scheduler.stop()) for scheduler in schedulers]
    while not all(task.done() for task in stopping):
        await time.advance(MINUTE, ignore=tuple(stopping))
    for task in stopping:
        await task


# Alignment.


def test_runs_every_slot_at_its_time(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time)
        scheduler = Scheduler(
            make_settings(tmp_path), store, sync, clock=time.clock, sleep=time.sleep
        )

        await scheduler.start()
        await time.advance_to(T0 + 5 * MINUTE)
        await shut_down(time, scheduler)

        assert sync.slots == minutes_after(T0, 1, 2, 3, 4, 5)
        assert [run.started for run in sync.runs] == sync.slots

    run_async(scenario)


def test_slow_runs_cause_no_drift(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time, duration=timedelta(seconds=55))
        scheduler = Scheduler(
            make_settings(tmp_path), store, sync, clock=time.clock, sleep=time.sleep
        )

        await scheduler.start()
        await time.advance_to(T0 + 10 * MINUTE)
        await shut_down(time, scheduler)

        assert sync.slots == minutes_after(T0, *range(1, 11))
        assert [run.started for run in sync.runs] == sync.slots

    run_async(scenario)


def test_cron_slots_follow_the_time_zone(tmp_path: Path, store: Store) -> None:
    # 02:30 does not exist in Berlin on 31 March 2024 (02:00 CET -> 03:00 CEST at 01:00 UTC),
    # so that day's run happens at the jump.
    async def scenario() -> None:
        start = datetime(2024, 3, 30, 12, tzinfo=UTC)
        time = VirtualTime(start)
        sync = FakeSync(time)
        settings = make_settings(
            tmp_path, ENVSYNC_SCHEDULE="30 2 * * *", ENVSYNC_TIMEZONE="Europe/Berlin"
        )
        scheduler = Scheduler(settings, store, sync, clock=time.clock, sleep=time.sleep)

        await scheduler.start()
        await time.advance_to(start + timedelta(days=2))
        await shut_down(time, scheduler)

        assert sync.slots == [
            datetime(2024, 3, 31, 1, 0, tzinfo=UTC),
            datetime(2024, 4, 1, 0, 30, tzinfo=UTC),
        ]
        assert store.last_tick("sync 30 2 * * * Europe/Berlin") == sync.slots[-1]

    run_async(scenario)


# No overlap.


def test_slot_due_during_a_run_is_skipped(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time, duration=timedelta(seconds=150))
        scheduler = Scheduler(
            make_settings(tmp_path), store, sync, clock=time.clock, sleep=time.sleep
        )

        await scheduler.start()
        await time.advance_to(T0 + 7 * MINUTE)
        await shut_down(time, scheduler)

        assert sync.slots == minutes_after(T0, 1, 4, 7)
        assert scheduler.state()["skipped_slots"] == 4
        assert_no_overlap(sync.runs)

    caplog.set_level(logging.WARNING, logger="envsync.scheduler")
    run_async(scenario)

    skipped = [
        record.getMessage() for record in caplog.records if "is skipped" in record.getMessage()
    ]
    assert len(skipped) == 4
    assert "2024-05-01T12:02:00+00:00" in skipped[0]


def test_skipped_slot_is_not_queued(tmp_path: Path, store: Store) -> None:
    # A run that lasts five slots is followed by the next slot on time, not by five runs.
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time, duration=timedelta(seconds=290))
        scheduler = Scheduler(
            make_settings(tmp_path), store, sync, clock=time.clock, sleep=time.sleep
        )

        await scheduler.start()
        await time.advance_to(T0 + 6 * MINUTE + timedelta(seconds=30))
        await shut_down(time, scheduler)

        assert sync.slots == minutes_after(T0, 1, 6)

    run_async(scenario)


# Catch-up after downtime.


def test_missed_slots_run_once_at_start(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        settings = make_settings(tmp_path, ENVSYNC_SCHEDULE="@hourly")
        name = schedule_name(parse_schedule("@hourly"), "UTC")
        store.claim_tick(name, T0 - timedelta(hours=9))
        time = VirtualTime(T0 + timedelta(minutes=20))
        sync = FakeSync(time)
        scheduler = Scheduler(settings, store, sync, clock=time.clock, sleep=time.sleep)

        await scheduler.start()
        await time.advance_to(T0 + timedelta(minutes=59))
        assert sync.slots == [T0]
        assert sync.runs[0].started == T0 + timedelta(minutes=20)

        await time.advance_to(T0 + timedelta(hours=1))
        await shut_down(time, scheduler)
        assert sync.slots == [T0, T0 + timedelta(hours=1)]

    run_async(scenario)


def test_no_catch_up_when_latest_slot_ran(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        settings = make_settings(tmp_path, ENVSYNC_SCHEDULE="@hourly")
        store.claim_tick(schedule_name(parse_schedule("@hourly"), "UTC"), T0)
        time = VirtualTime(T0 + timedelta(minutes=20))
        sync = FakeSync(time)
        scheduler = Scheduler(settings, store, sync, clock=time.clock, sleep=time.sleep)

        await scheduler.start()
        await time.advance_to(T0 + timedelta(minutes=59))
        await shut_down(time, scheduler)

        assert sync.slots == []

    run_async(scenario)


def test_no_catch_up_on_first_start(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        settings = make_settings(tmp_path, ENVSYNC_SCHEDULE="@hourly")
        time = VirtualTime(T0 + timedelta(minutes=20))
        sync = FakeSync(time)
        scheduler = Scheduler(settings, store, sync, clock=time.clock, sleep=time.sleep)

        await scheduler.start()
        await time.advance_to(T0 + timedelta(hours=1))
        await shut_down(time, scheduler)

        assert sync.slots == [T0 + timedelta(hours=1)]

    run_async(scenario)


def test_late_wake_runs_latest_slot_once(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time)
        scheduler = Scheduler(
            make_settings(tmp_path), store, sync, clock=time.clock, sleep=time.sleep
        )

        await scheduler.start()
        await time.advance_to(T0 + MINUTE)
        time.jump(timedelta(minutes=5, seconds=30))
        await time.advance_to(T0 + 7 * MINUTE)
        await shut_down(time, scheduler)

        assert sync.slots == minutes_after(T0, 1, 6, 7)

    run_async(scenario)


# Jitter.


class FixedDraws:
    """An `rng` that returns the given draws in turn."""

    def __init__(self, *draws: float) -> None:
        self._draws = iter(draws)

    def random(self) -> float:
        return next(self._draws)


def test_jitter_delays_run_not_slot(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time)
        settings = make_settings(tmp_path, ENVSYNC_SCHEDULE_JITTER_S="20")
        scheduler = Scheduler(
            settings,
            store,
            sync,
            clock=time.clock,
            sleep=time.sleep,
            rng=FixedDraws(0.0, 0.5, 0.999),
        )

        await scheduler.start()
        await time.advance_to(T0 + 3 * MINUTE + timedelta(seconds=25))
        await shut_down(time, scheduler)

        assert sync.slots == minutes_after(T0, 1, 2, 3)
        delays = [(run.started - run.slot).total_seconds() for run in sync.runs]
        assert delays == [0.0, 10.0, pytest.approx(19.98)]
        assert store.last_tick(scheduler.name) == T0 + 3 * MINUTE

    run_async(scenario)


def test_jitter_stays_within_bounds(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time)
        settings = make_settings(tmp_path, ENVSYNC_SCHEDULE_JITTER_S="25")
        scheduler = Scheduler(
            settings, store, sync, clock=time.clock, sleep=time.sleep, rng=random.Random(7)
        )

        await scheduler.start()
        await time.advance_to(T0 + 40 * MINUTE)
        await shut_down(time, scheduler)

        assert sync.slots == minutes_after(T0, *range(1, 40))
        delays = [(run.started - run.slot).total_seconds() for run in sync.runs]
        assert all(0 <= delay < 25 for delay in delays)
        assert len(set(delays)) > 1

    run_async(scenario)


def test_jitter_capped_before_next_slot(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time)
        settings = make_settings(tmp_path, ENVSYNC_SCHEDULE_JITTER_S="300")
        scheduler = Scheduler(
            settings,
            store,
            sync,
            clock=time.clock,
            sleep=time.sleep,
            rng=FixedDraws(0.9, 0.9, 0.9),
        )

        await scheduler.start()
        await time.advance_to(T0 + 3 * MINUTE)
        await shut_down(time, scheduler)

        assert sync.slots == minutes_after(T0, 1, 2)
        assert [run.started - run.slot for run in sync.runs] == [timedelta(seconds=30)] * 2

    run_async(scenario)


# Switched off.


def test_disabled_scheduler_never_runs(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time)
        settings = make_settings(tmp_path, ENVSYNC_ENABLED="false")
        scheduler = Scheduler(settings, store, sync, clock=time.clock, sleep=time.sleep)

        await scheduler.start()
        await time.advance_to(T0 + 10 * MINUTE)

        assert sync.slots == []
        assert scheduler.state()["enabled"] is False
        assert scheduler.state()["next_slot"] is None
        assert len(asyncio.all_tasks()) == 1
        await scheduler.stop()

    run_async(scenario)


# Exactly once across schedulers sharing a store.


def test_two_schedulers_run_each_slot_once(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time)
        settings = make_settings(tmp_path)
        with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as other_store:
            schedulers = [
                Scheduler(settings, shared, sync, clock=time.clock, sleep=time.sleep)
                for shared in (store, other_store)
            ]
            for scheduler in schedulers:
                await scheduler.start()
            await time.advance_to(T0 + 20 * MINUTE)
            await shut_down(time, *schedulers)

        assert sync.slots == minutes_after(T0, *range(1, 21))

    run_async(scenario)


def test_two_schedulers_never_overlap(tmp_path: Path, store: Store) -> None:
    # A run lasts 90 s. Whichever scheduler claims the next slot finds the schedule's lock
    # held by the other and skips it.
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time, duration=timedelta(seconds=90))
        settings = make_settings(tmp_path)
        with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as other_store:
            schedulers = [
                Scheduler(settings, shared, sync, clock=time.clock, sleep=time.sleep)
                for shared in (store, other_store)
            ]
            for scheduler in schedulers:
                await scheduler.start()
            await time.advance_to(T0 + 12 * MINUTE)
            await shut_down(time, *schedulers)

        assert sync.slots == minutes_after(T0, 1, 3, 5, 7, 9, 11)
        assert_no_overlap(sync.runs)
        assert sum(scheduler.state()["skipped_slots"] for scheduler in schedulers) >= 5

    run_async(scenario)


# Failures, stopping and state.


def test_failed_run_keeps_scheduling(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time)
        sync.failures.add(T0 + MINUTE)
        scheduler = Scheduler(
            make_settings(tmp_path), store, sync, clock=time.clock, sleep=time.sleep
        )

        await scheduler.start()
        await time.advance_to(T0 + MINUTE)
        assert scheduler.state()["last_outcome"] == "failed"

        await time.advance_to(T0 + 2 * MINUTE)
        await shut_down(time, scheduler)
        assert sync.slots == minutes_after(T0, 1, 2)
        assert scheduler.state()["last_outcome"] == "finished"

    run_async(scenario)


def test_stop_cancels_the_wait(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time)
        scheduler = Scheduler(
            make_settings(tmp_path), store, sync, clock=time.clock, sleep=time.sleep
        )

        await scheduler.start()
        await time.advance_to(T0 + timedelta(seconds=30))
        await scheduler.stop()
        await time.advance_to(T0 + 5 * MINUTE)

        assert sync.slots == []
        assert len(asyncio.all_tasks()) == 1
        assert scheduler.state()["next_slot"] is None

    run_async(scenario)


def test_stop_lets_running_slot_finish(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time, duration=timedelta(seconds=45))
        scheduler = Scheduler(
            make_settings(tmp_path), store, sync, clock=time.clock, sleep=time.sleep
        )

        await scheduler.start()
        await time.advance_to(T0 + MINUTE + timedelta(seconds=10))
        stopping = asyncio.create_task(scheduler.stop())
        await time.advance_to(T0 + 3 * MINUTE, ignore=(stopping,))
        await stopping

        assert sync.slots == [T0 + MINUTE]
        assert sync.runs[0].ended == T0 + MINUTE + timedelta(seconds=45)
        assert sync.cancelled == []

    run_async(scenario)


def test_stop_grace_cancels_long_run(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time, duration=timedelta(seconds=45))
        scheduler = Scheduler(
            make_settings(tmp_path), store, sync, clock=time.clock, sleep=time.sleep
        )

        await scheduler.start()
        await time.advance_to(T0 + MINUTE + timedelta(seconds=10))
        await scheduler.stop(grace_s=0)

        assert sync.cancelled == [T0 + MINUTE]
        assert scheduler.state()["running"] is False
        assert scheduler.state()["last_outcome"] == "cancelled"

    run_async(scenario)


def test_state_reports_slots(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        time = VirtualTime(T0 + timedelta(seconds=10))
        sync = FakeSync(time, duration=timedelta(seconds=20))
        settings = make_settings(tmp_path, ENVSYNC_TIMEZONE="Europe/Berlin")
        scheduler = Scheduler(settings, store, sync, clock=time.clock, sleep=time.sleep)

        await scheduler.start()
        await time.advance_to(T0 + MINUTE + timedelta(seconds=5))
        running = scheduler.state()
        await time.advance_to(T0 + MINUTE + timedelta(seconds=30))
        idle = scheduler.state()
        await shut_down(time, scheduler)

        assert running["running"] is True
        assert running["running_slot"] == "2024-05-01T12:01:00+00:00"
        assert running["next_slot"] == "2024-05-01T12:02:00+00:00"
        assert running["last_slot"] is None
        assert idle["running"] is False
        assert idle["last_slot"] == "2024-05-01T12:01:00+00:00"
        assert idle == idle | {
            "enabled": True,
            "schedule": "@every 60s",
            "timezone": "Europe/Berlin",
            "mode": "enforce",
            "jitter_s": 0.0,
            "skipped_slots": 0,
        }

    run_async(scenario)
