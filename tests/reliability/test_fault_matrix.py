"""Every provider call under every fault the emulators can inject, through the whole engine.

Each cell seeds a scenario, applies its first canonical set cleanly, injects one fault on
one kind of call, and applies the second set. Then it checks what the run did:

- reads, and any call answered 429, are retried until they succeed;
- a write whose outcome is unknown (5xx, timeout, dropped connection, cut or malformed
  answer) makes the engine read the target again before it writes more;
- a read that fails for good stops the target before any write;
- the run history lists exactly the planned changes the target now shows;
- a failed target has an open ticket naming the cause;
- a rerun with the faults cleared reaches the scenario's expected state, in which every
  unmanaged variable and every other Netlify context is unchanged, and a plan after it
  has nothing left to do.

Transient faults hit the first two matching requests; 401, 403 and a repeated cursor hit
every matching request. The `persistent` cells keep a read failing past every retry. The
outcome of every cell is recorded for docs/RELIABILITY.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from envsync.model import TargetResult
from tests.e2e.conftest import Workspace
from tests.reliability.conftest import ROW_ORDERS
from tests.reliability.harness import (
    SCENARIOS,
    Scenario,
    add_fault,
    clear_faults,
    clear_requests,
    is_done,
    only_result,
    run,
    slots,
    start,
    store_of,
    target_state,
    wait_idle,
)
from tests.reliability.report import ReliabilityReport

TABLE = "fault-matrix"
HEADER = ("cell", "call", "fault", "outcome")

# A fault that hits every matching request, for as long as the test runs.
ALWAYS = 1000
# Transient faults hit this many matching requests: fewer than the retries of a read and
# the write rounds of the engine, so a run can get past them.
TRANSIENT = 2
# The timeout cells lower the client's timeout below the delay of the delayed answer.
TIMEOUT_SETTINGS = {"ENVSYNC_HTTP_TIMEOUT_S": "0.5"}
TIMEOUT_LATENCY_MS = 800


@dataclass(frozen=True)
class Call:
    """One kind of provider call: where the emulator sees it and which scenario makes it."""

    provider: str
    name: str
    scenario: str
    method: str
    path: str
    reads: bool
    settings: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


PER_KEY = {"RENDER_WRITE_MODE": "per-key"}
REDEPLOY = {"ENVSYNC_REDEPLOY": "true"}
BY_NAME = {"RENDER_SERVICE_ID": "", "RENDER_SERVICE_NAME": "api"}

CALLS = [
    Call(
        "render",
        "list",
        "render-service",
        "GET",
        r"^/v1/services/[^/]+/env-vars$",
        True,
        description="GET /services/{id}/env-vars (three pages)",
    ),
    Call(
        "render",
        "get",
        "render-service",
        "GET",
        r"^/v1/services$",
        True,
        BY_NAME,
        "GET /services?name= (the service lookup of RENDER_SERVICE_NAME)",
    ),
    Call(
        "render",
        "bulk_put",
        "render-service",
        "PUT",
        r"^/v1/services/[^/]+/env-vars$",
        False,
        description="PUT /services/{id}/env-vars",
    ),
    Call(
        "render",
        "put_create",
        "render-service",
        "PUT",
        r"/env-vars/BRIDGE_NEW_",
        False,
        PER_KEY,
        "PUT /services/{id}/env-vars/{key} of a new key",
    ),
    Call(
        "render",
        "put_update",
        "render-service",
        "PUT",
        r"/env-vars/BRIDGE_KEEP_",
        False,
        PER_KEY,
        "PUT /services/{id}/env-vars/{key} of an existing key",
    ),
    Call(
        "render",
        "delete",
        "render-service",
        "DELETE",
        r"/env-vars/BRIDGE_OLD_",
        False,
        PER_KEY,
        "DELETE /services/{id}/env-vars/{key}",
    ),
    Call(
        "render",
        "group_get",
        "render-group",
        "GET",
        r"^/v1/env-groups/[^/]+$",
        True,
        description="GET /env-groups/{id}",
    ),
    Call(
        "render",
        "group_put",
        "render-group",
        "PUT",
        r"^/v1/env-groups/.+/env-vars/",
        False,
        description="PUT /env-groups/{id}/env-vars/{key}",
    ),
    Call(
        "render",
        "group_delete",
        "render-group",
        "DELETE",
        r"^/v1/env-groups/.+/env-vars/",
        False,
        description="DELETE /env-groups/{id}/env-vars/{key}",
    ),
    Call(
        "render",
        "deploy",
        "render-service",
        "POST",
        r"/deploys$",
        False,
        REDEPLOY,
        "POST /services/{id}/deploys",
    ),
    Call(
        "netlify",
        "site_get",
        "netlify-site",
        "GET",
        r"^/api/v1/sites/[^/]+$",
        True,
        description="GET /sites/{id}",
    ),
    Call(
        "netlify",
        "env_list",
        "netlify-site",
        "GET",
        r"/env$",
        True,
        description="GET /accounts/{account}/env",
    ),
    Call(
        "netlify",
        "create",
        "netlify-site",
        "POST",
        r"/env$",
        False,
        description="POST /accounts/{account}/env (the batch of new keys)",
    ),
    Call(
        "netlify",
        "patch",
        "netlify-site",
        "PATCH",
        r"/env/BRIDGE_KEEP_",
        False,
        description="PATCH /accounts/{account}/env/{key}",
    ),
    Call(
        "netlify",
        "value_delete",
        "netlify-site",
        "DELETE",
        r"/value/",
        False,
        description="DELETE /accounts/{account}/env/{key}/value/{id}",
    ),
    Call(
        "netlify",
        "key_delete",
        "netlify-site",
        "DELETE",
        r"/env/BRIDGE_OLD_\d$",
        False,
        description="DELETE /accounts/{account}/env/{key}",
    ),
    Call(
        "netlify",
        "put_secret",
        "netlify-secret",
        "PUT",
        r"/env/BRIDGE_API_TOKEN$",
        False,
        description="PUT /accounts/{account}/env/{key} (a secret in all)",
    ),
    Call(
        "netlify",
        "build",
        "netlify-site",
        "POST",
        r"/builds$",
        False,
        REDEPLOY,
        "POST /sites/{id}/builds",
    ),
]
CALL_BY_NAME = {f"{call.provider}-{call.name}": call for call in CALLS}


def _epoch_in(seconds: int) -> str:
    return str(int(time.time()) + seconds)


def fault_rule(fault: str) -> tuple[dict[str, Any], int]:
    """The emulator's description of one fault, and how many requests it hits."""
    limited = {"message": "rate limit exceeded"}
    rules: dict[str, tuple[dict[str, Any], int]] = {
        "429-retry_after": ({"status": 429, "headers": {"Retry-After": "0"}, "body": limited}, 1),
        "429-reset_seconds": (
            {
                "status": 429,
                "headers": {
                    "Ratelimit-Limit": "100",
                    "Ratelimit-Remaining": "0",
                    "Ratelimit-Reset": "1",
                },
                "body": limited,
            },
            1,
        ),
        "429-reset_epoch": (
            {"status": 429, "headers": {"Ratelimit-Reset": _epoch_in(0)}, "body": limited},
            1,
        ),
        "429-x_reset_epoch": (
            {
                "status": 429,
                "headers": {
                    "X-RateLimit-Limit": "500",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": _epoch_in(0),
                },
                "body": limited,
            },
            1,
        ),
        "429-no_header": ({"status": 429, "body": limited}, 1),
        "500": ({"status": 500, "body": {"message": "internal error"}}, TRANSIENT),
        "502": ({"status": 502, "raw_body": "<html>Bad Gateway</html>"}, TRANSIENT),
        "503": ({"status": 503, "body": {"message": "unavailable"}}, TRANSIENT),
        "timeout": ({"latency_ms": TIMEOUT_LATENCY_MS}, TRANSIENT),
        "drop": ({"drop": True}, TRANSIENT),
        "truncate": ({"truncate": True}, TRANSIENT),
        "malformed_json": ({"status": 200, "raw_body": '[{"key": "A", "value": '}, TRANSIENT),
        "401": ({"status": 401, "body": {"message": "unauthorized"}}, ALWAYS),
        "403": ({"status": 403, "body": {"message": "forbidden"}}, ALWAYS),
        "repeat_cursor": ({"repeat_cursor": True}, ALWAYS),
    }
    return rules[fault]


