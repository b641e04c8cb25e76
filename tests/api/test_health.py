"""Health: configuration without secrets, scheduler, last runs, and the cached store ping."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from envsync.api.health import origin, public_url
from envsync.emulators import EmulatorSet
from tests.api.conftest import RunningApi, StartApi

CANARY = "CANARY7f3a"


def _canaries() -> dict[str, str]:
    """A distinct canary string for every credential setting."""
    return {
        "ENVSYNC_API_TOKEN": f"{CANARY}-api-token-0001",
        "ENVSYNC_LEDGER_KEY": f"{CANARY}-ledger-key-0001",
        "ENVSYNC_SNAPSHOT_KEY": f"{CANARY}-snapshot-key-0001",
        "ENVSYNC_WEBHOOK_SECRET": f"{CANARY}-webhook-secret-0001",
        "VAULT_TOKEN": f"{CANARY}-vault-token-0001",
        "ENVSYNC_VAULT_AUTH_TOKEN": f"{CANARY}-vault-auth-0001",
        "ENVSYNC_DASHBOARD_AUTH_TOKEN": f"{CANARY}-dashboard-auth-0001",
        "RENDER_API_TOKEN": f"rnd_{CANARY}render0000000000",
        "NETLIFY_API_TOKEN": f"nfp_{CANARY}netlify00000000000",
    }


def _seed_canary_tokens(emulators: EmulatorSet, canaries: dict[str, str]) -> None:
    render = emulators.state("render")
    render["tokens"] = [canaries["RENDER_API_TOKEN"]]
    netlify = emulators.state("netlify")
    netlify["tokens"] = [canaries["NETLIFY_API_TOKEN"]]
    emulators.seed({"render": render, "netlify": netlify})


def _every_route(client: httpx.Client) -> list[httpx.Response]:
    responses = [
        client.get("/envsync/health"),
        client.get("/metrics"),
        client.post("/envsync/dry-run/render"),
        client.post("/envsync/apply-all"),
        client.post("/envsync/apply/netlify", params={"wait": "false"}),
        client.post("/envsync/dry-run/heroku"),
        client.get("/envsync/tickets"),
        client.post("/envsync/rotate", json={"key": "BRIDGE_SECRET", "value": f"{CANARY}-v"}),
        client.post("/envsync/rotate", json={"key": 7, "value": f"{CANARY}-invalid"}),
        client.get("/openapi.json"),
        client.get("/docs"),
    ]
    runs = client.get("/envsync/runs")
    responses.append(runs)
    for run in runs.json()["runs"]:
        responses.append(client.get(f"/envsync/runs/{run['id']}"))
        responses.append(client.post(f"/envsync/rollback/{run['id']}"))
    responses.append(client.get("/envsync/runs", headers={"Authorization": "Bearer wrong"}))
    return responses


def test_no_credential_in_any_response(
    start_api: StartApi,
    emulators: EmulatorSet,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    canaries = _canaries()
    _seed_canary_tokens(emulators, canaries)
    database_folder = tmp_path / f"db-{CANARY}"
    database_folder.mkdir()
    settings = {
        **canaries,
        "ENVSYNC_DATABASE_URL": f"sqlite:///{database_folder / 'state.db'}",
        "ENVSYNC_WEBHOOK_URLS": f"http://127.0.0.1:9/hooks/{CANARY}-path?token={CANARY}-query",
        "VAULT_ADDR": f"http://127.0.0.1:9/{CANARY}-vault-path",
        "ENVSYNC_DASHBOARD_URL": f"http://127.0.0.1:9/{CANARY}-dashboard?key={CANARY}",
        "ENVSYNC_DASHBOARD_TOKEN_URLS": f"http://127.0.0.1:9/{CANARY}-tokens",
    }
    api = start_api(**settings)
    (api.folder / "canonical.env").write_text("BRIDGE_SECRET=old\n", encoding="utf-8")

    with caplog.at_level(logging.DEBUG), api.client(token=canaries["ENVSYNC_API_TOKEN"]) as client:
        responses = _every_route(client)

    assert len(responses) > 12
    for response in responses:
        exposed = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        assert CANARY not in exposed, f"{response.request.url.path} exposed a credential"
    # Third-party loggers are left out: filelock's DEBUG lines name the lock file's path,
    # which holds the canary only because this test put it in the database folder's name.
    for record in caplog.records:
        if record.name.startswith(("envsync", "uvicorn")):
            assert CANARY not in record.getMessage(), f"{record.name} logged a credential"


def test_health_shows_configuration(api: RunningApi) -> None:
    with api.client(token=None) as client:
        body = client.get("/envsync/health").json()

    assert body["status"] == "ok"
    assert body["auth"] == "token"
    config = body["config"]
    assert config["mode"] == "dry-run"
    assert config["schedule"] == "@hourly"
    assert config["source"]["kind"] == "file"
    assert config["targets"] == ["render", "netlify"]
    assert config["filters"]["include_prefixes"] == ["BRIDGE_", "SR_", "HEART_", "ENVSYNC_"]
    assert config["urls"]["render"] == api.environ["RENDER_API_URL"]
    assert body["store"] == {"reachable": True, "backend": "sqlite"}
    assert body["scheduler"]["started"] is False


def test_health_shows_last_run_per_target(api: RunningApi) -> None:
    with api.client() as client:
        run_id = client.post("/envsync/apply/render").json()["run_id"]
        client.post("/envsync/dry-run/netlify")
        api.service.store_status._checked_at = None  # the next health request checks again
        last_runs: dict[str, Any] = client.get("/envsync/health").json()["last_runs"]

    assert last_runs["render/api"]["run_id"] == run_id
    assert last_runs["render/api"]["mode"] == "enforce"
    assert last_runs["render/api"]["ok"] is True
    assert last_runs["render/api"]["written"] == 2
    assert last_runs["netlify/web"]["mode"] == "dry-run"


class CountingPing:
    def __init__(self, ping: Any) -> None:
        self.ping = ping
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return bool(self.ping())


def test_health_pings_store_once_per_second(start_api: StartApi) -> None:
    now = [1000.0]
    api = start_api(service_options={"clock": lambda: now[0]})
    store = api.service.store
    counter = CountingPing(store.ping)
    store.ping = counter  # type: ignore[method-assign]

    with api.client(token=None) as client:
        for _ in range(5):
            assert client.get("/envsync/health").status_code == 200
        calls_within_a_second = counter.calls
        now[0] += 1.5
        client.get("/envsync/health")
        client.get("/envsync/health")

    assert calls_within_a_second == 1
    assert counter.calls == 2


def test_health_returns_503_when_store_fails(start_api: StartApi) -> None:
    api = start_api()
    api.service.store.ping = lambda: False  # type: ignore[method-assign]
    api.service.store_status._checked_at = None

    with api.client(token=None) as client:
        response = client.get("/envsync/health")

    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["store"]["reachable"] is False


@pytest.mark.parametrize(
    ("url", "public", "origin_only"),
    [
        (
            "https://user:pass@api.example.com:8443/v1?token=abc#frag",
            "https://api.example.com:8443/v1",
            "https://api.example.com:8443",
        ),
        ("http://127.0.0.1:9/vault/path", "http://127.0.0.1:9/vault/path", "http://127.0.0.1:9"),
        ("http://[::1]:8200/v1", "http://[::1]:8200/v1", "http://[::1]:8200"),
    ],
)
def test_urls_lose_credentials(url: str, public: str, origin_only: str) -> None:
    assert public_url(url) == public
    assert origin(url) == origin_only
