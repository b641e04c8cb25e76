"""Request limits and browser access: body size, CORS, and validation errors without input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from envsync.config import load_settings
from envsync.errors import ConfigError
from tests.api.conftest import RunningApi, StartApi

ORIGIN = "https://admin.example.com"


def test_declared_oversized_body_returns_413(start_api: StartApi) -> None:
    api = start_api(ENVSYNC_MAX_BODY_BYTES="1024")

    with api.client() as client:
        response = client.post("/envsync/apply-all", content=b"x" * 2048)
        runs = client.get("/envsync/runs").json()["runs"]

    assert response.status_code == 413
    assert "ENVSYNC_MAX_BODY_BYTES" in response.json()["message"]
    assert runs == []


def test_streamed_oversized_body_returns_413(start_api: StartApi) -> None:
    api = start_api(ENVSYNC_MAX_BODY_BYTES="1024")

    def chunks() -> Iterator[bytes]:
        yield b'{"key": "BRIDGE_SECRET", "value": "'
        for _ in range(64):
            yield b"y" * 64
        yield b'"}'

    with api.client() as client:
        response = client.post(
            "/envsync/rotate", content=chunks(), headers={"Content-Type": "application/json"}
        )

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert "ENVSYNC_MAX_BODY_BYTES" in response.json()["message"]


def test_body_under_limit_is_accepted(start_api: StartApi) -> None:
    api = start_api(ENVSYNC_MAX_BODY_BYTES="1024")

    with api.client() as client:
        response = client.post("/envsync/rotate", json={"key": "BRIDGE_SECRET", "generate": True})

    assert response.status_code == 200


def test_no_cors_headers_by_default(api: RunningApi) -> None:
    with api.client() as client:
        preflight = client.options(
            "/envsync/apply-all",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        simple = client.get("/envsync/health", headers={"Origin": ORIGIN})

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


def test_cors_origins_setting_allows_origin(start_api: StartApi) -> None:
    api = start_api(ENVSYNC_CORS_ORIGINS=ORIGIN)

    with api.client() as client:
        preflight = client.options(
            "/envsync/apply-all",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        other = client.get("/envsync/health", headers={"Origin": "https://other.example.com"})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in other.headers


def test_invalid_body_error_omits_value(api: RunningApi) -> None:
    value = "value-that-must-not-come-back"

    with api.client() as client:
        both = client.post(
            "/envsync/rotate", json={"key": "BRIDGE_SECRET", "value": value, "generate": True}
        )
        unknown_field = client.post(
            "/envsync/rotate", json={"key": "BRIDGE_SECRET", "value": value, "extra": value}
        )
        wrong_type = client.post("/envsync/rotate", json={"key": ["x"], "value": value})

    for response in (both, unknown_field, wrong_type):
        assert response.status_code == 422
        assert response.json()["error"] == "InvalidRequest"
        assert value not in response.text


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("*", "*"),
        ("https://admin.example.com", "https://admin.example.com"),
        ("http://127.0.0.1:3000/", "http://127.0.0.1:3000"),
        ("https://admin.example.com/path", None),
        ("ftp://admin.example.com", None),
        ("https://user@admin.example.com", None),
        ("https://admin.example.com?x=1", None),
    ],
)
def test_cors_origins_setting_is_validated(origin: str, accepted: str | None) -> None:
    if accepted is None:
        with pytest.raises(ConfigError, match="ENVSYNC_CORS_ORIGINS"):
            load_settings({"ENVSYNC_CORS_ORIGINS": origin}, cwd=Path("/nonexistent"))
        return
    settings = load_settings({"ENVSYNC_CORS_ORIGINS": origin}, cwd=Path("/nonexistent"))
    assert settings.cors_origins == [accepted]
