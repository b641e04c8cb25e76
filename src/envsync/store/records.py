"""The records the store returns: runs, their targets and tickets.

None of them contains a variable's value. A run records key names, contexts and
operations, counts, and error texts that callers build without values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from envsync.model import Op, Plan, RunMode, TargetResult


class RunTrigger(enum.StrEnum):
    """The origin of a run."""

    CLI = "cli"
    API = "api"
    SCHEDULER = "scheduler"
    ROLLBACK = "rollback"
    ROTATE = "rotate"
    LIBRARY = "library"


class RunStatus(enum.StrEnum):
    """The state of a run.

    `interrupted` marks a run that its process left `running` when it died, so what it
    wrote is known only from its written keys. `abandoned` is for a run that its own
    process gave up on before it finished, such as at shutdown.
    """

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class KeyChange:
    """A change of one key and context, by name only."""

    key: str
    context: str | None
    op: Op


@dataclass(frozen=True, slots=True)
class ChangeCounts:
    """How many changes of each kind one target's plan held."""

    create: int = 0
    update: int = 0
    delete: int = 0
    noop: int = 0
    rejected: int = 0
    conflicts: int = 0

    @classmethod
    def of_plan(cls, plan: Plan | None) -> ChangeCounts:
        if plan is None:
            return cls()
        return cls(
            create=plan.count(Op.CREATE),
            update=plan.count(Op.UPDATE),
            delete=plan.count(Op.DELETE),
            noop=plan.count(Op.NOOP),
            rejected=len(plan.rejected),
            conflicts=len(plan.conflicts),
        )


@dataclass(frozen=True, slots=True)
class TargetSummary:
    """What a run records for one target when it is done with it.

    `changes` are the plan's pending changes: what a dry-run would do, or what an apply set
    out to do. The writes that reached the platform are recorded one by one instead.
    `errors` are texts without values, as `TargetResult.errors` are, and `error_causes`
    are their causes (`auth`, `rate_limited`, ...).
    """

    counts: ChangeCounts
    changes: tuple[KeyChange, ...]
    errors: tuple[str, ...]
    duration_s: float
    applied: bool
    error_causes: tuple[str, ...] = ()

    @classmethod
    def of_result(cls, result: TargetResult) -> TargetSummary:
        pending = result.plan.pending if result.plan is not None else ()
        return cls(
            counts=ChangeCounts.of_plan(result.plan),
            changes=tuple(KeyChange(change.key, change.context, change.op) for change in pending),
            errors=result.errors,
            duration_s=result.duration_s,
            applied=result.applied,
            error_causes=result.error_causes,
        )


@dataclass(frozen=True, slots=True)
class RunTarget:
    """One target of one run.

    `finished` is false while the run is still working on the target, and stays false when
    its process died first. `written` lists the writes the platform confirmed, in order.
    `target` and `provider` equal the ledger id and its provider prefix when the run wrote
    to the target without recording it first.
    """

    run_id: str
    ledger_id: str
    target: str
    provider: str
    counts: ChangeCounts
    changes: tuple[KeyChange, ...]
    written: tuple[KeyChange, ...]
    errors: tuple[str, ...]
    error_causes: tuple[str, ...]
    duration_s: float | None
    applied: bool
    finished: bool


@dataclass(frozen=True, slots=True)
class Run:
    """One plan or apply over one or more targets."""

    id: str
    started_at: datetime
    ended_at: datetime | None
    trigger: RunTrigger
    actor: str | None
    mode: RunMode
    status: RunStatus
    targets: tuple[RunTarget, ...]


@dataclass(frozen=True, slots=True)
class Ticket:
    """A diagnostic record for one target and cause, open while the cause lasts.

    `count` is how many times the cause was seen while the ticket was open, and `closed` is
    None while it is open.
    """

    id: str
    target: str
    cause: str
    opened: datetime
    last_seen: datetime
    count: int
    diagnosis: str
    next_step: str
    closed: datetime | None

    @property
    def is_open(self) -> bool:
        return self.closed is None
