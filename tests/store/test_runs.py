"""The run history: runs, their targets, writes recorded one by one, interrupted runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from envsync.model import Change, Op, Plan, RunMode, TargetRef, TargetResult
from envsync.store import (
    ChangeCounts,
    KeyChange,
    RunStatus,
    RunTrigger,
    Store,
    TargetSummary,
)
from tests.store.processes import finish, start_worker

API = TargetRef("render", "service", "srv-d0abc123def456ghi789", "api")
WEB = TargetRef("netlify", "site", "0b6a3f52-8e8e-4a55-9cf4-2d1a8c3a7d11", "web")


def test_start_run_records_running_run(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.DRY_RUN, actor="ci")

    run = store.get_run(run_id)

    assert run is not None
    assert run.status is RunStatus.RUNNING
    assert run.trigger is RunTrigger.CLI
    assert run.mode is RunMode.DRY_RUN
    assert run.actor == "ci"
    assert run.ended_at is None
    assert run.started_at.tzinfo is not None


def test_run_ids_sort_by_start(store: Store) -> None:
    ids = [store.start_run("api", "enforce") for _ in range(20)]

    assert len(set(ids)) == 20
    assert [run_id[:12] for run_id in ids] == sorted(run_id[:12] for run_id in ids)


def test_actor_is_keyword_only(store: Store) -> None:
    with pytest.raises(TypeError):
        store.start_run(RunTrigger.CLI, "ci", RunMode.ENFORCE)  # type: ignore[call-arg]


def test_unknown_trigger_is_rejected(store: Store) -> None:
    with pytest.raises(ValueError):
        store.start_run("cron", RunMode.ENFORCE)


def test_written_keys_visible_one_by_one(store: Store) -> None:
    run_id = store.start_run(RunTrigger.API, RunMode.ENFORCE)
    store.start_target(run_id, WEB)
    writes = [
        KeyChange("BRIDGE_VERSION", "production", Op.UPDATE),
        KeyChange("BRIDGE_MODE", "production", Op.CREATE),
        KeyChange("SR_OLD", "production", Op.DELETE),
    ]

    for count, write in enumerate(writes, start=1):
        store.record_written(run_id, WEB.ledger_id, write.key, write.context, write.op)
        run = store.get_run(run_id)
        assert run is not None
        assert run.targets[0].written == tuple(writes[:count])


def test_target_started_but_unfinished(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)

    store.start_target(run_id, API)

    run = store.get_run(run_id)
    assert run is not None
    assert run.targets[0].target == "api"
    assert run.targets[0].finished is False


def test_writes_without_start_target_still_listed(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)

    store.record_written(run_id, API.ledger_id, "BRIDGE_VERSION", None, Op.UPDATE)

    run = store.get_run(run_id)
    assert run is not None
    assert run.targets[0].ledger_id == API.ledger_id
    assert run.targets[0].provider == "render"
    assert run.targets[0].written == (KeyChange("BRIDGE_VERSION", None, Op.UPDATE),)


def test_finish_target_records_summary(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)
    store.start_target(run_id, API)
    store.record_written(run_id, API.ledger_id, "BRIDGE_VERSION", None, Op.UPDATE)
    summary = TargetSummary(
        counts=ChangeCounts(create=0, update=1, delete=0, noop=4, rejected=1, conflicts=2),
        changes=(KeyChange("BRIDGE_VERSION", None, Op.UPDATE),),
        errors=("render: rate limited on PUT /v1/services/srv-1/env-vars (HTTP 429)",),
        duration_s=1.5,
        applied=True,
        error_causes=("rate_limited",),
    )

    store.finish_target(run_id, API, summary)

    run = store.get_run(run_id)
    assert run is not None
    target = run.targets[0]
    assert target.finished is True
    assert target.counts == summary.counts
    assert target.changes == summary.changes
    assert target.errors == summary.errors
    assert target.error_causes == ("rate_limited",)
    assert target.duration_s == 1.5
    assert target.applied is True
    assert target.written == (KeyChange("BRIDGE_VERSION", None, Op.UPDATE),)


def test_summary_from_target_result_counts_plan() -> None:
    plan = Plan(
        target=API,
        changes=(
            Change("A_KEY", Op.CREATE),
            Change("B_KEY", Op.UPDATE),
            Change("C_KEY", Op.NOOP),
        ),
    )
    result = TargetResult(
        API, "run", RunMode.DRY_RUN, plan, errors=("boom",), error_causes=("auth",), duration_s=0.25
    )

    summary = TargetSummary.of_result(result)

    assert summary.counts == ChangeCounts(create=1, update=1, noop=1)
    assert summary.changes == (
        KeyChange("A_KEY", None, Op.CREATE),
        KeyChange("B_KEY", None, Op.UPDATE),
    )
    assert summary.errors == ("boom",)
    assert summary.error_causes == ("auth",)


def test_run_with_two_targets(store: Store) -> None:
    run_id = store.start_run(RunTrigger.SCHEDULER, RunMode.DRY_RUN)
    empty = TargetSummary(ChangeCounts(), (), (), 0.1, False)

    store.finish_target(run_id, WEB, empty)
    store.finish_target(run_id, API, empty)

    run = store.get_run(run_id)
    assert run is not None
    assert [target.target for target in run.targets] == ["api", "web"]


def test_finish_run_sets_status_and_end(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)

    store.finish_run(run_id, RunStatus.SUCCEEDED)

    run = store.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED
    assert run.ended_at is not None


def test_finish_run_needs_final_status(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)

    with pytest.raises(ValueError):
        store.finish_run(run_id, RunStatus.RUNNING)


def test_get_unknown_run_is_none(store: Store) -> None:
    assert store.get_run("0" * 24) is None


def test_list_runs_newest_first_with_paging(store: Store) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    ids = [
        store.start_run(RunTrigger.CLI, RunMode.DRY_RUN, now=start + timedelta(minutes=minute))
        for minute in range(5)
    ]

    first_page = store.list_runs(limit=2)
    second_page = store.list_runs(limit=2, offset=2)

    assert [run.id for run in first_page] == [ids[4], ids[3]]
    assert [run.id for run in second_page] == [ids[2], ids[1]]


def test_list_runs_includes_targets(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)
    store.record_written(run_id, API.ledger_id, "BRIDGE_VERSION", None, Op.CREATE)

    (run,) = store.list_runs()

    assert run.targets[0].written == (KeyChange("BRIDGE_VERSION", None, Op.CREATE),)


def test_run_of_dead_process_marked_interrupted(database_url: str, store: Store) -> None:
    worker = start_worker("leave-running", database_url, API.ledger_id)
    run_id = finish(worker).strip()

    marked = store.mark_interrupted_runs()

    run = store.get_run(run_id)
    assert marked == [run_id]
    assert run is not None
    assert run.status is RunStatus.INTERRUPTED
    assert run.ended_at is not None
    assert run.targets[0].written == (KeyChange("BRIDGE_VERSION", None, Op.UPDATE),)


def test_run_of_live_process_not_marked(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)

    marked = store.mark_interrupted_runs()

    run = store.get_run(run_id)
    assert marked == []
    assert run is not None
    assert run.status is RunStatus.RUNNING


def test_run_older_than_cutoff_marked_interrupted(store: Store) -> None:
    long_ago = datetime(2024, 1, 1, tzinfo=UTC)
    old_id = store.start_run(RunTrigger.SCHEDULER, RunMode.ENFORCE, now=long_ago)
    recent_id = store.start_run(RunTrigger.SCHEDULER, RunMode.ENFORCE)

    marked = store.mark_interrupted_runs(older_than=long_ago + timedelta(hours=1))

    recent = store.get_run(recent_id)
    assert marked == [old_id]
    assert recent is not None
    assert recent.status is RunStatus.RUNNING


def test_finished_run_never_marked(store: Store) -> None:
    long_ago = datetime(2024, 1, 1, tzinfo=UTC)
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE, now=long_ago)
    store.finish_run(run_id, RunStatus.FAILED)

    marked = store.mark_interrupted_runs(older_than=datetime.now(UTC))

    run = store.get_run(run_id)
    assert marked == []
    assert run is not None
    assert run.status is RunStatus.FAILED
