"""Crash consistency: `envsync apply --yes` killed with SIGKILL at every request it makes.

The apply changes both providers at once, next to unmanaged keys on both: 30 Render keys
(10 updates, 10 creates, 10 deletes of owned keys) and 30 Netlify keys, the same. On
Netlify, 3 of the deletes remove one context value of a key that keeps another context.

For each kill point N, a `hold` fault stops the Nth request to one emulator, the test
kills the apply while that request waits, and the emulator then carries the request out,
as a platform carries out a request whose client died. After each kill:

- the history marks the run `interrupted` once `mark_interrupted_runs` finds its process
  gone, and lists as written only changes that the targets show;
- with one request at a time per provider, the writes the history lists are the first
  ones the target confirmed: a write missing from it came after every write it lists;
- a rerun converges to the canonical set, with every unmanaged variable and every other
  Netlify context as before, and a plan after it has nothing left to do.

Both Render write modes are covered one request at a time, and per-key mode also with the
default concurrency, where writes of different keys are in flight together. Kill points
are counted for docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import pytest

from envsync.engine import RunReport, RunRequest
from envsync.model import Change, Op, RunMode
from envsync.store import RunStatus
from tests.conftest import subprocess_env
from tests.e2e.conftest import (
    SERVICE_ID,
    SITE_ID,
    Workspace,
    netlify_seed,
    netlify_var,
    render_seed,
)
from tests.reliability.conftest import ROW_ORDERS
from tests.reliability.harness import (
    FAST_RETRIES,
    add_fault,
    clear_requests,
    is_done,
    store_of,
    wait_idle,
)
from tests.reliability.report import ReliabilityReport

TABLE = "crash-consistency"
HEADER = (
    "Render write mode",
    "requests in flight per provider",
    "killed at a request to",
    "kill points tried",
    "converged",
    "most writes missing from the history after one kill",
)
# The last column keeps the largest count seen; the others are sums.
MAXIMUM = (False, False, True)
TOTAL_TABLE = "crash-consistency-total"
TOTAL_HEADER = ("kill points", "tried", "converged", HEADER[-1])
APIS = ("render", "netlify")
# Render write mode and ENVSYNC_CONCURRENCY of each set of kill points; 16 is the default.
MODES = (("bulk", "1"), ("per-key", "1"), ("per-key", "16"))

# How long the test waits for the apply to reach the request it holds.
REACH_WAIT_S = 60.0

SETTINGS = {
    **FAST_RETRIES,
    "ENVSYNC_ALLOW_DELETIONS": "true",
    "ENVSYNC_MAX_DELETIONS": "20",
    "NETLIFY_CONTEXT": "production",
}

# Each target manages its own keys, so one canonical set contains both providers' keys.
TARGETS = f"""
[[target]]
provider = "render"
service_id = "{SERVICE_ID}"
include_prefixes = ["BRIDGE_R_"]

