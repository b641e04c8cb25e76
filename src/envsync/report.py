"""Results as JSON-ready dictionaries, in the shape of the original EnvSync API.

One target's result:

    {"provider", "target", "run_id", "mode", "applied",
     "diff": [{"key", "op", "context"?, "from_val", "to_val"}],
     "rejected": [{"key", "reason"}], "conflicts": [...], "warnings": [...],
     "unmanaged": N, "errors": [...]}

`from_val` and `to_val` are masked as `sha:<6 hex> (<N> chars)`, a prefix of the ledger's
keyed hash and the length, so two values can be compared without being shown. A hidden
Netlify secret shows as `(hidden)`. Plain values appear only when `reveal` is true, which
the CLI allows only for a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from envsync.events import problems
from envsync.model import Change, Op, SecretValue, TargetResult

if TYPE_CHECKING:
    from envsync.store.records import KeyChange, Run, RunTarget, Ticket

HIDDEN = "(hidden)"


class Fingerprinter(Protocol):
    def fingerprint(self, value: SecretValue) -> str: ...


def masked(
    value: SecretValue | None, hidden: bool, hasher: Fingerprinter, reveal: bool
) -> str | None:
    if value is None:
        return HIDDEN if hidden else None
    if reveal:
        return value.reveal()
    return hasher.fingerprint(value)


def change_dict(
    change: Change, hasher: Fingerprinter, *, uses_contexts: bool, reveal: bool = False
) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": change.key, "op": change.op.value}
    if uses_contexts:
        entry["context"] = change.context
    entry["from_val"] = masked(change.old, change.old_hidden, hasher, reveal)
    entry["to_val"] = masked(change.new, False, hasher, reveal)
    if change.secret:
        entry["secret"] = True
    if change.reason:
        entry["reason"] = change.reason
    return entry


def target_dict(
    result: TargetResult, hasher: Fingerprinter, *, reveal: bool = False
) -> dict[str, Any]:
    """Build one target's result in the API's shape (values masked unless `reveal`)."""
    uses_contexts = result.target.provider == "netlify"
    plan = result.plan
    pending: Sequence[Change] = plan.pending if plan else ()
    counts = {op.value: plan.count(op) for op in Op} if plan else {}
    return {
        "provider": result.target.provider,
        "target": result.target.name,
        "run_id": result.run_id,
        "mode": result.mode.value,
        "applied": result.applied,
        "diff": [
            change_dict(change, hasher, uses_contexts=uses_contexts, reveal=reveal)
            for change in pending
        ],
        "rejected": [{"key": r.key, "reason": r.reason} for r in plan.rejected] if plan else [],
        "conflicts": [_conflict_dict(c, uses_contexts) for c in plan.conflicts] if plan else [],
        "warnings": [w.message for w in plan.warnings] + list(result.warnings)
        if plan
        else list(result.warnings),
        "unmanaged": plan.unmanaged if plan else 0,
        "skipped_by_filters": plan.skipped_by_filters if plan else 0,
        "counts": counts,
        "written": len(result.written),
        "redeployed": result.redeployed,
        "errors": list(result.errors),
        "duration_s": round(result.duration_s, 3),
    }


def _conflict_dict(conflict: Any, uses_contexts: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": conflict.key, "reason": conflict.reason}
    if uses_contexts:
        entry["context"] = conflict.context
    return entry


def provider_dict(provider: str, mode: str, targets: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Build a provider's response: its one target's object, or a summary of several."""
    if len(targets) == 1:
        return targets[0]
    diff = [dict(entry, target=target["target"]) for target in targets for entry in target["diff"]]
    errors = [
        {"target": target["target"], "error": error}
        for target in targets
        for error in target["errors"]
    ]
    return {
        "provider": provider,
        "mode": mode,
        "applied": bool(targets) and all(target["applied"] for target in targets),
        "diff": diff,
        "errors": errors,
        "targets": list(targets),
    }


def target_ok(entry: dict[str, Any]) -> bool:
    return not (entry["errors"] or entry["rejected"] or entry["conflicts"])


def result_problems(result: TargetResult) -> list[str]:
    return problems(result)


# The run history and tickets, for the API and `--json` alike. None holds a value.


def run_dict(run: Run, *, in_flight: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.id,
        "started_at": iso_time(run.started_at),
        "ended_at": iso_time(run.ended_at),
        "trigger": run.trigger.value,
        "actor": run.actor,
        "mode": run.mode.value,
        "status": run.status.value,
        "targets": [_run_target_dict(target) for target in run.targets],
    }
    if in_flight is not None:
        body["in_flight"] = in_flight
    return body


def _run_target_dict(target: RunTarget) -> dict[str, Any]:
    return {
        "target": target.target,
        "provider": target.provider,
        "ledger_id": target.ledger_id,
        "counts": asdict(target.counts),
        "changes": [_key_change_dict(change) for change in target.changes],
        "written": [_key_change_dict(change) for change in target.written],
        "errors": list(target.errors),
        "error_causes": list(target.error_causes),
        "duration_s": target.duration_s,
        "applied": target.applied,
        "finished": target.finished,
    }


def _key_change_dict(change: KeyChange) -> dict[str, Any]:
    return {"key": change.key, "context": change.context, "op": change.op.value}


def ticket_dict(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "target": ticket.target,
        "cause": ticket.cause,
        "opened": iso_time(ticket.opened),
        "last_seen": iso_time(ticket.last_seen),
        "count": ticket.count,
        "diagnosis": ticket.diagnosis,
        "next_step": ticket.next_step,
        "closed": iso_time(ticket.closed),
        "open": ticket.is_open,
    }


def iso_time(moment: datetime | None, timespec: str = "auto") -> str | None:
    """Format a UTC time as ISO 8601 with a Z suffix; None stays None."""
    if moment is None:
        return None
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")
