"""The run history: runs, what each did per target, and each confirmed write as it happens."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select, update

from envsync.model import Op, RunMode, TargetRef
from envsync.store._base import StoreBase, new_id, upsert_insert
from envsync.store.records import (
    ChangeCounts,
    KeyChange,
    Run,
    RunStatus,
    RunTarget,
    RunTrigger,
    TargetSummary,
)
from envsync.store.schema import run_targets, run_writes, runs

logger = logging.getLogger(__name__)


class RunQueries(StoreBase):
    def start_run(
        self,
        trigger: RunTrigger | str,
        mode: RunMode | str,
        *,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> str:
        """Record a new run as `running` and return its id.

        The run also records this host and process id, so that `mark_interrupted_runs` can
        tell later whether the process that ran it is gone.
        """
        run_id = new_id()
        row = {
            "id": run_id,
            "started_at": now or datetime.now(UTC),
            "ended_at": None,
            "trigger": RunTrigger(trigger).value,
            "actor": actor,
            "mode": RunMode(mode).value,
            "status": RunStatus.RUNNING.value,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        with self._writing("start a run") as connection:
            connection.execute(runs.insert(), row)
        return run_id

    def start_target(self, run_id: str, target: TargetRef) -> None:
        """Record that the run began work on a target, before its first write."""
        row = _target_row(run_id, target, None, finished=False)
        with self._writing("record a run's target") as connection:
            insert = upsert_insert(connection, run_targets)
            connection.execute(
                insert.on_conflict_do_nothing(
                    index_elements=[run_targets.c.run_id, run_targets.c.ledger_id]
                ),
                row,
            )

    def record_written(
        self,
        run_id: str,
        ledger_id: str,
        key: str,
        context: str | None,
        op: Op | str,
        *,
        now: datetime | None = None,
    ) -> None:
        """Record one write the platform confirmed, at once, so that a run killed half way
        still shows what it wrote."""
        row = {
            "run_id": run_id,
            "ledger_id": ledger_id,
            "key": key,
            "context": context,
            "op": Op(op).value,
            "written_at": now or datetime.now(UTC),
        }
        with self._writing("record a write") as connection:
            connection.execute(run_writes.insert(), row)

    def record_writes(
        self,
        run_id: str,
        ledger_id: str,
        writes: Sequence[tuple[str, str | None, Op | str]],
        *,
        now: datetime | None = None,
    ) -> None:
        """Record several confirmed writes `(key, context, op)` in one transaction."""
        if not writes:
            return
        written_at = now or datetime.now(UTC)
        rows = [
            {
                "run_id": run_id,
                "ledger_id": ledger_id,
                "key": key,
                "context": context,
                "op": Op(op).value,
                "written_at": written_at,
            }
            for key, context, op in writes
        ]
        with self._writing("record writes") as connection:
            connection.execute(run_writes.insert(), rows)

    def finish_target(self, run_id: str, target: TargetRef, summary: TargetSummary) -> None:
        """Record what the run did to one target, replacing an earlier record of it."""
        row = _target_row(run_id, target, summary, finished=True)
        with self._writing("record a run's target") as connection:
            insert = upsert_insert(connection, run_targets)
            replaced = {
                name: value for name, value in row.items() if name not in ("run_id", "ledger_id")
            }
            connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[run_targets.c.run_id, run_targets.c.ledger_id],
                    set_=replaced,
                ),
                row,
            )

    def finish_run(
        self, run_id: str, status: RunStatus | str, *, now: datetime | None = None
    ) -> None:
        """Record how a run ended."""
        final = RunStatus(status)
        if final is RunStatus.RUNNING:
            raise ValueError("finish_run needs a final status, not running")

        statement = (
            update(runs)
            .where(runs.c.id == run_id)
            .values(status=final.value, ended_at=now or datetime.now(UTC))
        )
        with self._writing("finish a run") as connection:
            connection.execute(statement)

    def mark_interrupted_runs(
        self, older_than: datetime | None = None, *, now: datetime | None = None
    ) -> list[str]:
        """Mark runs left `running` by a dead process as `interrupted` and return their ids.

        A run counts as left behind when it was started on this host by a process that no
        longer exists, or, with `older_than`, when it started before that time on any host.
        Runs of other hosts need `older_than`, because their processes cannot be checked
        from here.
        """
        query = select(runs.c.id, runs.c.started_at, runs.c.host, runs.c.pid).where(
            runs.c.status == RunStatus.RUNNING.value
        )
        with self._reading("list running runs") as connection:
            candidates = connection.execute(query).all()

        stale = [row.id for row in candidates if _is_left_behind(row, older_than)]
        if not stale:
            return []

        statement = (
            update(runs)
            .where(runs.c.id.in_(stale), runs.c.status == RunStatus.RUNNING.value)
            .values(status=RunStatus.INTERRUPTED.value, ended_at=now or datetime.now(UTC))
            .returning(runs.c.id)
        )
        with self._writing("mark interrupted runs") as connection:
            marked = sorted(connection.execute(statement).scalars())
        if marked:
            logger.warning(
                "marked %d runs left running by a dead process as interrupted", len(marked)
            )
        return marked

    def list_runs(self, limit: int = 50, offset: int = 0) -> list[Run]:
        """Return runs, newest first."""
        query = (
            select(runs)
            .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._reading("list runs") as connection:
            rows = connection.execute(query).all()
            targets = _load_targets(connection, [row.id for row in rows])
        return [_run_from_row(row._mapping, targets.get(row.id, ())) for row in rows]

    def previous_write(
        self, ledger_id: str, key: str, context: str | None, before_run_id: str
    ) -> tuple[str, Op] | None:
        """Return the run and op of the last confirmed write of one key and context that
        came before `before_run_id` first wrote it, or None when there was none.

        Writes are ordered by their row id, which grows with every write recorded.
        """
        slot = (
            run_writes.c.ledger_id == ledger_id,
            run_writes.c.key == key,
            run_writes.c.context.is_(None) if context is None else run_writes.c.context == context,
        )
        first_of_run = (
            select(func.min(run_writes.c.id))
            .where(run_writes.c.run_id == before_run_id, *slot)
            .scalar_subquery()
        )
        query = (
            select(run_writes.c.run_id, run_writes.c.op)
            .where(*slot, run_writes.c.id < first_of_run)
            .order_by(run_writes.c.id.desc())
            .limit(1)
        )
        with self._reading("find an earlier write") as connection:
            row = connection.execute(query).first()
        return None if row is None else (row.run_id, Op(row.op))

    def unfinished_writes(self, ledger_id: str, current_run_id: str) -> list[str]:
        """Return the ids of enforce runs, other than `current_run_id`, that wrote to a target
        after the last apply that completed on it, oldest first.

        Such a run stopped after some of its writes (a failed call, or its process died),
        so what should have followed them, such as a redeploy, may never have happened.
        Runs are ordered by their start time.
        """
        last_completed = (
            select(func.max(runs.c.started_at))
            .select_from(run_targets.join(runs, runs.c.id == run_targets.c.run_id))
            .where(
                run_targets.c.ledger_id == ledger_id,
                run_targets.c.applied.is_(True),
                runs.c.mode == RunMode.ENFORCE.value,
                runs.c.id != current_run_id,
            )
            .scalar_subquery()
        )
        wrote = select(run_writes.c.run_id).where(run_writes.c.ledger_id == ledger_id)
        query = (
            select(runs.c.id)
            .where(
                runs.c.id.in_(wrote),
                runs.c.id != current_run_id,
                or_(last_completed.is_(None), runs.c.started_at > last_completed),
            )
            .order_by(runs.c.started_at, runs.c.id)
        )
        with self._reading("find unfinished writes") as connection:
            return list(connection.execute(query).scalars())

    def get_run(self, run_id: str) -> Run | None:
        """Return one run with its targets, or None when the id is unknown."""
        with self._reading("read a run") as connection:
            row = connection.execute(select(runs).where(runs.c.id == run_id)).first()
            if row is None:
                return None
            targets = _load_targets(connection, [run_id])
        return _run_from_row(row._mapping, targets.get(run_id, ()))


def _is_left_behind(row: Any, older_than: datetime | None) -> bool:
    if older_than is not None and row.started_at < older_than:
        return True
    if row.host != socket.gethostname() or row.pid is None:
        return False
    if row.pid == os.getpid():
        return False
    return not _process_exists(row.pid)


def _process_exists(pid: int) -> bool:
    # NOTE: a recycled process id makes a dead run look alive; `older_than` still catches it.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _target_row(
    run_id: str, target: TargetRef, summary: TargetSummary | None, *, finished: bool
) -> dict[str, Any]:
    counts = summary.counts if summary is not None else ChangeCounts()
    changes = summary.changes if summary is not None else ()
    return {
        "run_id": run_id,
        "ledger_id": target.ledger_id,
        "target": target.name,
        "provider": target.provider,
        "create_count": counts.create,
        "update_count": counts.update,
        "delete_count": counts.delete,
        "noop_count": counts.noop,
        "rejected_count": counts.rejected,
        "conflict_count": counts.conflicts,
        "changes": _dump_changes(changes),
        "errors": json.dumps(list(summary.errors) if summary is not None else []),
        "error_causes": json.dumps(list(summary.error_causes) if summary is not None else []),
        "duration_s": summary.duration_s if summary is not None else None,
        "applied": summary.applied if summary is not None else False,
        "finished": finished,
    }


def _dump_changes(changes: Iterable[KeyChange]) -> str:
    return json.dumps([[change.key, change.context, change.op.value] for change in changes])


def _load_changes(text: str) -> tuple[KeyChange, ...]:
    return tuple(KeyChange(key, context, Op(op)) for key, context, op in json.loads(text))


def _load_targets(connection: Any, run_ids: Sequence[str]) -> dict[str, tuple[RunTarget, ...]]:
    """Load every target of the given runs, including targets known only from their writes."""
    if not run_ids:
        return {}

    written: dict[tuple[str, str], list[KeyChange]] = defaultdict(list)
    write_query = (
        select(run_writes).where(run_writes.c.run_id.in_(run_ids)).order_by(run_writes.c.id)
    )
    for row in connection.execute(write_query):
        change = KeyChange(row.key, row.context, Op(row.op))
        written[(row.run_id, row.ledger_id)].append(change)

    targets: dict[str, list[RunTarget]] = defaultdict(list)
    target_query = (
        select(run_targets)
        .where(run_targets.c.run_id.in_(run_ids))
        .order_by(run_targets.c.run_id, run_targets.c.target)
    )
    for row in connection.execute(target_query):
        writes = tuple(written.pop((row.run_id, row.ledger_id), ()))
        targets[row.run_id].append(_target_from_row(row._mapping, writes))

    for (run_id, ledger_id), unrecorded in sorted(written.items()):
        targets[run_id].append(_unrecorded_target(run_id, ledger_id, tuple(unrecorded)))
    return {run_id: tuple(found) for run_id, found in targets.items()}


def _target_from_row(row: Any, written: tuple[KeyChange, ...]) -> RunTarget:
    counts = ChangeCounts(
        create=row["create_count"],
        update=row["update_count"],
        delete=row["delete_count"],
        noop=row["noop_count"],
        rejected=row["rejected_count"],
        conflicts=row["conflict_count"],
    )
    return RunTarget(
        run_id=row["run_id"],
        ledger_id=row["ledger_id"],
        target=row["target"],
        provider=row["provider"],
        counts=counts,
        changes=_load_changes(row["changes"]),
        written=written,
        errors=tuple(json.loads(row["errors"])),
        error_causes=tuple(json.loads(row["error_causes"])),
        duration_s=row["duration_s"],
        applied=bool(row["applied"]),
        finished=bool(row["finished"]),
    )


def _unrecorded_target(run_id: str, ledger_id: str, written: tuple[KeyChange, ...]) -> RunTarget:
    """Build the record of a target that a run wrote to without recording it first."""
    return RunTarget(
        run_id=run_id,
        ledger_id=ledger_id,
        target=ledger_id,
        provider=ledger_id.partition(":")[0],
        counts=ChangeCounts(),
        changes=(),
        written=written,
        errors=(),
        error_causes=(),
        duration_s=None,
        applied=False,
        finished=False,
    )


def _run_from_row(row: Any, targets: tuple[RunTarget, ...]) -> Run:
    return Run(
        id=row["id"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        trigger=RunTrigger(row["trigger"]),
        actor=row["actor"],
        mode=RunMode(row["mode"]),
        status=RunStatus(row["status"]),
        targets=targets,
    )
