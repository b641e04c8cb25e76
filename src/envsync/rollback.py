"""Roll back one run: restore the previous values of exactly the keys it wrote.

`rollback(engine, run_id, confirm=..., force=...)` reads what the run wrote (the run
history records every confirmed write) and the values before it (the run's encrypted
snapshot), and runs the engine with a planner of its own that plans exactly those keys:

- a key the run updated or deleted gets its previous value back,
- a key the run created is deleted, within ENVSYNC_MAX_DELETIONS unless forced,
- a key changed again since the run is a conflict and is left alone unless `force`. It
  changed when its value's keyed hash differs from the hash of what the run wrote, when it
  is gone, or when it is back after the run deleted it.

A Netlify secret cannot be read back, so its previous value is the value envsync last wrote
before the run, kept encrypted with that earlier run's snapshot. When envsync never wrote
it, the key is reported and skipped. Whether a secret changed since the run is judged from
the ownership ledger's hash and the variable's `updated_at`.

Without `confirm` the rollback is a dry-run that shows the plan. Either way it is recorded
as a new run with trigger `rollback`, and an applied rollback takes a snapshot of its own,
so it can be rolled back in turn.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from envsync.errors import RollbackError
from envsync.model import (
    CanonicalSet,
    Change,
    Conflict,
    LedgerSlot,
    Op,
    Plan,
    Rejection,
    RemoteValue,
    RemoteVariable,
    RunMode,
    SecretValue,
)
from envsync.planner import WHOLE_TARGET, PlanInput, credential_reason

if TYPE_CHECKING:
    from envsync.config import Settings
    from envsync.engine import RunReport, RunRequest
    from envsync.store import RunTarget, Store

logger = logging.getLogger(__name__)


class Runner(Protocol):
    """The runner of rollback and rotation runs: an `Engine`, or the service that owns one
    (its `run` tracks the run so that shutdown waits for it)."""

    settings: Settings

    async def run(self, request: RunRequest) -> RunReport: ...


def store_of(runner: Runner) -> Store:
    """Return the store of an Engine, or of the engine a service owns."""
    from envsync.engine import Engine

    engine = getattr(runner, "engine", runner)
    if not isinstance(engine, Engine):
        raise TypeError(f"expected an Engine or a service owning one, not {type(runner).__name__}")
    return engine.store()


@dataclass(frozen=True, slots=True)
class RestoreSlot:
    """One key (and Netlify context) that the rolled-back run wrote, and how to undo it.

    `op` is what the run did. `previous` is the value to restore, None when the run
    created the key (so undoing it deletes the key). `written` is what the run left there,
    None when it deleted the key; `written_known` is false for snapshots taken before
    envsync kept written values.
    """

    key: str
    context: str | None
    op: Op
    previous: SecretValue | None
    written: SecretValue | None
    written_known: bool = True

    @property
    def slot(self) -> LedgerSlot:
        return (self.key, self.context)


@dataclass(frozen=True, slots=True)
class SkippedSlot:
    """A key of the run that the rollback leaves alone, and why."""

    target: str
    key: str
    context: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class RollbackReport:
    """The outcome of a rollback, applied or planned.

    `report` is the rollback's own run (a dry-run unless `applied`), or None when the run
    wrote nothing that can be restored. `skipped` lists keys left alone before planning.
    """

    run_id: str
    applied: bool
    report: RunReport | None
    skipped: tuple[SkippedSlot, ...] = ()
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.report is None or self.report.ok

    @property
    def rollback_run_id(self) -> str | None:
        return self.report.run_id if self.report is not None else None


async def rollback(
    engine: Runner,
    run_id: str,
    *,
    confirm: bool,
    force: bool,
    actor: str | None = None,
) -> RollbackReport:
    """Plan (without `confirm`) or apply the rollback of run `run_id`.

    Raises RollbackError when the run is unknown, was a dry-run, or no snapshot can be read
    because ENVSYNC_SNAPSHOT_KEY is not set.
    """
    store = store_of(engine)
    run = await asyncio.to_thread(store.get_run, run_id)
    if run is None:
        raise RollbackError(
            f"run {run_id} not found", hint="`envsync runs` lists the runs and their ids"
        )
    if run.mode is RunMode.DRY_RUN:
        raise RollbackError(
            f"run {run_id} was a dry-run and wrote nothing, so there is nothing to roll back"
        )
    key = _snapshot_key(engine)

    targets = [target for target in run.targets if target.written]
    if not targets:
        return RollbackReport(run_id, False, None, message=f"run {run_id} wrote nothing")

    slots: dict[str, list[RestoreSlot]] = {}
    skipped: list[SkippedSlot] = []
    for target in targets:
        restores, left = await asyncio.to_thread(_restore_slots, store, run_id, target, key)
        skipped += left
        if restores:
            slots[target.ledger_id] = restores
    if not slots:
        return RollbackReport(
            run_id, False, None, tuple(skipped), f"no key of run {run_id} can be restored"
        )

    report = await engine.run(_request(run_id, run.targets, slots, confirm, force, actor))
    skipped += _unreached(report, run.targets, slots)
    for item in skipped:
        logger.warning(
            "rollback of %s: %s %s skipped: %s", run_id, item.target, item.key, item.reason
        )
    return RollbackReport(run_id, confirm, report, tuple(skipped))


def _snapshot_key(engine: Runner) -> str:
    secret = engine.settings.snapshot_key
    if secret is None or not secret.get_secret_value():
        raise RollbackError(
            "ENVSYNC_SNAPSHOT_KEY is not set, so envsync takes no snapshots of previous values "
            "and cannot restore them",
            hint="set ENVSYNC_SNAPSHOT_KEY (the same on every machine) before the runs you may "
            "want to roll back",
        )
    return secret.get_secret_value()


def _request(
    run_id: str,
    targets: Sequence[RunTarget],
    slots: Mapping[str, list[RestoreSlot]],
    confirm: bool,
    force: bool,
    actor: str | None,
) -> RunRequest:
    from envsync.engine import RunRequest

    providers = sorted({target.provider for target in targets if target.ledger_id in slots})
    return RunRequest(
        mode=RunMode.ENFORCE if confirm else RunMode.DRY_RUN,
        targets=tuple(providers),
        force=force,
        trigger="rollback",
        actor=actor,
        canonical=_canonical(run_id, slots),
        planner=restore_planner(run_id, slots),
        ledger_ids=tuple(sorted(slots)),
    )


def _canonical(run_id: str, slots: Mapping[str, list[RestoreSlot]]) -> CanonicalSet:
    """Build the restored values as a canonical set, for the run's record and the credential
    check.

    The planner works from the slots themselves, because one key can have a different
    previous value per Netlify context.
    """
    values: dict[str, SecretValue] = {}
    for restores in slots.values():
        for restore in restores:
            if restore.previous is not None:
                values.setdefault(restore.key, restore.previous)
    return CanonicalSet(f"snapshot of run {run_id}", values)


# Reading what the run did.


def _restore_slots(
    store: Store, run_id: str, target: RunTarget, key: str
) -> tuple[list[RestoreSlot], list[SkippedSlot]]:
    """Build the restore list of one target of the run, and the keys that must be skipped."""
    first_ops: dict[LedgerSlot, Op] = {}
    for change in target.written:
        first_ops.setdefault((change.key, change.context), change.op)

    previous = store.load_snapshot(run_id, target.ledger_id, key)
    if previous is None:
        reason = (
            f"run {run_id} took no snapshot of {target.target}: ENVSYNC_SNAPSHOT_KEY was not "
            "set when it ran"
        )
        return [], [SkippedSlot(target.target, k, c, reason) for k, c in first_ops]
    written = store.load_snapshot_written(run_id, target.ledger_id, key)

    restores: list[RestoreSlot] = []
    skipped: list[SkippedSlot] = []
    for slot, op in first_ops.items():
        restore = _restore_slot(store, run_id, target.ledger_id, slot, op, previous, written, key)
        if isinstance(restore, str):
            skipped.append(SkippedSlot(target.target, slot[0], slot[1], restore))
        else:
            restores.append(restore)
    return restores, skipped


def _restore_slot(
    store: Store,
    run_id: str,
    ledger_id: str,
    slot: LedgerSlot,
    op: Op,
    previous: Mapping[LedgerSlot, SecretValue | None],
    written: Mapping[LedgerSlot, SecretValue | None] | None,
    key: str,
) -> RestoreSlot | str:
    """Build one slot's restore, or return why it is skipped."""
    written_value = written.get(slot) if written is not None else None
    written_known = written is not None and slot in written
    if op is Op.CREATE:
        return RestoreSlot(*slot, op, None, written_value, written_known)
    if slot not in previous:
        return (
            f"run {run_id} wrote it after its snapshot was taken, so its previous value is unknown"
        )

    value = previous[slot]
    if value is None:
        # The value could not be read before the run: a Netlify secret.
        value = _last_written_value(store, ledger_id, slot, run_id, key)
    if value is None:
        return (
            "its previous value is a Netlify secret, which cannot be read back, and envsync "
            "did not write it before this run"
        )
    return RestoreSlot(*slot, op, value, written_value, written_known)


