"""A small task registry, so that a host application can run envsync's work as its own tasks.

A host (an orchestrator that schedules and retries work) registers envsync once and
triggers its tasks by name:

    registry = TaskRegistry()
    register_envsync_tasks(registry, engine)
    report = await registry.trigger("envsync.sync")

Tasks:

    envsync.sync     one run of every target in ENVSYNC_MODE (dry-run or enforce)
    envsync.apply    one enforce run: makes the targets equal to the canonical set
    envsync.rotate   a new value for one key, written to the source and applied

Each task takes keyword arguments only and returns what the engine returns (a RunReport,
or a RotateReport for rotation). Errors reach the caller that awaits the task, so the host
decides about retries.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envsync.model import RunMode, SecretValue

if TYPE_CHECKING:
    from envsync.engine import Engine, RunReport
    from envsync.rotate import RotateReport

TaskFunction = Callable[..., Awaitable[Any]]

# The actor recorded in the run history for runs a host triggers, unless it names one.
DEFAULT_ACTOR = "autonomy"


@dataclass(frozen=True, slots=True)
class Task:
    """A registered task: its name, what it does, and the function that runs it."""

    name: str
    description: str
    function: TaskFunction


class TaskRegistry:
    """Tasks by name, each an async function called with keyword arguments."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def register(self, name: str, func: TaskFunction, *, description: str) -> None:
        """Add a task; raise ValueError when the name is taken."""
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already registered")
        self._tasks[name] = Task(name, description, func)

    def trigger(self, name: str, **kwargs: Any) -> Awaitable[Any]:
        """Start the task and return its awaitable; raise KeyError naming the known tasks."""
        task = self._tasks.get(name)
        if task is None:
            known = ", ".join(sorted(self._tasks)) or "none"
            raise KeyError(f"no task named {name!r}; registered: {known}")
        return task.function(**kwargs)

    def list(self) -> builtins.list[Task]:
        """Return every task, sorted by name."""
        return [self._tasks[name] for name in sorted(self._tasks)]


def register_envsync_tasks(registry: TaskRegistry, engine: Engine) -> None:
    """Register envsync.sync, envsync.apply and envsync.rotate, bound to `engine`."""

    async def sync(targets: Sequence[str] = (), actor: str = DEFAULT_ACTOR) -> RunReport:
        mode = RunMode(engine.settings.mode)
        return await _run(engine, mode, targets, actor)

    async def apply(
        targets: Sequence[str] = (), actor: str = DEFAULT_ACTOR, force: bool = False
    ) -> RunReport:
        return await _run(engine, RunMode.ENFORCE, targets, actor, force=force)

    async def rotate(
        key: str,
        value: SecretValue | None = None,
        generate: bool = False,
        actor: str = DEFAULT_ACTOR,
    ) -> RotateReport:
        from envsync.rotate import rotate as rotate_key

        return await rotate_key(engine, key, value=value, generate=generate, actor=actor)

    registry.register(
        "envsync.sync",
        sync,
        description="Sync every target in ENVSYNC_MODE (dry-run plans only, enforce applies).",
    )
    registry.register(
        "envsync.apply",
        apply,
        description="Apply the canonical set to every target (or the given targets).",
    )
    registry.register(
        "envsync.rotate",
        rotate,
        description="Write a new value of one key to the canonical source and apply it.",
    )


async def _run(
    engine: Engine, mode: RunMode, targets: Sequence[str], actor: str, *, force: bool = False
) -> RunReport:
    from envsync.engine import RunRequest

    request = RunRequest(
        mode=mode, targets=tuple(targets), trigger="library", actor=actor, force=force
    )
    return await engine.run(request)
