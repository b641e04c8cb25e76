"""The guards on deletion, with deletions allowed, against sources that lose keys.

envsync first applies 24 owned keys to a Render service or a Netlify site. Then the
canonical source goes wrong in one of the ways sources do:

- the .env file is empty;
- the dashboard returns `{}`;
- the latest version of the Vault KV v2 secret was deleted;
- the .env file was truncated to half its keys, 12 deletions where at most 10 are allowed.

Nothing at all is deleted in any of them, and the target reports a conflict on every
apply until a person applies with `--force`; `--force` deletes the truncated file's keys
but never deletes when the canonical set is empty. A deleted Vault version stops the run
before any provider call. An owned key that a person edited on the platform since
envsync wrote it is a conflict, never deleted, and never written back once it left the
canonical set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from envsync.engine import RunReport, RunRequest
from envsync.errors import SecretDeletedError
from envsync.model import Op, RunMode, TargetResult
from envsync.planner import WHOLE_TARGET
from tests.e2e.conftest import Workspace, netlify_seed, netlify_var, render_seed, writes
from tests.reliability.harness import FAST_RETRIES, clear_requests, wait_idle
from tests.sources.loopback import LoopbackServer, Reply

PROVIDERS = ("render", "netlify")
OWNED = {f"BRIDGE_KEY_{index:02d}": f"value-{index}" for index in range(24)}
UNMANAGED = {"DATABASE_URL": "postgres://db/app", "APP_REGION": "eu"}
SETTINGS = {
    **FAST_RETRIES,
    "ENVSYNC_INCLUDE_PREFIXES": "BRIDGE_",
    "ENVSYNC_ALLOW_DELETIONS": "true",
    "ENVSYNC_MAX_DELETIONS": "10",
}
VAULT_TOKEN = "hvs.deletion-guard-token"


def dotenv_text(values: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def seed(workspace: Workspace) -> None:
    netlify = [netlify_var(key, ("production", value)) for key, value in UNMANAGED.items()]
    netlify.append(netlify_var("BRIDGE_OTHER_CONTEXT", ("branch:staging", "stage")))
    workspace.emulators.seed(
        {
            "render": render_seed(UNMANAGED),
            "netlify": netlify_seed(netlify),
            "vault": {"tokens": [VAULT_TOKEN], "mounts": {"secret": {"envsync": dict(OWNED)}}},
        }
    )


def state(workspace: Workspace, provider: str) -> dict[str, Any]:
    if provider == "render":
        return workspace.render_vars()
    return {key: workspace.netlify_values(key) for key in workspace.netlify_vars()}


def run(
    workspace: Workspace, provider: str, *, force: bool = False, **settings: str
) -> TargetResult:
    """Apply to one provider's target in-process and return its result."""
    engine = workspace.engine(**{**SETTINGS, **settings})
    request = RunRequest(mode=RunMode.ENFORCE, targets=(provider,), force=force)
    report: RunReport = asyncio.run(engine.run(request))
    [result] = report.results
    return result


def apply_owned(workspace: Workspace, provider: str) -> dict[str, Any]:
    """Apply the 24 owned keys cleanly and return the target's state afterwards."""
    seed(workspace)
    workspace.write_env(dotenv_text(OWNED))
    assert run(workspace, provider).ok
    clear_requests(workspace, provider)
    return state(workspace, provider)


def whole_target_conflicts(result: TargetResult) -> list[str]:
    assert result.plan is not None
    return [c.reason for c in result.plan.conflicts if c.key == WHOLE_TARGET]


def assert_nothing_deleted(workspace: Workspace, provider: str, before: dict[str, Any]) -> None:
    assert writes(wait_idle(workspace, provider)) == []
    assert state(workspace, provider) == before


@pytest.fixture(scope="module")
def dashboard() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    server.start()
    yield server
    server.stop()


# Empty canonical sets.


def empty_file(workspace: Workspace, dashboard: LoopbackServer) -> dict[str, str]:
    workspace.write_env("")
    return {}


def empty_dashboard(workspace: Workspace, dashboard: LoopbackServer) -> dict[str, str]:
    dashboard.reset()
    dashboard.reply("/canonical", Reply(json_body={}))
    return {
        "ENVSYNC_CANONICAL_SOURCE": "dashboard",
        "ENVSYNC_DASHBOARD_URL": f"{dashboard.url}/canonical",
    }


