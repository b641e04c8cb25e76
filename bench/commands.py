"""Timing whole commands: wall time with hyperfine when it is installed (Debian package
`hyperfine`), else with a clock around each run, and peak memory with GNU time
(`/usr/bin/time`, Debian package `time`)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GNU_TIME = Path("/usr/bin/time")


@dataclass(frozen=True, slots=True)
class CommandFigures:
    """Median wall time and peak resident memory of one command over several runs."""

    name: str
    command: str
    wall_s: float
    user_s: float
    system_s: float
    peak_mib: float
    runs: int
    timer: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    runs: int,
    warmup: int = 2,
    cwd: Path | None = None,
) -> CommandFigures:
    """Time `command` `runs` times after `warmup` runs, and measure its peak memory."""
    wall, user, system, timer = _wall_time(command, env, runs, warmup, cwd)
    return CommandFigures(
        name=name,
        command=shlex.join(command),
        wall_s=wall,
        user_s=user,
        system_s=system,
        peak_mib=_peak_mib(command, env, runs, cwd),
        runs=runs,
        timer=timer,
    )


def _wall_time(
    command: Sequence[str], env: Mapping[str, str], runs: int, warmup: int, cwd: Path | None
) -> tuple[float, float, float, str]:
    hyperfine = shutil.which("hyperfine")
    if hyperfine is None:
        return (*_clocked(command, env, runs, warmup, cwd), "clock")

    with tempfile.TemporaryDirectory(prefix="envsync-bench-hyperfine-") as folder:
        export = Path(folder) / "result.json"
        subprocess.run(
            [
                hyperfine,
                "--shell=none",
                f"--warmup={warmup}",
                f"--runs={runs}",
                f"--export-json={export}",
                "--style=none",
                shlex.join(command),
            ],
            env=dict(env),
            cwd=cwd,
            check=True,
            capture_output=True,
        )
        result = json.loads(export.read_text("utf-8"))["results"][0]
    times = result["times"]
    user = float(result["user"])
    system = float(result["system"])
    return float(statistics.median(times)), user, system, "hyperfine"


def _clocked(
    command: Sequence[str], env: Mapping[str, str], runs: int, warmup: int, cwd: Path | None
) -> tuple[float, float, float]:
    samples = []
    for index in range(warmup + runs):
        before = os.times()
        started = time.perf_counter()
        subprocess.run(command, env=dict(env), cwd=cwd, check=True, capture_output=True)
        elapsed = time.perf_counter() - started
        after = os.times()
        if index >= warmup:
            cpu = (
                after.children_user - before.children_user,
                after.children_system - before.children_system,
            )
            samples.append((elapsed, *cpu))
    wall = statistics.median(sample[0] for sample in samples)
    user = statistics.mean(sample[1] for sample in samples)
    system = statistics.mean(sample[2] for sample in samples)
    return wall, user, system


def _peak_mib(command: Sequence[str], env: Mapping[str, str], runs: int, cwd: Path | None) -> float:
    """Median of the peak resident set size over `runs` runs, in MiB (GNU time's %M is KiB)."""
    if not GNU_TIME.exists():
        return float("nan")
    peaks = []
    for _ in range(runs):
        finished = subprocess.run(
            [str(GNU_TIME), "-f", "%M", *command],
            env=dict(env),
            cwd=cwd,
            check=True,
            capture_output=True,
            text=True,
        )
        peaks.append(int(finished.stderr.strip().splitlines()[-1]) / 1024)
    return float(statistics.median(peaks))
