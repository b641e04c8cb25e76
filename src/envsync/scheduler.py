"""The scheduler: runs the scheduled sync at every slot of ENVSYNC_SCHEDULE.

Slots come from `envsync.schedule` in the wall-clock time of ENVSYNC_TIMEZONE. The
scheduler guarantees:

- Alignment: the next slot is computed from the slot just fired, never from the time a
  run ended, so slow runs cause no drift.
- Exactly once: every process that finds a slot due claims it in the store
  (`Store.claim_tick`, a unique insert), and only the process whose claim lands runs it.
  The guarantee covers worker processes and replicas that share one store. NOTE: a
  process that dies between its claim and its run leaves that slot unrun, and the catch-up
  does not repeat it, because the claim is the record of the slot. The next slot syncs.
- No overlap: a slot that comes due while the previous scheduled run is still going is
  skipped and logged, not queued. In this process the running task shows it. Across
  processes a lock on the schedule shows it: a file lock beside a SQLite store, or a
  PostgreSQL advisory lock. Applies of one target are also serialised against manual
  applies by the engine's per-target lock.
- Jitter: with ENVSYNC_SCHEDULE_JITTER_S, each slot runs after a random delay in
  [0, jitter), capped at half the gap to the following slot so that it still starts
  before that slot. The slot's identity (what is claimed and reported) is unchanged.
- Catch-up: at start-up, when the store's latest claimed slot of this schedule is older
  than the latest slot due, that latest slot runs once, however many were missed. A
  schedule with no claim in the store yet waits for its next slot.
  Slots missed because this process was paused or its event loop blocked are caught up
  the same way.
- ENVSYNC_ENABLED=false leaves the scheduler off, while the API still serves.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from envsync.errors import EnvsyncError, LockTimeoutError
from envsync.schedule import Schedule, parse_schedule

if TYPE_CHECKING:
    from envsync.config import Settings
    from envsync.locks import TargetLocks
    from envsync.store import Store

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
RunDue = Callable[[datetime], Awaitable[None]]

# A long wait is cut into pieces of at most this many seconds, and the wall clock is read
# again after each one. A clock step (NTP, a suspended machine) is then noticed within a
# minute, because asyncio's timers follow the monotonic clock, not the wall clock.
MAX_WAIT_S = 60.0

# Claims of slots older than this are deleted, at most once per PRUNE_INTERVAL. Only the
# latest claim of a schedule is needed later (for the catch-up at start-up).
TICK_RETENTION = timedelta(days=7)
PRUNE_INTERVAL = timedelta(hours=1)


class RandomSource(Protocol):
    def random(self) -> float: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def schedule_name(schedule: Schedule, timezone: str) -> str:
    """Return the name under which a schedule's slots are claimed in the store.

    Cron slots depend on the time zone, so it is part of the name; interval slots do not.
    """
    if schedule.interval_s is not None:
        return f"sync {schedule.text}"
    return f"sync {schedule.text} {timezone}"


class Scheduler:
    """Runs `run_due(slot)` at every slot of ENVSYNC_SCHEDULE, once across all processes.

    `clock` returns the current aware time and `sleep` waits a number of seconds; tests
    pass controllable ones. `rng` draws the jitter. `locks` defaults to target locks on
    the store's database, which also hold the schedule's cross-process lock.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        run_due: RunDue,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        rng: RandomSource | None = None,
        locks: TargetLocks | None = None,
    ) -> None:
        self.settings = settings
        self.schedule = parse_schedule(settings.schedule)
        self.zone = ZoneInfo(settings.timezone)
        self.name = schedule_name(self.schedule, settings.timezone)
        self._store = store
        self._run_due = run_due
        self._clock = clock or _utc_now
        self._sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._locks = locks

        self._loop_task: asyncio.Task[None] | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._waiting = False
        self._next_slot: datetime | None = None
        self._running_slot: datetime | None = None
        self._last_slot: datetime | None = None
        self._last_outcome: str | None = None
        self._skipped = 0
        self._last_prune: datetime | None = None

    # Life cycle.

    async def start(self) -> None:
        """Start the scheduling loop in the background; do nothing when it is disabled."""
        if not self.settings.enabled:
            logger.info("the scheduler is off because ENVSYNC_ENABLED is false")
            return
        if self._loop_task is not None:
            return

        self._stopping = False
        self._loop_task = asyncio.create_task(self._loop(), name="envsync-scheduler")
        logger.info(
            "the scheduler started: %s in %s, mode %s, jitter up to %g s",
            self.schedule.text,
            self.settings.timezone,
            self.settings.mode,
            self.settings.schedule_jitter_s,
        )

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop scheduling, then wait up to `grace_s` seconds for a running slot.

        The wait for the next slot is cancelled at once, but a slot being claimed finishes
        its claim and starts its run. A running slot gets `grace_s` seconds (None: as long
        as it takes) and is then cancelled. A cancelled `run_due` is expected to record its
        run as abandoned. The service's `run_due` shields the engine's run, so the
        service's own shutdown decides what happens to that run.
        """
        self._stopping = True
        loop_task, self._loop_task = self._loop_task, None
        if loop_task is not None:
            if self._waiting:
                loop_task.cancel()
            await asyncio.wait({loop_task})
        self._next_slot = None

        run_task = self._run_task
        if run_task is None or run_task.done():
            return
        logger.info(
            "the scheduler waits for the run of slot %s to finish", _iso(self._running_slot)
        )
        finished, _ = await asyncio.wait({run_task}, timeout=grace_s)
        if finished:
            return
        logger.warning(
            "the run of slot %s did not finish within %g s of shutdown; cancelling it",
            _iso(self._running_slot),
            grace_s,
        )
        run_task.cancel()
        await asyncio.wait({run_task})

    def state(self) -> dict[str, Any]:
        """Return the scheduler's state for the health route; times are ISO 8601 in UTC."""
        return {
            "enabled": self.settings.enabled,
            "schedule": self.schedule.text,
            "timezone": self.settings.timezone,
            "mode": self.settings.mode,
            "jitter_s": self.settings.schedule_jitter_s,
            "next_slot": _iso(self._next_slot),
            "last_slot": _iso(self._last_slot),
            "last_outcome": self._last_outcome,
            "running": self.running,
            "running_slot": _iso(self._running_slot),
            "skipped_slots": self._skipped,
        }

    @property
    def running(self) -> bool:
        """Whether a slot's run started by this scheduler is still going."""
        return self._run_task is not None and not self._run_task.done()

    # The loop.

    async def _loop(self) -> None:
        try:
            await self._schedule_slots()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Nothing above is expected to raise. If something does, the log says so, because
            # a background task would otherwise end without a trace.
            logger.exception("the scheduler stopped after an unexpected error")
            raise

    async def _schedule_slots(self) -> None:
        slot = await self._first_slot()
        while not self._stopping:
            self._next_slot = slot
            await self._wait_until(slot + timedelta(seconds=self._jitter_s(slot)))
            if self._stopping:
                return
            slot = self._latest_due(slot)
            await self._fire(slot)
            slot = self.schedule.next_after(slot, self.zone)

    async def _first_slot(self) -> datetime:
        """Return the latest due slot when a run was missed while envsync was down, else the
        next slot."""
        now = self._clock()
        latest = self.schedule.latest_at_or_before(now, self.zone)
        try:
            last = await asyncio.to_thread(self._store.last_tick, self.name)
        except EnvsyncError as error:
            logger.error(
                "the scheduler could not read its last slot, so it skips the catch-up: %s", error
            )
            last = None

        if last is not None and last < latest:
            logger.info(
                "slot %s was missed while no envsync process ran this schedule (the last run "
                "was for slot %s); it runs once now",
                _iso(latest),
                _iso(last),
            )
            return latest
        return self.schedule.next_after(now, self.zone)

    async def _wait_until(self, moment: datetime) -> None:
        self._waiting = True
        try:
            while (remaining := (moment - self._clock()).total_seconds()) > 0:
                await self._sleep(min(remaining, MAX_WAIT_S))
        finally:
            self._waiting = False

    def _jitter_s(self, slot: datetime) -> float:
        jitter = self.settings.schedule_jitter_s
        if jitter <= 0:
            return 0.0
        gap = (self.schedule.next_after(slot, self.zone) - slot).total_seconds()
        return min(self._rng.random() * jitter, gap / 2)

    def _latest_due(self, slot: datetime) -> datetime:
        """Return `slot`, or the latest due slot when later ones passed while this process
        was paused, so that a late wake-up runs once."""
        latest = self.schedule.latest_at_or_before(self._clock(), self.zone)
        if latest <= slot:
            return slot
        logger.warning(
            "the scheduler woke late: the slots from %s to %s came due together, so only %s runs",
            _iso(slot),
            _iso(latest),
            _iso(latest),
        )
        return latest

    async def _fire(self, slot: datetime) -> None:
        """Claim a due slot and start its run, unless the previous run is still going."""
        if self.running:
            self._skip(slot, f"the run of slot {_iso(self._running_slot)} is still going here")
            return

        try:
            claimed = await asyncio.to_thread(self._store.claim_tick, self.name, slot)
        except EnvsyncError as error:
            logger.error("slot %s was not run, because claiming it failed: %s", _iso(slot), error)
            return
        if not claimed:
            logger.debug("slot %s was claimed by another envsync process", _iso(slot))
            return

        self._running_slot = slot
        self._run_task = asyncio.create_task(
            self._run_slot(slot), name=f"envsync-slot-{_iso(slot)}"
        )
        await self._prune(slot)

    async def _run_slot(self, slot: datetime) -> None:
        try:
            # With a timeout of 0 the hold fails at once while another process runs this
            # schedule, so the slot is skipped rather than queued.
            async with self._schedule_locks().hold(
                f"schedule:{self.name}", 0.0, target_name=self.name
            ):
                await self._call_run_due(slot)
        except LockTimeoutError:
            self._skip(slot, "a run of this schedule is still going in another envsync process")
        except EnvsyncError as error:
            logger.error("slot %s was not run, because its lock failed: %s", _iso(slot), error)
        finally:
            self._running_slot = None

    async def _call_run_due(self, slot: datetime) -> None:
        """Run the slot's sync; a failed run is logged and never stops the scheduler."""
        logger.info("slot %s: the scheduled %s starts", _iso(slot), self.settings.mode)
        outcome = "failed"
        try:
            await self._run_due(slot)
            outcome = "finished"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except EnvsyncError as error:
            logger.error("slot %s: the scheduled run failed: %s", _iso(slot), error)
        except Exception:
            logger.exception("slot %s: the scheduled run failed", _iso(slot))
        finally:
            self._last_slot = slot
            self._last_outcome = outcome
            logger.info("slot %s: the scheduled %s %s", _iso(slot), self.settings.mode, outcome)

    def _skip(self, slot: datetime, reason: str) -> None:
        self._skipped += 1
        logger.warning("slot %s is skipped, because %s", _iso(slot), reason)

    def _schedule_locks(self) -> TargetLocks:
        if self._locks is None:
            from envsync.locks import TargetLocks

            self._locks = TargetLocks.for_store(self._store)
        return self._locks

    async def _prune(self, slot: datetime) -> None:
        if self._last_prune is not None and slot - self._last_prune < PRUNE_INTERVAL:
            return
        self._last_prune = slot
        try:
            pruned = await asyncio.to_thread(self._store.prune_ticks, slot - TICK_RETENTION)
        except EnvsyncError as error:
            logger.warning("old schedule claims could not be pruned: %s", error)
            return
        if pruned:
            logger.info("pruned %d schedule claims older than %s", pruned, TICK_RETENTION)
