"""The sync routes over real HTTP, with the emulators as Render and Netlify."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from envsync.emulators import EmulatorSet
from envsync.locks import TargetLocks
from tests.api.conftest import RENDER_LEDGER_ID, RunningApi, StartApi

OWNER_ID = "tea-d0emu0team0000000000"
SECOND_SERVICE_ID = "srv-d0emu0worker00000000"


def _render_keys(emulators: EmulatorSet, service_id: str) -> set[str]:
    state = emulators.state("render")
    service = next(item for item in state["services"] if item["id"] == service_id)
    return {variable["key"] for variable in service["envVars"]}


def _wait_for_run(client: httpx.Client, run_id: str) -> dict[str, Any]:
    """Poll the run until it is no longer running; fail after about 30 s."""
    for _ in range(300):
        run: dict[str, Any] = client.get(f"/envsync/runs/{run_id}").json()
        if run["status"] != "running":
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still running")


def test_dry_run_returns_single_target_shape(api: RunningApi, emulators: EmulatorSet) -> None:
    with api.client() as client:
        response = client.post("/envsync/dry-run/render")

    assert response.status_code == 200
    body = response.json()
    assert body["provider"] == "render"
    assert body["target"] == "render/api"
    assert body["mode"] == "dry-run"
    assert body["applied"] is False
    assert {entry["key"] for entry in body["diff"]} == {"BRIDGE_VERSION", "BRIDGE_API_URL"}
    assert all(entry["to_val"].startswith("sha:") for entry in body["diff"])
    assert body["errors"] == []
    assert _render_keys(emulators, "srv-d0emu0api00000000000") == set()


def test_apply_writes_and_returns_200(api: RunningApi, emulators: EmulatorSet) -> None:
    with api.client() as client:
        response = client.post("/envsync/apply/render")

    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "enforce"
    assert body["applied"] is True
    assert body["written"] == 2
    assert _render_keys(emulators, "srv-d0emu0api00000000000") == {
        "BRIDGE_VERSION",
        "BRIDGE_API_URL",
    }


def test_apply_hides_values_in_diff(api: RunningApi) -> None:
    with api.client() as client:
        response = client.post("/envsync/apply/netlify")

    assert response.status_code == 200
    assert "1.9.8" not in response.text
    assert "https://api.example.com" not in response.text


def test_provider_with_two_targets_uses_targets_form(
    start_api: StartApi, emulators: EmulatorSet
) -> None:
    render = emulators.state("render")
    render["services"].append(
        {
            "id": SECOND_SERVICE_ID,
            "name": "worker",
            "ownerId": OWNER_ID,
            "type": "background_worker",
            "envVars": [],
        }
    )
    emulators.seed({"render": render})
    api = start_api(RENDER_SERVICE_ID=f"srv-d0emu0api00000000000,{SECOND_SERVICE_ID}")

    with api.client() as client:
        response = client.post("/envsync/dry-run/render")

    assert response.status_code == 200
    body = response.json()
    assert body["provider"] == "render"
    names = {target["target"] for target in body["targets"]}
    assert len(names) == 2
    assert len(body["diff"]) == 4
    assert {entry["target"] for entry in body["diff"]} == names
    assert body["errors"] == []


def test_apply_all_returns_502_when_one_provider_fails(
    api: RunningApi, emulators: EmulatorSet
) -> None:
    emulators.add_fault(
        "netlify", {"match": {"path": ".*"}, "times": 100, "fault": {"status": 401}}
    )

    with api.client() as client:
        response = client.post("/envsync/apply-all")

    assert response.status_code == 502
    body = response.json()
    assert body["ok"] is False
    results = {result["provider"]: result for result in body["results"]}
    assert results["render"]["applied"] is True
    assert results["render"]["errors"] == []
    assert results["netlify"]["applied"] is False
    assert results["netlify"]["errors"]
    assert _render_keys(emulators, "srv-d0emu0api00000000000") == {
        "BRIDGE_VERSION",
        "BRIDGE_API_URL",
    }


def test_rejected_reserved_key_returns_502(api: RunningApi, start_api: StartApi) -> None:
    canonical = api.folder / "reserved.env"
    canonical.write_text("SITE_NAME=web\nBRIDGE_VERSION=1.9.8\n", encoding="utf-8")
    api = start_api(ENVSYNC_CANONICAL_FILE=str(canonical), ENVSYNC_INCLUDE_PREFIXES="")

    with api.client() as client:
        response = client.post("/envsync/dry-run/netlify")

    assert response.status_code == 502
    body = response.json()
    assert [entry["key"] for entry in body["rejected"]] == ["SITE_NAME"]
    assert [entry["key"] for entry in body["diff"]] == ["BRIDGE_VERSION"]


def test_apply_returns_409_while_lock_held(start_api: StartApi) -> None:
    api = start_api(ENVSYNC_LOCK_TIMEOUT_S="0.2")
    locks = TargetLocks(api.environ["ENVSYNC_DATABASE_URL"])

    async def apply_while_locked() -> httpx.Response:
        async with locks.hold(RENDER_LEDGER_ID, 5):
            with api.client() as client:
                return await asyncio.to_thread(client.post, "/envsync/apply/render")

    response = asyncio.run(apply_while_locked())

    assert response.status_code == 409
    body = response.json()
    assert body["applied"] is False
    assert "lock" in body["errors"][0]


def test_apply_without_wait_returns_202(api: RunningApi, emulators: EmulatorSet) -> None:
    with api.client() as client:
        response = client.post("/envsync/apply/render", params={"wait": "false"})
        accepted = response.json()
        run = _wait_for_run(client, accepted["run_id"])

    assert response.status_code == 202
    assert accepted["status"] == "running"
    assert response.headers["location"] == f"/envsync/runs/{accepted['run_id']}"
    assert run["status"] == "succeeded"
    assert run["trigger"] == "api"
    assert [target["target"] for target in run["targets"]] == ["render/api"]
    assert len(run["targets"][0]["written"]) == 2
    assert _render_keys(emulators, "srv-d0emu0api00000000000") == {
        "BRIDGE_VERSION",
        "BRIDGE_API_URL",
    }


def test_apply_all_without_wait_returns_202(api: RunningApi) -> None:
    with api.client() as client:
        response = client.post("/envsync/apply-all", params={"wait": "false"})
        run = _wait_for_run(client, response.json()["run_id"])

    assert response.status_code == 202
    assert run["status"] == "succeeded"
    assert sorted(target["provider"] for target in run["targets"]) == ["netlify", "render"]


def test_force_reaches_the_planner(start_api: StartApi, emulators: EmulatorSet) -> None:
    api = start_api(ENVSYNC_ALLOW_DELETIONS="true", ENVSYNC_MAX_DELETIONS="0")
    with api.client() as client:
        client.post("/envsync/apply/render")
    (api.folder / "canonical.env").write_text("BRIDGE_VERSION=1.9.8\n", encoding="utf-8")

    with api.client() as client:
        unforced = client.post("/envsync/dry-run/render")
        forced = client.post("/envsync/dry-run/render", params={"force": "true"})

    assert unforced.status_code == 502
    assert unforced.json()["conflicts"]
    assert forced.status_code == 200
    assert [entry["op"] for entry in forced.json()["diff"]] == ["delete"]


def test_unknown_provider_returns_404_with_list(api: RunningApi) -> None:
    with api.client() as client:
        response = client.post("/envsync/apply/heroku")

    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "UnknownProvider"
    assert body["providers"] == ["render", "netlify"]


def test_provider_outside_targets_returns_409(start_api: StartApi) -> None:
    api = start_api(ENVSYNC_TARGETS="render")

    with api.client() as client:
        response = client.post("/envsync/dry-run/netlify")

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "ProviderNotConfigured"
    assert body["setting"] == "ENVSYNC_TARGETS"
    assert "ENVSYNC_TARGETS" in body["message"]


def test_missing_token_returns_409_naming_setting(start_api: StartApi) -> None:
    api = start_api(NETLIFY_API_TOKEN=None)

    with api.client() as client:
        response = client.post("/envsync/apply/netlify", params={"wait": "false"})

    assert response.status_code == 409
    body = response.json()
    assert body["setting"] == "NETLIFY_API_TOKEN"
    assert "NETLIFY_API_TOKEN" in body["message"]


def test_unreadable_source_returns_500_without_traceback(start_api: StartApi) -> None:
    api = start_api(ENVSYNC_CANONICAL_FILE="/nonexistent/envsync/canonical.env")

    with api.client() as client:
        response = client.post("/envsync/dry-run/render")

    assert response.status_code == 500
    body = response.json()
    assert body["error"].endswith("Error")
    assert "canonical.env" in body["message"]
    assert "Traceback" not in response.text


@pytest.mark.postgres
def test_apply_returns_409_under_postgres_lock(start_api: StartApi, postgres_url: str) -> None:
    api = start_api(ENVSYNC_DATABASE_URL=postgres_url, ENVSYNC_LOCK_TIMEOUT_S="0.2")
    locks = TargetLocks(postgres_url)

    async def apply_while_locked() -> httpx.Response:
        async with locks.hold(RENDER_LEDGER_ID, 5):
            with api.client() as client:
                return await asyncio.to_thread(client.post, "/envsync/apply/render")

    locked = asyncio.run(apply_while_locked())
    with api.client() as client:
        unlocked = client.post("/envsync/apply/render")

    assert locked.status_code == 409
    assert unlocked.status_code == 200
    assert unlocked.json()["written"] == 2