FAULTS = [
    "429-retry_after",
    "429-reset_seconds",
    "429-reset_epoch",
    "429-x_reset_epoch",
    "429-no_header",
    "500",
    "502",
    "503",
    "timeout",
    "drop",
    "truncate",
    "malformed_json",
    "401",
    "403",
]
# Faults kept on a read past every retry: the read fails for good, so nothing is written.
PERSISTENT_READ_FAULTS = ["503", "timeout", "drop", "truncate", "malformed_json"]


@dataclass(frozen=True)
class Cell:
    call: Call
    fault: str
    persistent: bool = False

    @property
    def id(self) -> str:
        suffix = "-persistent" if self.persistent else ""
        return f"{self.call.provider}-{self.call.name}-{self.fault}{suffix}"

    @property
    def settings(self) -> dict[str, str]:
        if self.fault == "timeout":
            return {**self.call.settings, **TIMEOUT_SETTINGS}
        return dict(self.call.settings)

    def rule(self) -> dict[str, Any]:
        fault, times = fault_rule(self.fault)
        if self.persistent:
            times = ALWAYS
        match = {"method": self.call.method, "path": self.call.path}
        return {"match": match, "times": times, "fault": fault}


def build_cells() -> list[Cell]:
    cells = []
    for call in CALLS:
        cells += [Cell(call, fault) for fault in FAULTS]
        if call.name == "list":
            cells.append(Cell(call, "repeat_cursor"))
        if call.reads:
            cells += [Cell(call, fault, persistent=True) for fault in PERSISTENT_READ_FAULTS]
    return cells


