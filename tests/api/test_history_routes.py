"""Runs, tickets, rollback and rotation over real HTTP."""

from __future__ import annotations

from envsync.emulators import EmulatorSet
from tests.api.conftest import RunningApi, StartApi

SERVICE_ID = "srv-d0emu0api00000000000"


def _render_values(emulators: EmulatorSet) -> dict[str, str]:
    state = emulators.state("render")
    service = next(item for item in state["services"] if item["id"] == SERVICE_ID)
    return {variable["key"]: variable["value"] for variable in service["envVars"]}


def test_runs_are_paginated_newest_first(api: RunningApi) -> None:
    with api.client() as client:
        ids = [client.post("/envsync/dry-run/render").json()["run_id"] for _ in range(3)]
        first = client.get("/envsync/runs", params={"limit": 2}).json()
        second = client.get("/envsync/runs", params={"limit": 2, "offset": 2}).json()

    assert [run["id"] for run in first["runs"]] == [ids[2], ids[1]]
    assert first["next_offset"] == 2
    assert [run["id"] for run in second["runs"]] == [ids[0]]
    assert second["next_offset"] is None


def test_runs_reject_page_over_maximum(api: RunningApi) -> None:
    with api.client() as client:
        response = client.get("/envsync/runs", params={"limit": 1000})

    assert response.status_code == 422


def test_unknown_run_returns_404(api: RunningApi) -> None:
    with api.client() as client:
        response = client.get("/envsync/runs/01nonexistent")

    assert response.status_code == 404
    assert response.json()["error"] == "RunNotFound"


def test_run_shows_targets_and_writes(api: RunningApi) -> None:
    with api.client() as client:
        run_id = client.post("/envsync/apply/render").json()["run_id"]
        run = client.get(f"/envsync/runs/{run_id}").json()

    assert run["mode"] == "enforce"
    assert run["status"] == "succeeded"
    assert run["actor"] == "api 127.0.0.1"
    assert run["in_flight"] is False
    target = run["targets"][0]
    assert target["target"] == "render/api"
    assert sorted(change["key"] for change in target["written"]) == [
        "BRIDGE_API_URL",
        "BRIDGE_VERSION",
    ]


def test_failed_run_is_listed_with_error(api: RunningApi) -> None:
    (api.folder / "canonical.env").unlink()

    with api.client() as client:
        client.post("/envsync/dry-run/render")
        run = client.get("/envsync/runs").json()["runs"][0]
        detail = client.get(f"/envsync/runs/{run['id']}").json()

    assert run["status"] == "failed"
    assert "canonical.env" in detail["error"]


def test_tickets_filter_open(api: RunningApi, emulators: EmulatorSet) -> None:
    emulators.add_fault(
        "netlify", {"match": {"path": ".*"}, "times": 100, "fault": {"status": 401}}
    )

    with api.client() as client:
        client.post("/envsync/apply/netlify")
        every = client.get("/envsync/tickets").json()["tickets"]
        open_only = client.get("/envsync/tickets", params={"open": "true"}).json()["tickets"]

    assert any(ticket["cause"] == "auth" for ticket in every)
    assert open_only
    assert all(ticket["open"] for ticket in open_only)


def test_rollback_plans_then_restores(start_api: StartApi, emulators: EmulatorSet) -> None:
    api = start_api(ENVSYNC_SNAPSHOT_KEY="snapshot-passphrase-for-tests")
    with api.client() as client:
        client.post("/envsync/apply/render")
    (api.folder / "canonical.env").write_text(
        "BRIDGE_VERSION=2.0.0\nBRIDGE_API_URL=https://api.example.com\n", encoding="utf-8"
    )

    with api.client() as client:
        run_id = client.post("/envsync/apply/render").json()["run_id"]
        planned = client.post(f"/envsync/rollback/{run_id}")
        after_plan = _render_values(emulators)["BRIDGE_VERSION"]
        restored = client.post(f"/envsync/rollback/{run_id}", params={"confirm": "true"})

    assert planned.status_code == 200
    assert planned.json()["applied"] is False
    assert planned.json()["mode"] == "dry-run"
    assert after_plan == "2.0.0"
    assert restored.status_code == 200
    assert restored.json()["applied"] is True
    assert restored.json()["rolled_back_run_id"] == run_id
    assert _render_values(emulators)["BRIDGE_VERSION"] == "1.9.8"
    assert "1.9.8" not in restored.text


def test_rollback_of_unknown_run_returns_404(api: RunningApi) -> None:
    with api.client() as client:
        response = client.post("/envsync/rollback/01nonexistent")

    assert response.status_code == 404


def test_rollback_of_dry_run_returns_409(api: RunningApi) -> None:
    with api.client() as client:
        run_id = client.post("/envsync/dry-run/render").json()["run_id"]
        response = client.post(f"/envsync/rollback/{run_id}")

    assert response.status_code == 409
    assert response.json()["error"] == "RollbackError"


def test_rotate_writes_value_and_never_returns_it(api: RunningApi, emulators: EmulatorSet) -> None:
    value = "rotated-value-0123456789"

    with api.client() as client:
        response = client.post("/envsync/rotate", json={"key": "BRIDGE_VERSION", "value": value})

    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "BRIDGE_VERSION"
    assert body["generated"] is False
    assert value not in response.text
    assert _render_values(emulators)["BRIDGE_VERSION"] == value
    assert f"BRIDGE_VERSION={value}" in (api.folder / "canonical.env").read_text()


def test_rotate_key_outside_filters_returns_422(api: RunningApi) -> None:
    with api.client() as client:
        response = client.post("/envsync/rotate", json={"key": "OTHER_KEY", "generate": True})

    assert response.status_code == 422
    assert response.json()["error"] == "RotationError"


def test_rotation_run_is_counted_in_metrics(api: RunningApi) -> None:
    with api.client() as client:
        client.post("/envsync/rotate", json={"key": "BRIDGE_VERSION", "generate": True})
        metrics = client.get("/metrics").text

    assert 'envsync_runs_total{mode="enforce",status="succeeded",trigger="rotate"} 1.0' in metrics