def _last_written_value(
    store: Store, ledger_id: str, slot: LedgerSlot, run_id: str, key: str
) -> SecretValue | None:
    """Return the value envsync wrote to the slot in the last write before run `run_id`."""
    # NOTE: Netlify never returns a secret's value, so a change made by hand between that
    # write and the run goes undetected here. The rollback restores envsync's value instead.
    earlier = store.previous_write(ledger_id, slot[0], slot[1], run_id)
    if earlier is None or earlier[1] is Op.DELETE:
        return None
    written = store.load_snapshot_written(earlier[0], ledger_id, key)
    return written.get(slot) if written is not None else None


def _unreached(
    report: RunReport, targets: Sequence[RunTarget], slots: Mapping[str, list[RestoreSlot]]
) -> list[SkippedSlot]:
    """Skip entries for targets of the run that the rollback run did not reach."""
    reached = {result.target.ledger_id for result in report.results}
    names = {target.ledger_id: target.target for target in targets}
    return [
        SkippedSlot(
            names.get(ledger_id, ledger_id),
            restore.key,
            restore.context,
            "the target is no longer configured, so it was not rolled back",
        )
        for ledger_id, restores in slots.items()
        if ledger_id not in reached
        for restore in restores
    ]


# Planning: pure, from the restore list and the target's current state.


