"""Bearer-token authentication of the API, over real HTTP."""

from __future__ import annotations

import logging

import pytest

from tests.api.conftest import API_TOKEN, RunningApi, StartApi

# Every route that needs the token, with its method.
AUTHENTICATED_ROUTES = [
    ("POST", "/envsync/dry-run/render"),
    ("POST", "/envsync/apply/render"),
    ("POST", "/envsync/apply-all"),
    ("GET", "/envsync/runs"),
    ("GET", "/envsync/runs/unknown"),
    ("GET", "/envsync/tickets"),
    ("POST", "/envsync/rollback/unknown"),
    ("POST", "/envsync/rotate"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
]

BAD_HEADERS = [
    ({}, "missing"),
    ({"Authorization": "Bearer not-the-token"}, "wrong"),
    ({"Authorization": f"Basic {API_TOKEN}"}, "malformed"),
    ({"Authorization": "Bearer"}, "malformed"),
    ({"Authorization": f"Bearer {API_TOKEN}x"}, "wrong"),
]


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED_ROUTES)
def test_route_without_token_returns_401(api: RunningApi, method: str, path: str) -> None:
    with api.client(token=None) as client:
        response = client.request(method, path)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"] == "Unauthorized"


@pytest.mark.parametrize(("headers", "reason"), BAD_HEADERS)
def test_bad_authorization_returns_401(
    api: RunningApi, headers: dict[str, str], reason: str
) -> None:
    with api.client(token=None) as client:
        response = client.get("/envsync/runs", headers=headers)
        metrics = client.get("/metrics").text

    assert response.status_code == 401
    assert f'envsync_api_auth_failures_total{{reason="{reason}"}} 1.0' in metrics


def test_wrong_token_is_not_run(api: RunningApi) -> None:
    with api.client(token="not-the-token") as client:
        client.post("/envsync/apply-all")
    with api.client() as client:
        runs = client.get("/envsync/runs").json()["runs"]

    assert runs == []


@pytest.mark.parametrize("path", ["/envsync/health", "/metrics"])
def test_open_route_needs_no_token(api: RunningApi, path: str) -> None:
    with api.client(token=None) as client:
        response = client.get(path)

    assert response.status_code == 200


def test_right_token_opens_routes(api: RunningApi) -> None:
    with api.client() as client:
        runs = client.get("/envsync/runs")
        schema = client.get("/openapi.json")
        docs = client.get("/docs")

    assert runs.status_code == 200
    assert schema.status_code == 200
    assert "/envsync/apply/{provider}" in schema.json()["paths"]
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_failed_attempts_are_counted_by_reason(api: RunningApi) -> None:
    with api.client(token="not-the-token") as client:
        client.get("/envsync/runs")
        client.get("/envsync/runs")
    with api.client(token=None) as client:
        client.get("/envsync/tickets")
        metrics = client.get("/metrics").text

    assert 'envsync_api_auth_failures_total{reason="wrong"} 2.0' in metrics
    assert 'envsync_api_auth_failures_total{reason="missing"} 1.0' in metrics


def test_failed_attempt_log_omits_token(api: RunningApi, caplog: pytest.LogCaptureFixture) -> None:
    presented = "presented-token-that-must-not-be-logged"
    with (
        caplog.at_level(logging.WARNING, logger="envsync.api.auth"),
        api.client(token=presented) as client,
    ):
        client.get("/envsync/runs")

    lines = [record.getMessage() for record in caplog.records]
    assert any("rejected GET /envsync/runs" in line for line in lines)
    assert not any(presented in line for line in lines)


def test_insecure_local_serves_without_token(start_api: StartApi) -> None:
    api = start_api(ENVSYNC_API_TOKEN=None, app_options={"insecure_local": True})

    with api.client(token=None) as client:
        runs = client.get("/envsync/runs")
        health = client.get("/envsync/health")

    assert runs.status_code == 200
    assert health.json()["auth"] == "insecure-local"


def test_configured_token_wins_over_insecure_local(start_api: StartApi) -> None:
    api = start_api(app_options={"insecure_local": True})

    with api.client(token=None) as client:
        response = client.get("/envsync/runs")

    assert response.status_code == 401
