"""The task registry a host application uses to trigger envsync's work."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from envsync.autonomy import TaskRegistry, register_envsync_tasks
from envsync.emulators import EmulatorSet
from envsync.engine import RunReport
from envsync.model import RunMode, SecretValue
from tests.ops_support import environ_for, make_engine, render_vars, write_canonical


def _registry(emulators: EmulatorSet, folder: Path, mode: str) -> TaskRegistry:
    environ = environ_for(emulators, folder, ENVSYNC_TARGETS="render", ENVSYNC_MODE=mode)
    registry = TaskRegistry()
    register_envsync_tasks(registry, make_engine(environ, folder))
    return registry


def test_sync_task_enforces_in_enforce_mode(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_A=1\n")
    registry = _registry(emulators, tmp_path, "enforce")

    report = asyncio.run(registry.trigger("envsync.sync"))

    assert isinstance(report, RunReport)
    assert report.mode is RunMode.ENFORCE
    assert render_vars(emulators) == {"BRIDGE_A": "1"}


def test_sync_task_only_plans_in_dry_run_mode(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_A=1\n")
    registry = _registry(emulators, tmp_path, "dry-run")

    report = asyncio.run(registry.trigger("envsync.sync"))

    assert report.has_changes
    assert render_vars(emulators) == {}


def test_apply_task_enforces_whatever_the_mode(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_A=1\n")
    registry = _registry(emulators, tmp_path, "dry-run")

    asyncio.run(registry.trigger("envsync.apply", actor="orchestrator"))

    assert render_vars(emulators) == {"BRIDGE_A": "1"}


def test_rotate_task_rotates_one_key(emulators: EmulatorSet, tmp_path: Path) -> None:
    write_canonical(tmp_path, "BRIDGE_A=1\n")
    registry = _registry(emulators, tmp_path, "dry-run")

    asyncio.run(registry.trigger("envsync.rotate", key="BRIDGE_A", value=SecretValue("2")))

    assert render_vars(emulators) == {"BRIDGE_A": "2"}


def test_registry_lists_envsync_tasks(emulators: EmulatorSet, tmp_path: Path) -> None:
    registry = _registry(emulators, tmp_path, "dry-run")

    names = [task.name for task in registry.list()]

    assert names == ["envsync.apply", "envsync.rotate", "envsync.sync"]
    assert all(task.description for task in registry.list())


def test_unknown_task_names_the_registered_ones() -> None:
    registry = TaskRegistry()

    async def noop() -> None:
        return None

    registry.register("host.task", noop, description="nothing")

    with pytest.raises(KeyError, match=r"host\.task"):
        registry.trigger("envsync.sync")


def test_duplicate_registration_is_rejected() -> None:
    registry = TaskRegistry()

    async def noop() -> None:
        return None

    registry.register("host.task", noop, description="nothing")

    with pytest.raises(ValueError, match="already registered"):
        registry.register("host.task", noop, description="again")
