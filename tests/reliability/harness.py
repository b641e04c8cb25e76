"""What the reliability suites share: scenarios seeded into the emulators, runs of the engine
with the ticket hook attached, the emulators' control API, and checks of what a run wrote.

A scenario is a target in a known state and two canonical sets. envsync applies the first
(`before`) cleanly, so that it owns keys. The apply of the second (`after`) creates,
updates and deletes owned keys, and leaves unmanaged keys and other Netlify contexts
alone. The suites inject faults or kill the process during the second apply, then check
that a rerun reaches the state the scenario expects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from envsync.engine import RunReport, RunRequest
from envsync.model import Change, Op, RunMode, TargetResult
from envsync.store import Store, open_store
from envsync.tickets import TicketHook
from tests.e2e.conftest import (
    GROUP_ID,
    SERVICE_ID,
    Workspace,
    netlify_seed,
    netlify_var,
    render_seed,
)

# How long a test waits for the emulators to finish requests that a client gave up on.
IDLE_WAIT_S = 30.0

# Settings that keep retries fast. The emulators respond in milliseconds, so a request
# times out only when a fault delays the response.
FAST_RETRIES = {
    "ENVSYNC_MAX_RETRIES": "3",
    "ENVSYNC_RETRY_BASE_S": "0.01",
    "ENVSYNC_RETRY_MAX_S": "0.05",
    "ENVSYNC_HTTP_TIMEOUT_S": "5",
}

# Unmanaged variables on the Render service: more than two full pages of 100, so that a
# list takes three reads and a repeated cursor on the second page can be caught.
RENDER_UNMANAGED = {f"APP_SETTING_{index:03d}": f"app-{index}" for index in range(205)}
GROUP_UNMANAGED = {f"SHARED_SETTING_{index:02d}": f"shared-{index}" for index in range(12)}


def render_values(version: str) -> dict[str, str]:
    """The managed Render keys of one canonical version: `before` or `after`."""
    if version == "before":
        return {
            **{f"BRIDGE_KEEP_{i}": "keep-before" for i in range(1, 4)},
            **{f"BRIDGE_OLD_{i}": "old" for i in range(1, 3)},
            "BRIDGE_SAME": "same",
        }
    return {
        **{f"BRIDGE_KEEP_{i}": "keep-after" for i in range(1, 4)},
        **{f"BRIDGE_NEW_{i}": "new" for i in range(1, 4)},
        "BRIDGE_SAME": "same",
    }


def netlify_values(version: str) -> dict[str, str]:
    """The managed Netlify keys of one canonical version, in the production context."""
    if version == "before":
        return {
            **{f"BRIDGE_KEEP_{i}": "keep-before" for i in range(1, 4)},
            **{f"BRIDGE_OLD_{i}": "old" for i in range(1, 3)},
            "BRIDGE_SHARED": "shared-before",
            "BRIDGE_SAME": "same",
        }
    return {
        **{f"BRIDGE_KEEP_{i}": "keep-after" for i in range(1, 4)},
        **{f"BRIDGE_NEW_{i}": "new" for i in range(1, 4)},
        "BRIDGE_SAME": "same",
    }


def secret_values(version: str) -> dict[str, str]:
    """The managed keys of the secret scenario, in the `all` context."""
    if version == "before":
        return {"BRIDGE_API_TOKEN": "token-before", "BRIDGE_MODE": "mode-before"}
    return {
        "BRIDGE_API_TOKEN": "token-after",
        "BRIDGE_MODE": "mode-after",
        "BRIDGE_NEW_1": "new",
    }


def netlify_seed_variables() -> list[dict[str, Any]]:
    """A site with an unmanaged key, a hand-set managed-prefix key and other contexts."""
    return [
        netlify_var("ANALYTICS_ID", ("all", "UA-1")),
        netlify_var("BRIDGE_HAND", ("production", "hand")),
        *[
            netlify_var(
                f"BRIDGE_KEEP_{i}", ("production", "keep-seed"), ("branch:staging", "stage")
            )
            for i in range(1, 4)
        ],
        netlify_var("BRIDGE_SHARED", ("branch:staging", "stage")),
    ]


@dataclass(frozen=True)
class Scenario:
    """A target, the state it starts in and the two canonical sets applied to it."""

    name: str
    provider: str
    settings: Mapping[str, str]
    targets: tuple[str, ...]
    values: Callable[[str], dict[str, str]]
    seed: Callable[[], dict[str, Any]]
    expected: Callable[[], dict[str, Any]]
    extra: Mapping[str, str] = field(default_factory=dict)

    def canonical(self, version: str) -> str:
        return "".join(f"{key}={value}\n" for key, value in self.values(version).items())


def _render_service_seed() -> dict[str, Any]:
    return {"render": render_seed({**RENDER_UNMANAGED, "BRIDGE_HAND": "hand"})}


def _render_group_seed() -> dict[str, Any]:
    return {"render": render_seed({}, {**GROUP_UNMANAGED, "BRIDGE_HAND": "hand"})}


def _netlify_site_seed() -> dict[str, Any]:
    return {"netlify": netlify_seed(netlify_seed_variables())}


def _netlify_secret_seed() -> dict[str, Any]:
    return {"netlify": netlify_seed([netlify_var("ANALYTICS_ID", ("all", "UA-1"))])}


def _render_service_expected() -> dict[str, Any]:
    return {**RENDER_UNMANAGED, "BRIDGE_HAND": "hand", **render_values("after")}


def _render_group_expected() -> dict[str, Any]:
    return {**GROUP_UNMANAGED, "BRIDGE_HAND": "hand", **render_values("after")}


def _netlify_site_expected() -> dict[str, Any]:
    expected: dict[str, Any] = {
        "ANALYTICS_ID": {"all": "UA-1"},
        "BRIDGE_HAND": {"production": "hand"},
        "BRIDGE_SHARED": {"branch:staging": "stage"},
    }
    for key, value in netlify_values("after").items():
        expected[key] = {"production": value}
    for i in range(1, 4):
        expected[f"BRIDGE_KEEP_{i}"]["branch:staging"] = "stage"
    return expected


def _netlify_secret_expected() -> dict[str, Any]:
    token = "token-after"
    return {
        "ANALYTICS_ID": {"all": "UA-1"},
        "BRIDGE_API_TOKEN": {
            "production": token,
            "deploy-preview": token,
            "branch-deploy": token,
            "dev": "",
        },
        "BRIDGE_MODE": {"all": "mode-after"},
        "BRIDGE_NEW_1": {"all": "new"},
    }


COMMON = {"ENVSYNC_INCLUDE_PREFIXES": "BRIDGE_", "ENVSYNC_ALLOW_DELETIONS": "true"}

SCENARIOS: dict[str, Scenario] = {
    "render-service": Scenario(
        "render-service",
        "render",
        {**COMMON},
        ("render",),
        render_values,
        _render_service_seed,
        _render_service_expected,
    ),
    "render-group": Scenario(
        "render-group",
        "render",
        {**COMMON, "RENDER_ENV_GROUP_ID": GROUP_ID},
        (GROUP_ID,),
        render_values,
        _render_group_seed,
        _render_group_expected,
    ),
    "netlify-site": Scenario(
        "netlify-site",
        "netlify",
        {**COMMON, "NETLIFY_CONTEXT": "production"},
        ("netlify",),
        netlify_values,
        _netlify_site_seed,
        _netlify_site_expected,
    ),
    "netlify-secret": Scenario(
        "netlify-secret",
        "netlify",
        {**COMMON, "NETLIFY_CONTEXT": "all", "NETLIFY_SECRET_KEYS": "*_TOKEN"},
        ("netlify",),
        secret_values,
        _netlify_secret_seed,
        _netlify_secret_expected,
    ),
}


# The emulators' control API, reached over loopback HTTP like any client would.


def control(workspace: Workspace, api: str, method: str, path: str, body: Any = None) -> Any:
    base = httpx.URL(workspace.emulators.base_url(api))
    url = base.copy_with(path=f"/_emulator/{path}", query=None)
    response = httpx.request(method, url, json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def add_fault(workspace: Workspace, api: str, rule: Mapping[str, Any]) -> None:
    control(workspace, api, "POST", "faults", dict(rule))


def clear_faults(workspace: Workspace, api: str) -> None:
    control(workspace, api, "DELETE", "faults")


def clear_requests(workspace: Workspace, api: str) -> None:
    control(workspace, api, "DELETE", "requests")


def wait_idle(workspace: Workspace, api: str) -> list[dict[str, Any]]:
    """Wait until the emulator has finished every request it received; return its log.

    A client that timed out leaves its request running on the emulator, which may still
    write after the client gave up, as a real platform may.
    """
    deadline = time.monotonic() + IDLE_WAIT_S
    while True:
        log: list[dict[str, Any]] = workspace.requests(api)
        if all(entry["ended"] is not None for entry in log):
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"the {api} emulator still has requests running")
        time.sleep(0.02)


# Runs.


def store_of(workspace: Workspace) -> Store:
    return open_store(workspace.environ["ENVSYNC_DATABASE_URL"])


def run(
    workspace: Workspace,
    scenario: Scenario,
    mode: str,
    *,
    settings: Mapping[str, str] | None = None,
    force: bool = False,
) -> RunReport:
    """Run the engine in-process over the scenario's targets, with tickets kept."""
    engine = workspace.engine(**{**FAST_RETRIES, **scenario.settings, **(settings or {})})
    engine.result_hooks.append(TicketHook(engine.store()))
    request = RunRequest(mode=RunMode(mode), targets=scenario.targets, force=force)
    return asyncio.run(engine.run(request))