def restore_planner(
    run_id: str, slots: Mapping[str, Sequence[RestoreSlot]]
) -> Callable[[PlanInput], Plan]:
    """Return the engine planner that plans exactly the restore slots of each target."""

    def plan(given: PlanInput) -> Plan:
        return plan_restore(given, slots.get(given.target.ledger_id, ()), run_id)

    return plan


def plan_restore(given: PlanInput, slots: Sequence[RestoreSlot], run_id: str) -> Plan:
    """Plan the rollback of one target: one change or conflict per restore slot."""
    force = given.options.force
    changes: list[Change] = []
    deletions: list[Change] = []
    conflicts: list[Conflict] = []
    rejected: list[Rejection] = []

    for restore in slots:
        variable = given.remote.variables.get(restore.key)
        current = variable.value_for(restore.context) if variable is not None else None
        if not force and _changed_since(given, restore, variable, current):
            conflicts.append(
                Conflict(
                    restore.key,
                    f"changed since run {run_id} wrote it, so it is not rolled back; roll back "
                    "with --force to restore it anyway",
                    restore.context,
                )
            )
            continue

        change = _restore_change(given, restore, variable, current, run_id)
        if change is None:
            continue
        reason = credential_reason(change.new, given.credentials)
        if reason is not None:
            rejected.append(Rejection(restore.key, reason))
            continue
        (deletions if change.op is Op.DELETE else changes).append(change)

    limit = given.options.max_deletions
    if len(deletions) > limit and not force:
        conflicts.append(
            Conflict(
                WHOLE_TARGET,
                f"deleting the {len(deletions)} keys run {run_id} created exceeds "
                f"ENVSYNC_MAX_DELETIONS={limit}, so none is deleted; roll back with --force "
                "to delete them",
            )
        )
    else:
        changes += deletions

    return Plan(
        target=given.target,
        changes=tuple(sorted(changes, key=lambda c: (c.key, c.context or ""))),
        rejected=tuple(rejected),
        conflicts=tuple(conflicts),
    )


def _changed_since(
    given: PlanInput,
    restore: RestoreSlot,
    variable: RemoteVariable | None,
    current: RemoteValue | None,
) -> bool:
    """Check whether the slot no longer contains what the rolled-back run left there."""
    if restore.op is Op.DELETE:
        return current is not None
    if current is None or not restore.written_known or restore.written is None:
        return True
    if current.value is not None:
        return given.hasher.hash(current.value) != given.hasher.hash(restore.written)

    # A secret: the ledger has the hash of what envsync wrote last, and a newer `updated_at`
    # means someone wrote it since.
    entry = given.ledger.get(restore.slot)
    if entry is None or entry.value_hash != given.hasher.hash(restore.written):
        return True
    if variable is None or not variable.updated_at or not entry.updated_at:
        return False
    return variable.updated_at.replace("+00:00", "Z") > entry.updated_at.replace("+00:00", "Z")


def _restore_change(
    given: PlanInput,
    restore: RestoreSlot,
    variable: RemoteVariable | None,
    current: RemoteValue | None,
    run_id: str,
) -> Change | None:
    secret = variable.is_secret if variable is not None else _secret_by_pattern(given, restore)
    if restore.previous is None:
        if current is None:
            return None
        return Change(
            restore.key,
            Op.DELETE,
            restore.context,
            old=current.value,
            secret=secret,
            old_hidden=current.value is None,
            reason=f"created by run {run_id}",
        )

    reason = f"restored from before run {run_id}"
    if current is None:
        return Change(
            restore.key, Op.CREATE, restore.context, None, restore.previous, secret, reason=reason
        )
    if current.value is not None and current.value == restore.previous:
        return Change(
            restore.key, Op.NOOP, restore.context, current.value, restore.previous, secret
        )
    return Change(
        restore.key,
        Op.UPDATE,
        restore.context,
        current.value,
        restore.previous,
        secret,
        old_hidden=current.value is None,
        reason=reason,
    )


def _secret_by_pattern(given: PlanInput, restore: RestoreSlot) -> bool:
    """Decide whether a key that is gone is written back as a secret (NETLIFY_SECRET_KEYS)."""
    if not given.rules.uses_contexts:
        return False
    return any(fnmatch.fnmatchcase(restore.key, pattern) for pattern in given.spec.secret_keys)