CELLS = build_cells()
ROW_ORDERS[TABLE] = {cell.id: index for index, cell in enumerate(CELLS)}


def fails_for_good(cell: Cell) -> bool:
    """Whether the cell's fault must fail the target rather than be got past."""
    if cell.fault in ("401", "403", "repeat_cursor") or cell.persistent:
        return True
    # A deploy or build whose outcome is unknown is not sent again: a second one could
    # start a second deploy. The target fails, and the rerun deploys.
    return cell.call.name in ("deploy", "build") and not cell.fault.startswith("429")


def expected_cause(cell: Cell, written: int) -> str:
    if written:
        return "partial_apply"
    if cell.fault in ("401", "403"):
        return "auth"
    if cell.call.reads:
        return "read_failed"
    return "partial_apply"


def list_reads(log: list[dict[str, Any]], scenario: Scenario) -> int:
    read_path = "/env-groups/" if scenario.name == "render-group" else "/env"
    return sum(1 for entry in log if entry["method"] == "GET" and read_path in entry["path"])


def writes_in(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in log if entry["method"] != "GET"]


def deploys_in(log: list[dict[str, Any]]) -> int:
    return sum(1 for entry in log if entry["path"].endswith(("/deploys", "/builds")))


def describe_outcome(
    cell: Cell, result: TargetResult, planned: int, reads: tuple[int, int], rerun_deployed: bool
) -> str:
    written = len(result.written)
    clean_reads, faulted_reads = reads
    if result.ok and (cell.call.reads or cell.fault.startswith("429")):
        return "retried, succeeded"
    if result.ok and faulted_reads > clean_reads:
        return "read again after the failed write, succeeded"
    if result.ok:
        return "succeeded (the fault did not reach the client)"
    if cell.call.name in ("deploy", "build"):
        deployed = "redeployed" if rerun_deployed else "did not redeploy"
        return f"all {written} of {planned} written, deploy failed; rerun {deployed}"
    if written == 0:
        return "stopped before writing, rerun converged"
    return f"partial: {written} of {planned} written, rerun converged"


