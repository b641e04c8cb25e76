"""Tickets: diagnostic records that open when a run finds drift or a provider fails.

`TicketHook` is an engine result hook. For every target's result it works out the causes
the result shows and keeps one open ticket per target and cause in the store, bumped
(count and last-seen time) each time the cause recurs:

    drift          a scheduled dry-run found pending changes
    auth           the platform rejected the token (401, 403), or no token was found
    rate_limited   429 responses continued past every retry
    partial_apply  an apply stopped after some writes, or a write's outcome is unknown
    read_failed    the target could not be read completely (also timeouts and 5xx)
    conflict       a change that a person must decide on
    rejected       a canonical key the platform forbids
    locked         another apply held the target's lock past the timeout

Any other cause (a configuration error, say) gets a ticket under its own name.

A later result closes what it disproves. An enforce run that succeeds closes every open
ticket of its target. A run that read and planned the target closes `auth` and
`read_failed`, `rejected` and `conflict` when its plan has none, and `drift` when it applied
the changes or when a dry-run finds none.

A diagnosis says what happened, with the error text and key names, never a value; the
next step says what the user can check or run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from envsync.model import Change, Op, RunMode, TargetRef, TargetResult

if TYPE_CHECKING:
    from envsync.engine import RunRequest
    from envsync.store import Store

logger = logging.getLogger(__name__)

DRIFT = "drift"
AUTH = "auth"
RATE_LIMITED = "rate_limited"
PARTIAL_APPLY = "partial_apply"
READ_FAILED = "read_failed"
CONFLICT = "conflict"
REJECTED = "rejected"
LOCKED = "locked"
CONFIG = "config"

# Error causes of a failed read, as `EnvsyncError.cause` names them. A provider failure
# during writes is reported as partial_apply by the engine, so these come from reads.
READ_CAUSES = frozenset({READ_FAILED, "provider_unavailable", "unexpected_response", "not_found"})

# How many key names a diagnosis lists before it only counts the rest.
LISTED_KEYS = 10

PROVIDER_TITLES = {"render": "Render", "netlify": "Netlify"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One cause that a target's result shows, with its diagnosis and next step."""

    cause: str
    diagnosis: str
    next_step: str


class TicketHook:
    """An engine result hook that opens, bumps and closes tickets in the store."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._clock = clock or (lambda: datetime.now(UTC))

    async def __call__(self, result: TargetResult, request: RunRequest) -> None:
        findings = diagnose(result, request.trigger)
        found = {finding.cause for finding in findings}
        cleared = cleared_causes(result)
        await asyncio.to_thread(self._save, result.target, findings, cleared, found)

    def _save(
        self,
        target: TargetRef,
        findings: Sequence[Finding],
        cleared: set[str] | None,
        found: set[str],
    ) -> None:
        now = self._clock()
        for finding in findings:
            ticket = self._store.open_or_bump_ticket(
                target.name, finding.cause, finding.diagnosis, finding.next_step, now
            )
            logger.info(
                "ticket %s for %s: %s, seen %d times",
                ticket.id,
                target.name,
                ticket.cause,
                ticket.count,
            )

        if cleared is not None:
            cleared = cleared - found
            if not cleared:
                return
        for name in _names_of(target):
            closed = self._store.close_tickets(name, cleared, now)
            if closed:
                logger.info("closed %d tickets of %s", closed, name)


def diagnose(result: TargetResult, trigger: str) -> list[Finding]:
    """Return the causes one target's result shows, one finding per cause."""
    findings: dict[str, Finding] = {}
    errors_by_cause: dict[str, list[str]] = {}
    for error, cause in zip(result.errors, result.error_causes, strict=False):
        errors_by_cause.setdefault(_ticket_cause(cause), []).append(error)

    for cause, errors in errors_by_cause.items():
        findings[cause] = _error_finding(result, cause, "; ".join(errors))

    plan = result.plan
    if plan is not None and plan.rejected:
        findings[REJECTED] = _rejected_finding(result)
    if plan is not None and plan.conflicts:
        findings[CONFLICT] = _conflict_finding(result)
    scheduled_dry_run = trigger == "scheduler" and result.mode is RunMode.DRY_RUN
    if scheduled_dry_run and plan is not None and plan.has_changes:
        findings[DRIFT] = _drift_finding(result)
    return list(findings.values())


def cleared_causes(result: TargetResult) -> set[str] | None:
    """Return the causes a result disproves, or None when it disproves every cause."""
    plan = result.plan
    if plan is None:
        return set()

    applied = result.mode is RunMode.ENFORCE and result.applied
    if applied and result.ok:
        return None

    # A plan exists, so the target resolved, its token worked and its read completed.
    cleared = {AUTH, READ_FAILED, CONFIG}
    if not plan.rejected:
        cleared.add(REJECTED)
    if not plan.conflicts:
        cleared.add(CONFLICT)
    if applied:
        cleared |= {DRIFT, PARTIAL_APPLY, RATE_LIMITED, LOCKED}
    elif not plan.has_changes:
        cleared.add(DRIFT)
    return cleared


def _ticket_cause(error_cause: str) -> str:
    if error_cause in READ_CAUSES:
        return READ_FAILED
    return error_cause


