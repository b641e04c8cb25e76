"""Start store workers in separate Python processes, with the test suite's network guard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, subprocess_env

WORKER = Path(__file__).resolve().parent / "worker.py"


def start_worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        cwd=REPO_ROOT,
        env=subprocess_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(worker: subprocess.Popen[str]) -> str:
    """The worker's next output line; fails with its error output when it exited instead."""
    assert worker.stdout is not None
    line = worker.stdout.readline()
    if not line:
        _, errors = worker.communicate(timeout=30)
        raise AssertionError(f"worker exited with {worker.returncode}: {errors}")
    return line.strip()


def start_together(workers: list[subprocess.Popen[str]]) -> None:
    """Wait until every worker is ready, then let all of them go at once."""
    for worker in workers:
        assert read_line(worker) == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()


def finish(worker: subprocess.Popen[str]) -> str:
    """Wait for the worker to exit cleanly and return the rest of its output."""
    output, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors
    return output