@pytest.mark.parametrize("cell", CELLS, ids=lambda cell: cell.id)
def test_fault_cell(
    workspace: Workspace, cell: Cell, reliability_report: ReliabilityReport
) -> None:
    scenario = SCENARIOS[cell.call.scenario]
    api = scenario.provider
    settings = cell.settings
    start(workspace, scenario)

    clear_requests(workspace, api)
    dry_run = only_result(run(workspace, scenario, "dry-run", settings=settings))
    assert dry_run.plan is not None
    planned = dry_run.plan.pending
    clean_reads = list_reads(wait_idle(workspace, api), scenario)

    clear_requests(workspace, api)
    add_fault(workspace, api, cell.rule())
    result = only_result(run(workspace, scenario, "enforce", settings=settings))
    log = wait_idle(workspace, api)
    clear_faults(workspace, api)
    state = target_state(workspace, scenario)

    # What the run did, and what it says it did.
    assert result.ok is not fails_for_good(cell), result.errors
    if cell.call.reads and not result.ok:
        assert writes_in(log) == [], "a write followed a failed read"
    store = store_of(workspace)
    recorded = [t for t in store.get_run(result.run_id).targets if t.target == result.target.name]
    assert len(recorded) == 1
    done = [change for change in planned if is_done(state, scenario.provider, change)]
    assert slots(recorded[0].written) == slots(done)
    assert slots(result.written) == slots(done)

    open_tickets = store.list_tickets(open_only=True, target=result.target.name)
    if result.ok:
        assert open_tickets == []
    else:
        causes = {ticket.cause for ticket in open_tickets}
        assert causes == {expected_cause(cell, len(result.written))}

    # A rerun without faults converges and closes the tickets.
    clear_requests(workspace, api)
    rerun = only_result(run(workspace, scenario, "enforce", settings=settings))
    rerun_log = wait_idle(workspace, api)
    assert rerun.ok, rerun.errors
    assert target_state(workspace, scenario) == scenario.expected()
    assert store.list_tickets(open_only=True, target=result.target.name) == []
    rerun_deployed = deploys_in(rerun_log) > 0
    if cell.call.name in ("deploy", "build") and not result.ok:
        assert rerun_deployed, "the rerun did not deploy the changes of the failed run"
    settled = only_result(run(workspace, scenario, "dry-run", settings=settings))
    assert settled.plan is not None
    assert settled.plan.pending == ()

    outcome = describe_outcome(
        cell, result, len(planned), (clean_reads, list_reads(log, scenario)), rerun_deployed
    )
    call = f"{cell.call.provider}: {cell.call.description}"
    fault = f"{cell.fault} (persistent)" if cell.persistent else cell.fault
    reliability_report.record(TABLE, HEADER, (cell.id, call, fault, outcome))


# The defects the matrix found, each kept as a test of its own.


def test_failed_deploy_is_made_by_next_run_only(workspace: Workspace) -> None:
    scenario = SCENARIOS["render-service"]
    start(workspace, scenario)
    add_fault(workspace, "render", Cell(CALL_BY_NAME["render-deploy"], "503").rule())
    assert not only_result(run(workspace, scenario, "enforce", settings=REDEPLOY)).ok
    clear_faults(workspace, "render")

    clear_requests(workspace, "render")
    assert only_result(run(workspace, scenario, "enforce", settings=REDEPLOY)).redeployed
    assert deploys_in(wait_idle(workspace, "render")) == 1

    clear_requests(workspace, "render")
    assert not only_result(run(workspace, scenario, "enforce", settings=REDEPLOY)).redeployed
    assert deploys_in(wait_idle(workspace, "render")) == 0


def test_write_confirmed_by_reread_is_recorded(workspace: Workspace) -> None:
    scenario = SCENARIOS["render-service"]
    start(workspace, scenario)
    add_fault(workspace, "render", Cell(CALL_BY_NAME["render-bulk_put"], "truncate").rule())

    result = only_result(run(workspace, scenario, "enforce"))

    assert result.ok
    store = store_of(workspace)
    recorded = store.get_run(result.run_id).targets[0].written
    assert len(recorded) == 8
    assert writes_in(wait_idle(workspace, "render"))[0]["status"] == 200
