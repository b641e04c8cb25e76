"""Planner scale: one Netlify site (context `all`) of 10,000 and 100,000 variables, 10% of
them drifted, every key owned by the ledger.

Two figures per size: the pure planner (`plan_target` on records built in memory; its
time and the peak of Python allocations while it runs, from tracemalloc), and a whole
`envsync plan --json` against the emulator (wall time and the process's peak resident
memory). Each size is measured in a fresh interpreter.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.commands import measure
from bench.emulated import EmulatorProcess
from bench.footprint import command_env, envsync_command, prepare_bytecode
from bench.sandbox import LEDGER_KEY, Sandbox, check_report
from bench.seeds import Fleet, base_values, drifted, seed, site_id
from envsync.config import TargetSpec
from envsync.filters import KeyFilter
from envsync.ledger import LedgerHasher
from envsync.model import (
    LedgerEntry,
    LedgerSlot,
    RemoteState,
    RemoteValue,
    RemoteVariable,
    SecretValue,
    TargetRef,
)
from envsync.planner import PlanInput, plan_target
from envsync.providers.netlify.rules import NetlifyRules

DRIFT = 0.1


@dataclass(frozen=True, slots=True)
class ScaleRow:
    variables: int
    figure: str
    seconds: float
    peak_mib: float
    changes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_input(count: int) -> PlanInput:
    """Build the planner's input for a site of `count` variables in `all`, all owned, 10%
    of them drifted."""
    target = TargetRef("netlify", "site", site_id(0), "netlify/bench-0")
    hasher = LedgerHasher(LEDGER_KEY.encode())
    remote_values = base_values(count)
    variables = {
        key: RemoteVariable(key, (RemoteValue("all", SecretValue(value), f"v-{key}"),))
        for key, value in remote_values.items()
    }
    ledger: dict[LedgerSlot, LedgerEntry] = {
        (key, "all"): LedgerEntry(key, "all", hasher.hash(SecretValue(value)), None, "-")
        for key, value in remote_values.items()
    }
    canonical = {key: SecretValue(value) for key, value in drifted(remote_values, DRIFT).items()}
    return PlanInput(
        target=target,
        spec=TargetSpec("netlify", "site", site_id(0), "id", key_filter=KeyFilter((), ())),
        canonical=canonical,
        remote=RemoteState(target, variables),
        ledger=ledger,
        rules=NetlifyRules(),
        hasher=hasher,
    )


def measure_planner(count: int, runs: int = 3) -> ScaleRow:
    """Time the pure planner in this process; the peak is tracemalloc's during one plan."""
    planned = plan_input(count)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        plan = plan_target(planned)
        seconds.append(time.perf_counter() - started)

    tracemalloc.start()
    plan_target(planned)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return ScaleRow(
        count, "pure planner", statistics.median(seconds), peak / 2**20, len(plan.pending)
    )


def measure_whole_plan(count: int, runs: int, base_env: Mapping[str, str] | None) -> ScaleRow:
    values = base_values(count)
    fleet = Fleet(sites=1, variables=values)
    with (
        tempfile.TemporaryDirectory(prefix="envsync-bench-scale-") as scratch,
        EmulatorProcess(seed(fleet), env=command_env(base_env, {})) as emulators,
    ):
        sandbox = Sandbox.create(Path(scratch), emulators, fleet)
        sandbox.write_canonical(values)
        # The apply before lets the ledger own every key, as in the pure planner's case.
        check_report(sandbox.run("enforce"))
        sandbox.write_canonical(drifted(values, DRIFT))
        env = command_env(base_env, sandbox.environ)
        figures = measure(
            f"envsync plan --json ({count} variables)",
            [*envsync_command(), "plan", "--json"],
            env,
            runs=runs,
            warmup=1,
            cwd=Path(scratch),
        )
    return ScaleRow(
        count, "whole envsync plan --json", figures.wall_s, figures.peak_mib, round(count * DRIFT)
    )


def run(
    sizes: tuple[int, ...] = (10_000, 100_000),
    *,
    runs: int = 3,
    base_env: Mapping[str, str] | None = None,
) -> list[ScaleRow]:
    prepare_bytecode()
    rows = []
    for count in sizes:
        # A fresh interpreter per size, so one size's allocations do not shape the next.
        finished = subprocess.run(
            [sys.executable, "-m", "bench.planner_scale", str(count)],
            env=command_env(base_env, {}),
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(ScaleRow(**json.loads(finished.stdout)))
        rows.append(measure_whole_plan(count, runs, base_env))
    return rows


if __name__ == "__main__":
    print(json.dumps(measure_planner(int(sys.argv[1])).as_dict()))