def filtered_out_file(workspace: Workspace, dashboard: LoopbackServer) -> dict[str, str]:
    workspace.write_env("UNRELATED=1\nOTHER=2\n")
    return {}


EMPTY_SOURCES = {
    "empty_file": empty_file,
    "dashboard_answers_empty_object": empty_dashboard,
    "file_with_no_managed_key": filtered_out_file,
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("source", EMPTY_SOURCES)
def test_empty_set_deletes_nothing(
    workspace: Workspace, dashboard: LoopbackServer, provider: str, source: str
) -> None:
    before = apply_owned(workspace, provider)
    settings = EMPTY_SOURCES[source](workspace, dashboard)

    result = run(workspace, provider, **settings)

    assert not result.ok
    assert len(whole_target_conflicts(result)) == 1
    assert "holds no managed key" in whole_target_conflicts(result)[0]
    assert_nothing_deleted(workspace, provider, before)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_empty_set_deletes_nothing_even_forced(
    workspace: Workspace, dashboard: LoopbackServer, provider: str
) -> None:
    before = apply_owned(workspace, provider)
    settings = empty_dashboard(workspace, dashboard)

    result = run(workspace, provider, force=True, **settings)

    assert not result.ok
    assert whole_target_conflicts(result) != []
    assert_nothing_deleted(workspace, provider, before)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_empty_dashboard_fails_cli_apply(
    workspace: Workspace, dashboard: LoopbackServer, provider: str
) -> None:
    before = apply_owned(workspace, provider)
    settings = {**SETTINGS, **empty_dashboard(workspace, dashboard)}

    completed = workspace.cli("apply", "--yes", "--force", "--target", provider, extra=settings)

    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "holds no managed key" in completed.stdout
    assert "Traceback" not in completed.stderr
    assert_nothing_deleted(workspace, provider, before)


# A deleted Vault version.


def delete_latest_version(workspace: Workspace) -> None:
    url = f"{workspace.emulators.vault_url}/v1/secret/data/envsync"
    response = httpx.delete(url, headers={"X-Vault-Token": VAULT_TOKEN}, timeout=10)
    assert response.status_code == 204


def vault_settings(workspace: Workspace) -> dict[str, str]:
    return {
        "ENVSYNC_CANONICAL_SOURCE": "vault",
        "VAULT_ADDR": workspace.emulators.vault_url,
        "VAULT_TOKEN": VAULT_TOKEN,
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_deleted_vault_version_stops_run(workspace: Workspace, provider: str) -> None:
    before = apply_owned(workspace, provider)
    assert run(workspace, provider, **vault_settings(workspace)).ok
    clear_requests(workspace, provider)
    delete_latest_version(workspace)

    with pytest.raises(SecretDeletedError):
        run(workspace, provider, **vault_settings(workspace))

    assert wait_idle(workspace, provider) == []
    assert state(workspace, provider) == before


@pytest.mark.parametrize("provider", PROVIDERS)
def test_deleted_vault_version_fails_cli(workspace: Workspace, provider: str) -> None:
    before = apply_owned(workspace, provider)
    delete_latest_version(workspace)
    settings = {**SETTINGS, **vault_settings(workspace)}

    completed = workspace.cli("apply", "--yes", "--force", "--target", provider, extra=settings)

    assert completed.returncode == 1
    assert "secret/envsync" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert VAULT_TOKEN not in completed.stdout + completed.stderr
    assert wait_idle(workspace, provider) == []
    assert state(workspace, provider) == before


# Too many deletions at once.


def truncate_to_half(workspace: Workspace) -> list[str]:
    """Cut the canonical file after half its lines; return the keys cut off."""
    path = workspace.folder / ".env.canonical"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
    return list(OWNED)[len(lines) // 2 :]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_truncated_file_conflicts_until_forced(workspace: Workspace, provider: str) -> None:
    before = apply_owned(workspace, provider)
    cut = truncate_to_half(workspace)

    first = run(workspace, provider)
    second = run(workspace, provider)

    for result in (first, second):
        assert not result.ok
        [reason] = whole_target_conflicts(result)
        assert "12 deletions exceed ENVSYNC_MAX_DELETIONS=10" in reason
    assert_nothing_deleted(workspace, provider, before)

    forced = run(workspace, provider, force=True)

    assert forced.ok, forced.errors
    assert sorted(change.key for change in forced.written) == sorted(cut)
    assert {change.op for change in forced.written} == {Op.DELETE}
    after = state(workspace, provider)
    assert [key for key in cut if key in after] == []
    assert {key: after[key] for key in UNMANAGED} == {key: before[key] for key in UNMANAGED}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_truncated_file_cli_needs_force(workspace: Workspace, provider: str) -> None:
    before = apply_owned(workspace, provider)
    cut = truncate_to_half(workspace)
    target = ("--target", provider)

    refused = workspace.cli("apply", "--yes", *target, extra=SETTINGS)
    planned = workspace.cli("plan", *target, extra=SETTINGS)

    assert refused.returncode == 1
    assert "ENVSYNC_MAX_DELETIONS" in refused.stdout
    assert planned.returncode == 1
    assert state(workspace, provider) == before

    forced = workspace.cli("apply", "--yes", "--force", *target, extra=SETTINGS)

    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert [key for key in cut if key in state(workspace, provider)] == []


# Keys a person edited since envsync wrote them.


def edit_on_platform(workspace: Workspace, provider: str, key: str, value: str) -> None:
    current = workspace.emulators.state(provider)
    if provider == "render":
        [service] = current["services"]
        for item in service["envVars"]:
            if item["key"] == key:
                item["value"] = value
    else:
        [site] = current["sites"]
        for variable in site["env"]:
            if variable["key"] == key:
                variable["values"] = [{"context": "production", "value": value}]
                variable["updated_at"] = "2099-01-01T00:00:00Z"
    workspace.emulators.seed({provider: current})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_edited_owned_key_is_conflict(workspace: Workspace, provider: str) -> None:
    apply_owned(workspace, provider)
    edit_on_platform(workspace, provider, "BRIDGE_KEY_00", "edited by a person")
    edited = state(workspace, provider)
    kept = {
        key: value for key, value in OWNED.items() if key not in ("BRIDGE_KEY_00", "BRIDGE_KEY_01")
    }
    workspace.write_env(dotenv_text(kept))
    clear_requests(workspace, provider)

    result = run(workspace, provider)

    assert result.plan is not None
    assert [conflict.key for conflict in result.plan.conflicts] == ["BRIDGE_KEY_00"]
    assert [(change.key, change.op) for change in result.written] == [("BRIDGE_KEY_01", Op.DELETE)]
    after = state(workspace, provider)
    assert after["BRIDGE_KEY_00"] == edited["BRIDGE_KEY_00"]
    assert "BRIDGE_KEY_01" not in after


@pytest.mark.parametrize("provider", PROVIDERS)
def test_edited_key_in_set_is_repaired(workspace: Workspace, provider: str) -> None:
    apply_owned(workspace, provider)
    edit_on_platform(workspace, provider, "BRIDGE_KEY_00", "edited by a person")

    result = run(workspace, provider)

    assert result.ok
    assert [(change.key, change.op) for change in result.written] == [("BRIDGE_KEY_00", Op.UPDATE)]
    assert state(workspace, provider) == apply_state_of(workspace, provider)


def apply_state_of(workspace: Workspace, provider: str) -> dict[str, Any]:
    if provider == "render":
        return {**UNMANAGED, **OWNED}
    expected: dict[str, Any] = {key: {"production": value} for key, value in UNMANAGED.items()}
    expected["BRIDGE_OTHER_CONTEXT"] = {"branch:staging": "stage"}
    expected.update({key: {"production": value} for key, value in OWNED.items()})
    return expected


def test_edited_netlify_secret_is_conflict(workspace: Workspace) -> None:
    seed(workspace)
    workspace.write_env("BRIDGE_API_TOKEN=secret-one\nBRIDGE_KEEP=1\n")
    secrets = {"NETLIFY_SECRET_KEYS": "*_TOKEN"}
    assert run(workspace, "netlify", **secrets).ok
    edit_on_platform(workspace, "netlify", "BRIDGE_API_TOKEN", "a person's secret")
    workspace.write_env("BRIDGE_KEEP=1\n")
    clear_requests(workspace, "netlify")

    result = run(workspace, "netlify", **secrets)

    assert result.plan is not None
    assert [conflict.key for conflict in result.plan.conflicts] == ["BRIDGE_API_TOKEN"]
    assert writes(wait_idle(workspace, "netlify")) == []
    assert "BRIDGE_API_TOKEN" in workspace.netlify_vars()