[[target]]
provider = "netlify"
site_id = "{SITE_ID}"
include_prefixes = ["BRIDGE_N_"]
"""

# Keys 00-09 are updated, 10-19 deleted and 20-29 created. On Netlify, keys 00-04 and 10-12
# also have a value for the staging branch, which stays, so 10-12 lose one value each.
UPDATED = range(0, 10)
DELETED = range(10, 20)
CREATED = range(20, 30)
WITH_STAGING = (*range(0, 5), *range(10, 13))

# The requests of one apply, per API. Render makes a list and one bulk PUT, or a list and
# 30 per-key calls. Netlify reads the site and the list, then sends one batched create,
# 10 PATCHes, 3 value DELETEs and 7 key DELETEs.
REQUESTS = {
    ("bulk", "render"): 2,
    ("per-key", "render"): 31,
    ("bulk", "netlify"): 23,
    ("per-key", "netlify"): 23,
}


def key(provider: str, index: int | str) -> str:
    letter = "R" if provider == "render" else "N"
    if isinstance(index, str):
        return f"BRIDGE_{letter}_{index}"
    return f"BRIDGE_{letter}_{index:02d}"


def canonical(version: str) -> str:
    indexes = range(0, 20) if version == "before" else (*UPDATED, *CREATED)
    lines = [f"{key(provider, i)}={version}\n" for provider in APIS for i in indexes]
    return "".join(lines)


def seed() -> dict[str, Any]:
    service = {f"APP_SETTING_{i:02d}": f"app-{i}" for i in range(10)}
    site = [
        netlify_var("ANALYTICS_ID", ("all", "UA-1")),
        netlify_var(key("netlify", "HAND"), ("production", "hand")),
        *[netlify_var(key("netlify", i), ("branch:staging", "stage")) for i in WITH_STAGING],
    ]
    return {
        "render": render_seed({**service, key("render", "HAND"): "hand"}),
        "netlify": netlify_seed(site),
    }


def expected_render() -> dict[str, str]:
    expected = {f"APP_SETTING_{i:02d}": f"app-{i}" for i in range(10)}
    expected[key("render", "HAND")] = "hand"
    expected |= {key("render", i): "after" for i in (*UPDATED, *CREATED)}
    return expected


def expected_netlify() -> dict[str, dict[str, str]]:
    expected: dict[str, dict[str, str]] = {
        "ANALYTICS_ID": {"all": "UA-1"},
        key("netlify", "HAND"): {"production": "hand"},
    }
    for i in (*UPDATED, *CREATED):
        expected[key("netlify", i)] = {"production": "after"}
    for i in WITH_STAGING:
        expected.setdefault(key("netlify", i), {})["branch:staging"] = "stage"
    return expected


def states(workspace: Workspace) -> dict[str, dict[str, Any]]:
    netlify = {name: workspace.netlify_values(name) for name in workspace.netlify_vars()}
    return {"render": workspace.render_vars(), "netlify": netlify}


def mode_settings(write_mode: str, concurrency: str) -> dict[str, str]:
    return {**SETTINGS, "RENDER_WRITE_MODE": write_mode, "ENVSYNC_CONCURRENCY": concurrency}


def run(workspace: Workspace, mode: str, settings: Mapping[str, str]) -> RunReport:
    engine = workspace.engine(**settings)
    return asyncio.run(engine.run(RunRequest(mode=RunMode(mode))))


def prepare(workspace: Workspace, settings: Mapping[str, str]) -> dict[str, tuple[Change, ...]]:
    """Apply the `before` set, write the `after` set, and return the pending changes per
    provider that applying it will make."""
    workspace.emulators.seed(seed())
    (workspace.folder / "envsync.toml").write_text(TARGETS, encoding="utf-8")
    workspace.write_env(canonical("before"))
    assert run(workspace, "enforce", settings).ok
    workspace.write_env(canonical("after"))

    planned = run(workspace, "dry-run", settings)
    pending = {}
    for result in planned.results:
        assert result.plan is not None
        pending[result.target.provider] = result.plan.pending
    for api in APIS:
        clear_requests(workspace, api)
    return pending


def start_apply(workspace: Workspace, settings: Mapping[str, str]) -> subprocess.Popen[str]:
    environ = {**workspace.environ, **settings}
    return subprocess.Popen(
        [sys.executable, "-c", "from envsync.cli import main; main()", "apply", "--yes"],
        cwd=workspace.folder,
        env=subprocess_env(environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_held(workspace: Workspace, api: str, process: subprocess.Popen[str]) -> None:
    """Wait until the apply's request is held by the emulator; fail if the apply ends first."""
    emulator = workspace.emulators.emulator(api)
    deadline = time.monotonic() + REACH_WAIT_S
    while emulator.held == 0:
        if process.poll() is not None:
            output, errors = process.communicate()
            raise AssertionError(f"the apply ended before the held request: {output}{errors}")
        if time.monotonic() > deadline:
            raise AssertionError("the apply did not reach the held request")
        time.sleep(0.005)


def kill_at(workspace: Workspace, settings: Mapping[str, str], api: str, point: int) -> None:
    """Run the apply, kill it while its `point`th request to `api` waits, then release it."""
    add_fault(workspace, api, {"after": point - 1, "fault": {"hold": True}})
    process = start_apply(workspace, settings)
    try:
        wait_until_held(workspace, api, process)
    finally:
        process.kill()
        process.communicate()
    workspace.emulators.release(api)


def slot_of(change: Any) -> tuple[str, str | None, str]:
    return (change.key, change.context, change.op.value)


def confirmed_in_order(
    log: list[dict[str, Any]], done: set[tuple[str, str | None, str]]
) -> list[set[tuple[str, str | None, str]]]:
    """Group the done changes by the write request that made them, in request order."""
    groups = []
    for entry in log:
        if entry["method"] == "GET":
            continue
        touched = set(entry["keys"])
        groups.append({slot for slot in done if slot[0] in touched})
    return groups


