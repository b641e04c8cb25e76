"""Tickets opened, bumped and closed per cause, from real runs against the emulators."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

import pytest

from envsync.emulators import EmulatorSet
from envsync.engine import Engine, RunRequest
from envsync.model import Change, Op, Plan, RunMode, TargetRef, TargetResult
from envsync.store import Ticket
from envsync.tickets import TicketHook, cleared_causes
from tests.ops_support import (
    CANARY,
    RENDER_LEDGER_ID,
    environ_for,
    make_engine,
    run,
    seed_render,
    write_canonical,
)

ENV_VARS_READ = {"method": "GET", "path": "/v1/services/[^/]+/env-vars$"}


def _engine(emulators: EmulatorSet, folder: Path, **extra: str) -> Engine:
    environ = environ_for(emulators, folder, ENVSYNC_TARGETS="render", **extra)
    engine = make_engine(environ, folder)
    engine.result_hooks.append(TicketHook(engine.store()))
    return engine


def _open(engine: Engine) -> list[Ticket]:
    return engine.store().list_tickets(open_only=True)


def _assert_no_value(ticket: Ticket) -> None:
    assert CANARY not in repr(asdict(ticket))


def test_read_401_opens_auth_ticket_with_next_step(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, f"BRIDGE_TOKEN={CANARY}\n")
    engine = _engine(emulators, tmp_path)
    emulators.add_fault("render", {"match": ENV_VARS_READ, "times": 1, "fault": {"status": 401}})

    run(engine, RunMode.DRY_RUN)

    [ticket] = _open(engine)
    assert (ticket.target, ticket.cause, ticket.count) == ("render/api", "auth", 1)
    assert "401" in ticket.diagnosis
    assert "envsync discover" in ticket.next_step
    _assert_no_value(ticket)


def test_recurring_auth_failure_bumps_one_ticket(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, f"BRIDGE_TOKEN={CANARY}\n")
    engine = _engine(emulators, tmp_path)
    emulators.add_fault("render", {"match": ENV_VARS_READ, "times": 2, "fault": {"status": 401}})

    first = run(engine, RunMode.DRY_RUN)
    second = run(engine, RunMode.DRY_RUN)

    [ticket] = _open(engine)
    assert ticket.count == 2
    assert ticket.last_seen > ticket.opened
    assert first.run_id != second.run_id


def test_successful_run_closes_auth_ticket(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, f"BRIDGE_TOKEN={CANARY}\n")
    engine = _engine(emulators, tmp_path)
    emulators.add_fault("render", {"match": ENV_VARS_READ, "times": 1, "fault": {"status": 401}})
    run(engine, RunMode.DRY_RUN)

    run(engine, RunMode.ENFORCE)

    assert _open(engine) == []
    [closed] = engine.store().list_tickets()
    assert closed.closed is not None


def test_missing_token_opens_auth_ticket_closed_once_found(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    write_canonical(tmp_path, "BRIDGE_A=1\n")
    environ = environ_for(emulators, tmp_path, ENVSYNC_TARGETS="render")
    del environ["RENDER_API_TOKEN"]
    without_token = make_engine(environ, tmp_path)
    without_token.result_hooks.append(TicketHook(without_token.store()))

    run(without_token, RunMode.DRY_RUN)

    [ticket] = _open(without_token)
    assert (ticket.target, ticket.cause) == ("render/auto", "auth")
    assert "RENDER_API_TOKEN" in ticket.next_step
    run(_engine(emulators, tmp_path), RunMode.DRY_RUN)
    assert _open(without_token) == []


def test_endless_429_opens_rate_limited_ticket(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, f"BRIDGE_TOKEN={CANARY}\n")
    engine = _engine(emulators, tmp_path, ENVSYNC_MAX_RETRIES="1")
    fault = {"status": 429, "headers": {"Retry-After": "0"}}
    emulators.add_fault("render", {"match": ENV_VARS_READ, "times": 50, "fault": fault})

    run(engine, RunMode.ENFORCE)

    [ticket] = _open(engine)
    assert ticket.cause == "rate_limited"
    assert "429" in ticket.diagnosis
    assert "ENVSYNC_MAX_RETRIES" in ticket.next_step
    _assert_no_value(ticket)


def test_500_on_third_write_opens_partial_apply_ticket(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    write_canonical(tmp_path, "".join(f"BRIDGE_{k}={CANARY}-{k}\n" for k in "ABCD"))
    # One request at a time, so the writes happen in key order and the 500 on the third
    # stops the fourth.
    engine = _engine(emulators, tmp_path, RENDER_WRITE_MODE="per-key", ENVSYNC_CONCURRENCY="1")
    third_write = {"method": "PUT", "path": "/env-vars/BRIDGE_C$"}
    emulators.add_fault("render", {"match": third_write, "times": 10, "fault": {"status": 500}})

    report = run(engine, RunMode.ENFORCE)

    [result] = report.results
    assert [change.key for change in result.written] == ["BRIDGE_A", "BRIDGE_B", "BRIDGE_D"]
    [ticket] = _open(engine)
    assert ticket.cause == "partial_apply"
    assert (
        "3 changes were written before it stopped: BRIDGE_A, BRIDGE_B, BRIDGE_D" in ticket.diagnosis
    )
    assert "envsync apply --target render/api" in ticket.next_step
    assert f"envsync runs show {report.run_id}" in ticket.next_step
    _assert_no_value(ticket)


def test_rerun_after_partial_apply_converges_and_closes(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    write_canonical(tmp_path, "".join(f"BRIDGE_{k}={CANARY}-{k}\n" for k in "ABCD"))
    # One request at a time, so the writes happen in key order and the 500 on the third
    # stops the fourth.
    engine = _engine(emulators, tmp_path, RENDER_WRITE_MODE="per-key", ENVSYNC_CONCURRENCY="1")
    third_write = {"method": "PUT", "path": "/env-vars/BRIDGE_C$"}
    emulators.add_fault("render", {"match": third_write, "times": 3, "fault": {"status": 500}})
    run(engine, RunMode.ENFORCE)

    second = run(engine, RunMode.ENFORCE)

    assert [change.key for change in second.results[0].written] == ["BRIDGE_C"]
    assert _open(engine) == []


def test_read_timeout_opens_read_failed_ticket(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_A=1\n")
    engine = _engine(emulators, tmp_path, ENVSYNC_MAX_RETRIES="1")
    emulators.add_fault("render", {"match": ENV_VARS_READ, "times": 10, "fault": {"status": 503}})

    run(engine, RunMode.ENFORCE)

    [ticket] = _open(engine)
    assert ticket.cause == "read_failed"
    assert "nothing was written" in ticket.diagnosis
    assert "envsync plan --target render/api" in ticket.next_step


def test_scheduled_dry_run_drift_opens_ticket_naming_keys(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    seed_render(emulators, {"BRIDGE_OLD": "1"})
    write_canonical(tmp_path, f"BRIDGE_NEW={CANARY}\nBRIDGE_OLD=2\n")
    engine = _engine(emulators, tmp_path)

    run(engine, RunMode.DRY_RUN, trigger="scheduler")

    [ticket] = _open(engine)
    assert ticket.cause == "drift"
    assert "1 to create (BRIDGE_NEW), 1 to update (BRIDGE_OLD)" in ticket.diagnosis
    assert "envsync apply --target render/api" in ticket.next_step
    _assert_no_value(ticket)


def test_manual_dry_run_drift_opens_no_ticket(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_NEW=1\n")
    engine = _engine(emulators, tmp_path)

    run(engine, RunMode.DRY_RUN, trigger="cli")

    assert _open(engine) == []


def test_apply_closes_drift_ticket(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_NEW=1\n")
    engine = _engine(emulators, tmp_path)
    run(engine, RunMode.DRY_RUN, trigger="scheduler")

    run(engine, RunMode.ENFORCE, trigger="cli")

    assert _open(engine) == []


def test_scheduled_dry_run_without_drift_closes_drift_ticket(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    write_canonical(tmp_path, "BRIDGE_NEW=1\n")
    engine = _engine(emulators, tmp_path)
    run(engine, RunMode.DRY_RUN, trigger="scheduler")
    seed_render(emulators, {"BRIDGE_NEW": "1"})

    run(engine, RunMode.DRY_RUN, trigger="scheduler")

    assert _open(engine) == []


def test_deletion_limit_opens_conflict_ticket(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_KEEP=1\nBRIDGE_X=1\nBRIDGE_Y=1\n")
    engine = _engine(emulators, tmp_path, ENVSYNC_ALLOW_DELETIONS="true")
    run(engine, RunMode.ENFORCE)
    write_canonical(tmp_path, "BRIDGE_KEEP=1\n")
    limited = _engine(
        emulators, tmp_path, ENVSYNC_ALLOW_DELETIONS="true", ENVSYNC_MAX_DELETIONS="1"
    )

    run(limited, RunMode.ENFORCE)

    [ticket] = _open(limited)
    assert ticket.cause == "conflict"
    assert "ENVSYNC_MAX_DELETIONS=1" in ticket.diagnosis
    assert "apply with --force after checking the deletions" in ticket.next_step


def test_reserved_key_opens_rejected_ticket(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "SITE_NAME=x\nBRIDGE_A=1\n")
    environ = environ_for(
        emulators, tmp_path, ENVSYNC_TARGETS="netlify", ENVSYNC_INCLUDE_PREFIXES=""
    )
    engine = make_engine(environ, tmp_path)
    engine.result_hooks.append(TicketHook(engine.store()))

    run(engine, RunMode.ENFORCE)

    [ticket] = _open(engine)
    assert (ticket.target, ticket.cause) == ("netlify/web", "rejected")
    assert "SITE_NAME" in ticket.diagnosis
    assert "canonical source" in ticket.next_step


def test_lock_timeout_opens_locked_ticket(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_A=1\n")
    engine = _engine(emulators, tmp_path)

    async def apply_while_locked() -> None:
        async with engine.locks().hold(RENDER_LEDGER_ID, None):
            await engine.run(RunRequest(mode=RunMode.ENFORCE, lock_timeout_s=0.2))

    asyncio.run(apply_while_locked())

    [ticket] = _open(engine)
    assert ticket.cause == "locked"
    assert "envsync runs" in ticket.next_step


# Which causes a result disproves, without a store.

TARGET = TargetRef("render", "service", "srv-1", "render/api")
PENDING = (Change("BRIDGE_A", Op.CREATE),)


def _result(mode: RunMode, plan: Plan | None, *, applied: bool = False) -> TargetResult:
    return TargetResult(TARGET, "run-1", mode, plan, applied=applied)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (_result(RunMode.ENFORCE, None), set()),
        (_result(RunMode.ENFORCE, Plan(TARGET, PENDING), applied=True), None),
        (
            _result(RunMode.DRY_RUN, Plan(TARGET, PENDING)),
            {"auth", "read_failed", "config", "rejected", "conflict"},
        ),
        (
            _result(RunMode.DRY_RUN, Plan(TARGET, ())),
            {"auth", "read_failed", "config", "rejected", "conflict", "drift"},
        ),
    ],
    ids=["failed-before-plan", "applied-ok", "dry-run-with-drift", "dry-run-clean"],
)
def test_cleared_causes_per_result(result: TargetResult, expected: set[str] | None) -> None:
    assert cleared_causes(result) == expected