def start(workspace: Workspace, scenario: Scenario) -> None:
    """Seed the scenario and apply its `before` set cleanly, so envsync owns its keys."""
    workspace.emulators.seed(scenario.seed())
    workspace.write_env(scenario.canonical("before"))
    report = run(workspace, scenario, "enforce")
    assert report.ok, [result.errors for result in report.results]
    workspace.write_env(scenario.canonical("after"))


def only_result(report: RunReport) -> TargetResult:
    assert len(report.results) == 1, [result.target.name for result in report.results]
    return report.results[0]


def target_state(workspace: Workspace, scenario: Scenario) -> dict[str, Any]:
    """The scenario target's variables: values by key, Netlify values by context."""
    if scenario.name == "render-service":
        return workspace.render_vars(SERVICE_ID)
    if scenario.name == "render-group":
        return workspace.group_vars()
    return {key: workspace.netlify_values(key) for key in workspace.netlify_vars()}


def slot_value(state: Mapping[str, Any], provider: str, change: Change) -> str | None:
    """The value the target holds for a change's key and context, or None when it has none."""
    held = state.get(change.key)
    if provider == "render" or held is None:
        return held
    values: dict[str, str] = held
    if change.context == "all" and change.secret:
        # A secret in `all` is written to the three deploy contexts (dev stays empty).
        return values.get("production")
    return values.get(change.context or "")


def is_done(state: Mapping[str, Any], provider: str, change: Change) -> bool:
    """Whether the target shows the effect of a planned change."""
    held = slot_value(state, provider, change)
    if change.op is Op.DELETE:
        return held is None
    assert change.new is not None
    return held == change.new.reveal()


def slots(changes: Any) -> set[tuple[str, str | None, str]]:
    return {(change.key, change.context, change.op.value) for change in changes}