def check_history(
    workspace: Workspace,
    pending: Mapping[str, tuple[Change, ...]],
    logs: Mapping[str, list[dict[str, Any]]],
    *,
    in_order: bool,
) -> int:
    """Check that the killed run is marked interrupted and lists only writes that happened;
    return how many writes that happened it does not list."""
    store = store_of(workspace)
    interrupted = store.mark_interrupted_runs()
    assert len(interrupted) == 1
    killed = store.get_run(interrupted[0])
    assert killed is not None
    assert killed.status is RunStatus.INTERRUPTED

    state = states(workspace)
    recorded_by_provider = {target.provider: target.written for target in killed.targets}
    missed = 0
    for api in APIS:
        done = {slot_of(c) for c in pending[api] if is_done(state[api], api, c)}
        recorded = {slot_of(change) for change in recorded_by_provider.get(api, ())}
        assert recorded <= done, f"{api}: the history lists writes the target does not show"
        missed += len(done - recorded)
        if in_order:
            check_prefix(api, confirmed_in_order(logs[api], done), recorded)
    return missed


def check_prefix(
    api: str,
    groups: list[set[tuple[str, str | None, str]]],
    recorded: set[tuple[str, str | None, str]],
) -> None:
    """Check that the recorded writes are those of the first requests, with no gap."""
    last = max((index for index, group in enumerate(groups) if group & recorded), default=0)
    for index, group in enumerate(groups[:last]):
        assert group <= recorded, f"{api}: write request {index + 1} is missing from history"


def check_rerun_converges(workspace: Workspace, settings: Mapping[str, str]) -> None:
    rerun = run(workspace, "enforce", settings)
    assert rerun.ok, [result.errors for result in rerun.results]
    assert workspace.render_vars() == expected_render()
    netlify = {name: workspace.netlify_values(name) for name in workspace.netlify_vars()}
    assert netlify == expected_netlify()
    settled = run(workspace, "dry-run", settings)
    assert not settled.has_changes


KILL_POINTS = [
    (write_mode, concurrency, api, point)
    for write_mode, concurrency in MODES
    for api in APIS
    for point in range(1, REQUESTS[(write_mode, api)] + 1)
]
ROW_ORDERS[TABLE] = {
    f"{mode} {concurrency} {api}": index
    for index, (mode, concurrency, api) in enumerate(
        (mode, concurrency, api) for mode, concurrency in MODES for api in APIS
    )
}


@pytest.mark.parametrize(
    ("write_mode", "concurrency", "api", "point"),
    KILL_POINTS,
    ids=[f"{mode}-c{conc}-{api}-{point:02d}" for mode, conc, api, point in KILL_POINTS],
)
def test_kill_point_converges(
    workspace: Workspace,
    write_mode: str,
    concurrency: str,
    api: str,
    point: int,
    reliability_report: ReliabilityReport,
) -> None:
    row = (write_mode, concurrency, api)
    settings = mode_settings(write_mode, concurrency)
    reliability_report.add_counts(TABLE, HEADER, row, (1, 0, 0), MAXIMUM)
    reliability_report.add_counts(TOTAL_TABLE, TOTAL_HEADER, ("all",), (1, 0, 0), MAXIMUM)
    pending = prepare(workspace, settings)

    kill_at(workspace, settings, api, point)
    logs = {name: wait_idle(workspace, name) for name in APIS}

    missed = check_history(workspace, pending, logs, in_order=concurrency == "1")
    check_rerun_converges(workspace, settings)
    reliability_report.add_counts(TABLE, HEADER, row, (0, 1, missed), MAXIMUM)
    reliability_report.add_counts(TOTAL_TABLE, TOTAL_HEADER, ("all",), (0, 1, missed), MAXIMUM)


@pytest.mark.parametrize(("write_mode", "concurrency"), MODES)
def test_apply_makes_counted_requests(
    workspace: Workspace, write_mode: str, concurrency: str
) -> None:
    settings = mode_settings(write_mode, concurrency)
    prepare(workspace, settings)

    completed = workspace.cli("apply", "--yes", extra=settings)

    assert completed.returncode == 0, completed.stderr
    for api in APIS:
        assert len(wait_idle(workspace, api)) == REQUESTS[(write_mode, api)], api


def test_apply_changes_thirty_keys_per_provider(workspace: Workspace) -> None:
    pending = prepare(workspace, mode_settings("bulk", "1"))

    for api in APIS:
        ops = [change.op for change in pending[api]]
        assert len(ops) == 30, api
        assert ops.count(Op.DELETE) == 10, api


def test_hold_fault_waits_for_release(workspace: Workspace) -> None:
    workspace.write_env("BRIDGE_A=1\n")
    add_fault(workspace, "render", {"after": 1, "fault": {"hold": True}})
    process = start_apply(workspace, mode_settings("bulk", "1"))

    try:
        wait_until_held(workspace, "render", process)
        assert len(workspace.requests("render")) == 2
    finally:
        assert workspace.emulators.release("render") == 1
        process.communicate()

    assert workspace.render_vars()["BRIDGE_A"] == "1"
