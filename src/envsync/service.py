"""The service behind `envsync serve`: one engine and everything that runs around it.

A `Service` owns the process's Engine, the store the engine opens, the event sinks (log
lines, webhooks), the tickets and metrics hooks, and the scheduler. Every run it starts,
whether an API request waits for it or not, is tracked until it ends, so that `stop()`
can let in-flight applies finish within ENVSYNC_SHUTDOWN_GRACE_S and mark the rest
`abandoned` in the run history.

The tickets hook, the webhook sink and the scheduler live in modules of their own. Each
is wired in when its module is installed and skipped, with a log line, when it is not.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from envsync.api.metrics import Metrics
from envsync.config import Settings
from envsync.engine import Engine, RunReport, RunRequest
from envsync.events import log_sink
from envsync.http import call_observers
from envsync.model import RunMode
from envsync.store.records import RunStatus, RunTrigger

if TYPE_CHECKING:
    import httpx

    from envsync.ledger import LedgerHasher
    from envsync.store import Run, RunTarget, Store

logger = logging.getLogger(__name__)

# The store is pinged at most this often, however often health is asked.
PING_MAX_AGE_S = 1.0

# Error texts of runs that failed before any target, kept for GET /envsync/runs/{id}.
MAX_REMEMBERED_ERRORS = 200

TASK_PREFIX = "envsync-run-"

# Health reports each target's last run among this many recent runs.
# NOTE: a target that no recent run touched shows no last run.
LAST_RUNS_SCANNED = 100

T = TypeVar("T")

RunDue = Callable[[datetime], Awaitable[None]]


class SchedulerLike(Protocol):
    async def start(self) -> None: ...

    async def stop(self, grace_s: float | None = None) -> None: ...

    def state(self) -> dict[str, Any]: ...


SchedulerFactory = Callable[[Settings, "Store", RunDue], SchedulerLike]


class AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """The store's health: whether it responds, and each target's last run."""

    reachable: bool
    last_runs: dict[str, dict[str, Any]]


class CachedCheck(Generic[T]):
    """A blocking check, run in a thread at most once per `max_age_s` and cached in between."""

    def __init__(
        self,
        check: Callable[[], T],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_age_s: float = PING_MAX_AGE_S,
    ) -> None:
        self._check = check
        self._clock = clock
        self._max_age_s = max_age_s
        self._checked_at: float | None = None
        self._value: T | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        async with self._lock:
            fresh = (
                self._checked_at is not None and self._clock() - self._checked_at < self._max_age_s
            )
            if fresh and self._value is not None:
                return self._value

            self._value = await asyncio.to_thread(self._check)
            self._checked_at = self._clock()
            return self._value


class Service:
    """One engine with its store, event sinks, hooks, scheduler and tracked runs.

    `environ` and `cwd` go to the engine (token discovery, sources, envsync.toml);
    `transports` route provider HTTP in tests. `scheduler_factory` builds the scheduler,
    by default `envsync.scheduler.Scheduler` when that module is installed; `schedule=False`
    runs without one. `clock` is the monotonic clock of the cached store ping.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        scheduler_factory: SchedulerFactory | None = None,
        schedule: bool = True,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.environ = environ
        self.cwd = cwd
        self.engine = Engine(settings, store=store, environ=environ, cwd=cwd, transports=transports)
        self.metrics = metrics or Metrics()
        self.store_status = CachedCheck(self._check_store, clock=clock)
        self._owns_store = store is None
        self._scheduler_factory = scheduler_factory
        self._schedule = schedule
        self._scheduler: SchedulerLike | None = None
        self._scheduler_note = "not started"
        self._closables: list[AsyncClosable] = []
        self._unsubscribers: list[Callable[[], None]] = []
        self._runs: dict[str, asyncio.Task[RunReport]] = {}
        self._errors: OrderedDict[str, str] = OrderedDict()
        self._started = False

    @property
    def store(self) -> Store:
        return self.engine.store()

    # Start and stop.

    async def start(self) -> None:
        """Open the store, wire hooks and sinks, and start the scheduler."""
        if self._started:
            return
        self._started = True
        await asyncio.to_thread(self.engine.store)
        await asyncio.to_thread(self.store.mark_interrupted_runs)

        self._unsubscribers.append(self.engine.events.subscribe("*", log_sink))
        self.engine.result_hooks.append(self.metrics.observe_result)
        call_observers.append(self.metrics.observe_call)
        self._wire_tickets()
        self._wire_webhooks()
        await self._start_scheduler()

    async def stop(self, grace_s: float | None = None) -> list[str]:
        """Stop the scheduler, wait up to `grace_s` for in-flight runs, abandon the rest.

        Returns the ids of the runs that were abandoned. `grace_s` defaults to
        ENVSYNC_SHUTDOWN_GRACE_S.
        """
        if not self._started:
            return []
        self._started = False
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace

        # One grace period covers both: a scheduled run still going is one of the
        # tracked runs, so the time the scheduler waited for it is not given twice.
        if self._scheduler is not None:
            await self._stop_scheduler(self._scheduler, grace)
            self._scheduler = None
        abandoned = await self._drain(max(0.0, deadline - loop.time()))
        await self._unwire()
        if self._owns_store:
            await asyncio.to_thread(self.store.close)
        return abandoned

    async def _drain(self, grace_s: float) -> list[str]:
        in_flight = dict(self._runs)
        if not in_flight:
            return []

        logger.info(
            "waiting up to %g s for %d in-flight runs: %s",
            grace_s,
            len(in_flight),
            ", ".join(sorted(in_flight)),
        )
        _, pending = await asyncio.wait(in_flight.values(), timeout=grace_s)
        abandoned = sorted(run_id for run_id, task in in_flight.items() if task in pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if abandoned:
            logger.warning(
                "abandoned %d runs still in flight after %g s: %s",
                len(abandoned),
                grace_s,
                ", ".join(abandoned),
            )
        return abandoned

    async def _unwire(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        if self.metrics.observe_result in self.engine.result_hooks:
            self.engine.result_hooks.remove(self.metrics.observe_result)
        if self.metrics.observe_call in call_observers:
            call_observers.remove(self.metrics.observe_call)
        for closable in self._closables:
            try:
                await closable.aclose()
            except Exception:
                logger.exception("closing %s failed", type(closable).__name__)
        self._closables.clear()

    # Optional parts, wired in when their modules are installed.

    def _wire_tickets(self) -> None:
        hook_class = _optional("envsync.tickets", "TicketHook")
        if hook_class is None:
            logger.warning("envsync.tickets is not installed: runs open no tickets")
            return
        self.engine.result_hooks.append(hook_class(self.store))

    def _wire_webhooks(self) -> None:
        if not self.settings.webhook_urls:
            return
        sink_class = _optional("envsync.webhooks", "WebhookSink")
        if sink_class is None:
            logger.warning("envsync.webhooks is not installed: ENVSYNC_WEBHOOK_URLS is ignored")
            return
        sink = sink_class(self.settings)
        self._unsubscribers.append(self.engine.events.subscribe("*", sink))
        self._closables.append(sink)

    async def _start_scheduler(self) -> None:
        if not self.settings.enabled:
            self._scheduler_note = "disabled by ENVSYNC_ENABLED=false"
            return
        factory = self._resolve_scheduler_factory()
        if factory is None:
            return
        scheduler = factory(self.settings, self.store, self.run_due)
        await scheduler.start()
        self._scheduler = scheduler
        self._scheduler_note = "running"

    def _resolve_scheduler_factory(self) -> SchedulerFactory | None:
        if not self._schedule:
            self._scheduler_note = "switched off for this service"
            return None
        if self._scheduler_factory is not None:
            return self._scheduler_factory

        scheduler_class = _optional("envsync.scheduler", "Scheduler")
        if scheduler_class is None:
            self._scheduler_note = "envsync.scheduler is not installed"
            logger.warning("envsync.scheduler is not installed: no scheduled runs")
            return None
        factory: SchedulerFactory = scheduler_class
        return factory

    async def _stop_scheduler(self, scheduler: SchedulerLike, grace_s: float) -> None:
        try:
            await scheduler.stop(grace_s)
        except Exception:
            logger.exception("the scheduler failed to stop cleanly")
        self._scheduler_note = "stopped"

    def scheduler_state(self) -> dict[str, Any]:
        """Return whether the scheduler started, with its own state, or why it did not."""
        if self._scheduler is None:
            return {"started": False, "reason": self._scheduler_note}
        try:
            return {"started": True, **self._scheduler.state()}
        except Exception as error:
            logger.warning("the scheduler's state could not be read: %s", type(error).__name__)
            return {"started": True, "reason": "state unavailable"}

    def _check_store(self) -> StoreStatus:
        """Ping the store and read each target's last run; a failure means unreachable."""
        try:
            if not self.store.ping():
                return StoreStatus(False, {})
            runs = self.store.list_runs(limit=LAST_RUNS_SCANNED)
        except Exception as error:
            logger.warning("the store failed its health check: %s", type(error).__name__)
            return StoreStatus(False, {})
        return StoreStatus(True, last_run_per_target(runs))

    # Runs.

    async def run(self, request: RunRequest) -> RunReport:
        """Run now and return the report; shutdown waits for the run like any other.

        Raises what `Engine.run` raises for a failure before any target (an unreadable
        source, say); the run history then records the run as failed.
        """
        _, task = await self._spawn(request)
        # The shield keeps the run going when the caller is cancelled (a client that hung
        # up); stop() decides what happens to it.
        return await asyncio.shield(task)

    async def submit(self, request: RunRequest) -> str:
        """Start a run in the background and return its id at once."""
        run_id, task = await self._spawn(request)
        task.add_done_callback(_log_background_failure)
        return run_id

    async def run_due(self, slot: datetime) -> None:
        """Run the scheduled sync of one slot in ENVSYNC_MODE; the scheduler calls it."""
        request = RunRequest(
            mode=RunMode(self.settings.mode),
            trigger=RunTrigger.SCHEDULER.value,
            actor=f"slot {slot.astimezone(UTC).isoformat()}",
            lock_timeout_s=self.settings.lock_timeout_s,
        )
        try:
            await self.run(request)
        except Exception as error:
            logger.error("the scheduled run of %s failed: %s", slot.isoformat(), error)

    def in_flight(self) -> list[str]:
        """Return the ids of the runs this process is working on."""
        return sorted(self._runs)

    def run_error(self, run_id: str) -> str | None:
        """Return why a run of this process failed before any target, when it did."""
        return self._errors.get(run_id)

    async def hasher(self) -> LedgerHasher:
        """Return the ledger hasher, whose fingerprints mask values in results."""
        return await asyncio.to_thread(self.engine.hasher)

    async def _spawn(self, request: RunRequest) -> tuple[str, asyncio.Task[RunReport]]:
        run_id = request.run_id or await self.engine.start_run(request)
        tracked = replace(request, run_id=run_id)
        task = asyncio.create_task(self._execute(tracked), name=f"{TASK_PREFIX}{run_id}")
        self._runs[run_id] = task
        task.add_done_callback(lambda _: self._runs.pop(run_id, None))
        return run_id, task

    async def _execute(self, request: RunRequest) -> RunReport:
        run_id = request.run_id
        assert run_id is not None
        try:
            report = await self.engine.run(request)
        except asyncio.CancelledError:
            await self._finish(request, RunStatus.ABANDONED)
            raise
        except Exception as error:
            self._remember_error(run_id, error)
            await self._finish(request, RunStatus.FAILED)
            raise

        status = RunStatus.SUCCEEDED if report.ok else RunStatus.FAILED
        self.metrics.observe_run(request.trigger, request.mode, status.value)
        return report

    async def _finish(self, request: RunRequest, status: RunStatus) -> None:
        assert request.run_id is not None
        self.metrics.observe_run(request.trigger, request.mode, status.value)
        try:
            await asyncio.to_thread(self.store.finish_run, request.run_id, status)
        except Exception as error:
            logger.error(
                "run %s could not be recorded as %s: %s", request.run_id, status.value, error
            )

    def _remember_error(self, run_id: str, error: Exception) -> None:
        self._errors[run_id] = _describe(error)
        while len(self._errors) > MAX_REMEMBERED_ERRORS:
            self._errors.popitem(last=False)


def last_run_per_target(runs: list[Run]) -> dict[str, dict[str, Any]]:
    """Summarise the newest run of each target among `runs` (newest first), by target name."""
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:
        for target in run.targets:
            if target.target in latest:
                continue
            latest[target.target] = {
                "run_id": run.id,
                "trigger": run.trigger.value,
                "mode": run.mode.value,
                "status": run.status.value,
                "started_at": run.started_at.isoformat().replace("+00:00", "Z"),
                "applied": target.applied,
                "ok": _target_ok(target),
                "errors": len(target.errors),
                "planned": len(target.changes),
                "written": len(target.written),
            }
    return latest


def _target_ok(target: RunTarget) -> bool:
    if not target.finished or target.errors:
        return False
    return target.counts.conflicts == 0 and target.counts.rejected == 0


def _describe(error: BaseException) -> str:
    """Text for an error without values: envsync's own messages, or only the class name."""
    from envsync.errors import EnvsyncError

    if isinstance(error, EnvsyncError):
        return f"{type(error).__name__}: {error}"
    return f"{type(error).__name__} (see the server log)"


def _log_background_failure(task: asyncio.Task[RunReport]) -> None:
    """Log how a background run failed; this also marks its exception as retrieved."""
    if task.cancelled():
        return
    error = task.exception()
    if error is None:
        return
    from envsync.errors import EnvsyncError

    run_id = task.get_name().removeprefix(TASK_PREFIX)
    # envsync's own errors carry a message fit for the log; anything else needs its traceback.
    trace = None if isinstance(error, EnvsyncError) else error
    logger.error("background run %s failed: %s", run_id, _describe(error), exc_info=trace)


def _optional(module_name: str, attribute: str) -> Any:
    """Return `module_name.attribute`, or None when the module is not installed.

    An import error inside an installed module is raised, not hidden.
    """
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise
    return getattr(module, attribute)