def _names_of(target: TargetRef) -> list[str]:
    """Return the target's name and the names it has before it is resolved.

    A target that failed before resolution (no token, or `auto` with several candidates)
    is named after its selector, such as `render/auto`, so its tickets are closed under
    those names once the resolved target succeeds.
    """
    prefix = "render-group" if target.kind == "env_group" else target.provider
    names = [target.name, f"{prefix}/{target.id}", f"{prefix}/auto"]
    return list(dict.fromkeys(names))


# Diagnoses and next steps, per cause.


def _title(target: TargetRef) -> str:
    return PROVIDER_TITLES.get(target.provider, target.provider)


def _error_finding(result: TargetResult, cause: str, error: str) -> Finding:
    target = result.target
    name = target.name
    title = _title(target)
    builders: dict[str, Callable[[], tuple[str, str]]] = {
        AUTH: lambda: (
            f"{title} rejected envsync's API token for {name}, or no token was found: {error}",
            f"check the {title} token that `envsync discover` reports (set "
            f"{target.provider.upper()}_API_TOKEN if it finds none) and that it can reach "
            f"{name}, then run `envsync plan --target {name}`",
        ),
        RATE_LIMITED: lambda: (
            f"{title} kept answering 429 Too Many Requests for {name} after every retry: "
            f"{error}{_written_note(result.written)}",
            f"wait for {title}'s rate-limit window to pass, then run `envsync apply --target "
            f"{name}`: it writes only what is still missing. If this recurs, raise "
            "ENVSYNC_MAX_RETRIES or ENVSYNC_RETRY_MAX_S",
        ),
        PARTIAL_APPLY: lambda: (
            f"the apply to {name} stopped before it finished: {error}"
            f"{_written_note(result.written)}",
            f"run `envsync apply --target {name}` to finish: it reads the target again and "
            f"writes only what is still missing. `envsync runs show {result.run_id}` lists "
            "what this run wrote",
        ),
        READ_FAILED: lambda: (
            f"reading the variables of {name} failed, so nothing was written: {error}",
            f"check that {title} is reachable and that {name} still exists, then run "
            f"`envsync plan --target {name}`",
        ),
        LOCKED: lambda: (
            f"another apply of {name} held its lock past the timeout, so this run wrote "
            f"nothing: {error}",
            "run `envsync runs` to find the apply that is still running, and retry when it "
            "has finished",
        ),
    }
    builder = builders.get(cause)
    if builder is None:
        return Finding(
            cause,
            f"the run failed on {name} ({cause}): {error}",
            f"fix what the error names, then run `envsync plan --target {name}`",
        )
    diagnosis, next_step = builder()
    return Finding(cause, diagnosis, next_step)


def _rejected_finding(result: TargetResult) -> Finding:
    assert result.plan is not None
    target = result.target
    rejected = result.plan.rejected
    listed = _listed([f"{r.key} ({r.reason})" for r in rejected])
    return Finding(
        REJECTED,
        f"{_title(target)} forbids {len(rejected)} keys of the canonical set on "
        f"{target.name}, so they were not synced: {listed}",
        "rename or remove those keys in the canonical source, or leave them out with "
        "ENVSYNC_EXCLUDE_PREFIXES",
    )


def _conflict_finding(result: TargetResult) -> Finding:
    assert result.plan is not None
    name = result.target.name
    conflicts = result.plan.conflicts
    listed = _listed(
        [f"{c.key}{f' ({c.context})' if c.context else ''}: {c.reason}" for c in conflicts]
    )
    reasons = " ".join(conflict.reason for conflict in conflicts)
    steps = []
    if "ENVSYNC_MAX_DELETIONS" in reasons:
        steps.append(
            f"apply with --force after checking the deletions with `envsync plan --target {name}`"
        )
    if "--convert-secrets" in reasons:
        steps.append("apply with --convert-secrets if those keys should become secrets")
    steps.append(
        f"resolve the other keys by hand on {_title(result.target)} or in the canonical "
        f"source, then run `envsync plan --target {name}`"
    )
    return Finding(
        CONFLICT,
        f"{len(conflicts)} changes on {name} need a person's decision: {listed}",
        "; ".join(steps),
    )


def _drift_finding(result: TargetResult) -> Finding:
    assert result.plan is not None
    name = result.target.name
    pending = result.plan.pending
    parts = [
        f"{len(changes)} to {op.value} ({_listed(sorted({c.key for c in changes}))})"
        for op, changes in _by_op(pending)
    ]
    deletions = result.plan.count(Op.DELETE)
    next_step = f"review the changes with `envsync plan --target {name}`, then run "
    next_step += f"`envsync apply --target {name}`"
    if deletions:
        next_step += f" (it deletes {deletions} keys)"
    return Finding(
        DRIFT,
        f"a scheduled dry-run found {len(pending)} pending changes on {name}: {', '.join(parts)}",
        next_step,
    )


def _by_op(changes: Iterable[Change]) -> list[tuple[Op, list[Change]]]:
    grouped: dict[Op, list[Change]] = {}
    for change in changes:
        grouped.setdefault(change.op, []).append(change)
    return [(op, grouped[op]) for op in (Op.CREATE, Op.UPDATE, Op.DELETE) if op in grouped]


def _written_note(written: Sequence[Change]) -> str:
    if not written:
        return ". No change was written"
    keys = _listed(sorted({change.key for change in written}))
    return f". {len(written)} changes were written before it stopped: {keys}"


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:LISTED_KEYS])
    rest = len(names) - LISTED_KEYS
    if rest > 0:
        return f"{shown} and {rest} more"
    return shown
