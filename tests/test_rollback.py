"""Rollback against the emulators: exactly the previous values come back, checked in the
emulator's own state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from envsync.emulators import EmulatorSet
from envsync.engine import Engine
from envsync.errors import RollbackError
from envsync.model import Op, RunMode
from envsync.rollback import RollbackReport, rollback
from envsync.store import RunTrigger
from tests.ops_support import (
    ALL_SCOPES,
    CANARY,
    environ_for,
    make_engine,
    netlify_values,
    render_vars,
    run,
    seed_netlify,
    seed_render,
    write_canonical,
)

SEEDED = {"BRIDGE_A": "old-a", "DATABASE_URL": "unmanaged"}
SECRET_CONTEXTS = ("production", "deploy-preview", "branch-deploy")


def _render_engine(emulators: EmulatorSet, folder: Path, **extra: str) -> Engine:
    return make_engine(environ_for(emulators, folder, ENVSYNC_TARGETS="render", **extra), folder)


def _netlify_engine(emulators: EmulatorSet, folder: Path, **extra: str) -> Engine:
    environ = environ_for(
        emulators, folder, ENVSYNC_TARGETS="netlify", NETLIFY_SECRET_KEYS="*_TOKEN", **extra
    )
    return make_engine(environ, folder)


def _rollback(
    engine: Engine, run_id: str, *, confirm: bool = True, force: bool = False
) -> RollbackReport:
    return asyncio.run(rollback(engine, run_id, confirm=confirm, force=force, actor="tester"))


def _applied_run(emulators: EmulatorSet, folder: Path, **extra: str) -> tuple[Engine, str]:
    """Seed Render, then apply a run that updates BRIDGE_A and creates BRIDGE_B."""
    seed_render(emulators, SEEDED)
    write_canonical(folder, f"BRIDGE_A=new-a\nBRIDGE_B={CANARY}\n")
    engine = _render_engine(emulators, folder, **extra)
    report = run(engine)
    assert report.ok
    return engine, report.run_id


def test_rollback_restores_exactly_the_previous_values(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    engine, run_id = _applied_run(emulators, tmp_path)

    outcome = _rollback(engine, run_id)

    assert outcome.ok
    assert render_vars(emulators) == SEEDED


def test_rollback_plan_changes_exactly_the_run_keys(emulators: EmulatorSet, tmp_path: Path) -> None:
    engine, run_id = _applied_run(emulators, tmp_path)

    outcome = _rollback(engine, run_id, confirm=False)

    assert outcome.report is not None
    [result] = outcome.report.results
    assert result.plan is not None
    ops = {(change.key, change.op) for change in result.plan.pending}
    assert ops == {("BRIDGE_A", Op.UPDATE), ("BRIDGE_B", Op.DELETE)}
    assert render_vars(emulators) == {**SEEDED, "BRIDGE_A": "new-a", "BRIDGE_B": CANARY}


def test_rollback_is_recorded_as_a_run(emulators: EmulatorSet, tmp_path: Path) -> None:
    engine, run_id = _applied_run(emulators, tmp_path)

    outcome = _rollback(engine, run_id)

    assert outcome.rollback_run_id is not None
    recorded = engine.store().get_run(outcome.rollback_run_id)
    assert recorded is not None
    assert (recorded.trigger, recorded.mode, recorded.actor) == (
        RunTrigger.ROLLBACK,
        RunMode.ENFORCE,
        "tester",
    )


def test_rollback_of_a_rollback_restores_the_run(emulators: EmulatorSet, tmp_path: Path) -> None:
    engine, run_id = _applied_run(emulators, tmp_path)
    first = _rollback(engine, run_id)
    assert first.rollback_run_id is not None

    _rollback(engine, first.rollback_run_id)

    assert render_vars(emulators) == {**SEEDED, "BRIDGE_A": "new-a", "BRIDGE_B": CANARY}


def test_key_changed_since_the_run_is_a_conflict(emulators: EmulatorSet, tmp_path: Path) -> None:
    engine, run_id = _applied_run(emulators, tmp_path)
    seed_render(emulators, {**SEEDED, "BRIDGE_A": "edited", "BRIDGE_B": CANARY})

    outcome = _rollback(engine, run_id)

    assert not outcome.ok
    assert outcome.report is not None
    [result] = outcome.report.results
    assert result.plan is not None
    assert [conflict.key for conflict in result.plan.conflicts] == ["BRIDGE_A"]
    assert render_vars(emulators) == {**SEEDED, "BRIDGE_A": "edited"}


def test_force_restores_a_key_changed_since(emulators: EmulatorSet, tmp_path: Path) -> None:
    engine, run_id = _applied_run(emulators, tmp_path)
    seed_render(emulators, {**SEEDED, "BRIDGE_A": "edited", "BRIDGE_B": "edited-too"})

    outcome = _rollback(engine, run_id, force=True)

    assert outcome.ok
    assert render_vars(emulators) == SEEDED


def test_created_key_changed_since_is_not_deleted(emulators: EmulatorSet, tmp_path: Path) -> None:
    engine, run_id = _applied_run(emulators, tmp_path)
    seed_render(emulators, {**SEEDED, "BRIDGE_A": "new-a", "BRIDGE_B": "edited"})

    _rollback(engine, run_id)

    assert render_vars(emulators) == {**SEEDED, "BRIDGE_B": "edited"}


def test_deleting_created_keys_respects_max_deletions(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    write_canonical(tmp_path, "BRIDGE_X=1\nBRIDGE_Y=2\nBRIDGE_Z=3\n")
    engine = _render_engine(emulators, tmp_path, ENVSYNC_MAX_DELETIONS="2")
    run_id = run(engine).run_id

    limited = _rollback(engine, run_id)
    forced = _rollback(engine, run_id, force=True)

    assert not limited.ok
    assert forced.ok
    assert render_vars(emulators) == {}


def test_per_key_write_mode_rolls_back_too(emulators: EmulatorSet, tmp_path: Path) -> None:
    engine, run_id = _applied_run(emulators, tmp_path, RENDER_WRITE_MODE="per-key")

    _rollback(engine, run_id)

    assert render_vars(emulators) == SEEDED


def test_netlify_secret_restored_from_last_written_value(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    write_canonical(tmp_path, "BRIDGE_API_TOKEN=first-secret\nBRIDGE_PLAIN=1\n")
    engine = _netlify_engine(emulators, tmp_path)
    run(engine)
    write_canonical(tmp_path, "BRIDGE_API_TOKEN=second-secret\nBRIDGE_PLAIN=2\n")
    second = run(engine)

    outcome = _rollback(engine, second.run_id)

    assert outcome.ok
    values = netlify_values(emulators)
    assert {values["BRIDGE_API_TOKEN"][context] for context in SECRET_CONTEXTS} == {"first-secret"}
    assert values["BRIDGE_PLAIN"] == {"all": "1"}


def test_netlify_secret_never_written_before_is_skipped(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    seed_netlify(
        emulators,
        [
            {
                "key": "BRIDGE_API_TOKEN",
                "scopes": ["builds", "functions", "runtime"],
                "is_secret": True,
                "values": [{"context": c, "value": "set-by-hand"} for c in SECRET_CONTEXTS],
            },
            {
                "key": "BRIDGE_PLAIN",
                "scopes": ALL_SCOPES,
                "is_secret": False,
                "values": [{"context": "all", "value": "1"}],
            },
        ],
    )
    write_canonical(tmp_path, "BRIDGE_API_TOKEN=new-secret\nBRIDGE_PLAIN=2\n")
    engine = _netlify_engine(emulators, tmp_path)
    run_id = run(engine).run_id

    outcome = _rollback(engine, run_id)

    [skipped] = outcome.skipped
    assert (skipped.key, skipped.context) == ("BRIDGE_API_TOKEN", "all")
    assert "cannot be read back" in skipped.reason
    values = netlify_values(emulators)
    assert values["BRIDGE_PLAIN"] == {"all": "1"}
    assert values["BRIDGE_API_TOKEN"]["production"] == "new-secret"


def test_netlify_secret_changed_on_platform_is_a_conflict(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    write_canonical(tmp_path, "BRIDGE_API_TOKEN=first-secret\n")
    engine = _netlify_engine(emulators, tmp_path)
    run(engine)
    write_canonical(tmp_path, "BRIDGE_API_TOKEN=second-secret\n")
    second = run(engine)
    state = emulators.state("netlify")
    variable = state["sites"][0]["env"][0]
    variable["values"] = [{"context": c, "value": "by-hand"} for c in SECRET_CONTEXTS]
    variable["updated_at"] = "2999-01-01T00:00:00.000Z"
    emulators.seed({"netlify": state})

    outcome = _rollback(engine, second.run_id)

    assert not outcome.ok
    assert netlify_values(emulators)["BRIDGE_API_TOKEN"]["production"] == "by-hand"


def test_without_snapshot_key_rollback_says_why(emulators: EmulatorSet, tmp_path: Path) -> None:
    _, run_id = _applied_run(emulators, tmp_path)
    engine = _render_engine(emulators, tmp_path, ENVSYNC_SNAPSHOT_KEY="")

    with pytest.raises(RollbackError) as raised:
        _rollback(engine, run_id)

    assert "ENVSYNC_SNAPSHOT_KEY is not set" in str(raised.value)


def test_run_taken_without_snapshot_key_is_skipped(emulators: EmulatorSet, tmp_path: Path) -> None:
    _, run_id = _applied_run(emulators, tmp_path, ENVSYNC_SNAPSHOT_KEY="")
    engine = _render_engine(emulators, tmp_path)

    outcome = _rollback(engine, run_id)

    assert outcome.report is None
    assert {item.key for item in outcome.skipped} == {"BRIDGE_A", "BRIDGE_B"}
    assert "ENVSYNC_SNAPSHOT_KEY was not set when it ran" in outcome.skipped[0].reason
    assert render_vars(emulators)["BRIDGE_A"] == "new-a"


@pytest.mark.parametrize(
    ("mode", "run_id", "message"),
    [
        (None, "0000000000000000000000ff", "not found"),
        (RunMode.DRY_RUN, None, "was a dry-run"),
    ],
    ids=["unknown-run", "dry-run"],
)
def test_runs_that_cannot_be_rolled_back(
    emulators: EmulatorSet, tmp_path: Path, mode: RunMode | None, run_id: str | None, message: str
) -> None:
    write_canonical(tmp_path, "BRIDGE_A=1\n")
    engine = _render_engine(emulators, tmp_path)
    if mode is not None:
        run_id = run(engine, mode).run_id
    assert run_id is not None

    with pytest.raises(RollbackError) as raised:
        _rollback(engine, run_id)

    assert message in str(raised.value)


def test_rollback_output_holds_no_value(emulators: EmulatorSet, tmp_path: Path) -> None:
    engine, run_id = _applied_run(emulators, tmp_path)

    outcome = _rollback(engine, run_id, confirm=False)

    assert CANARY not in repr(outcome)
