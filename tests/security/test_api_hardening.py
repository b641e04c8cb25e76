"""The HTTP API and envsync's outgoing HTTP are hardened.

The API: every route but health and metrics needs the bearer token. The routes are read
from the app's router, so a new route without the check fails here. The token is compared
with `hmac.compare_digest`, and failed attempts are counted and logged without the
presented token. Request bodies are limited, and CORS headers appear only for configured
origins.

Outgoing HTTP: credentials go to vaults, dashboards and webhooks over plain HTTP only on
loopback, TLS verification stays on in every client envsync builds, and no client follows
a redirect, so no credential reaches another origin (another loopback port is another
origin).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from fastapi import FastAPI

from envsync.api import auth as api_auth
from envsync.api import create_app
from envsync.config import Settings, load_settings
from envsync.discovery import discover_token
from envsync.emulators import EmulatorSet
from envsync.engine import Engine, RunRequest
from envsync.errors import ConfigError, SourceFetchError
from envsync.events import Event
from envsync.model import RunMode
from envsync.service import Service
from envsync.sources import load_canonical
from envsync.webhooks import WebhookSink
from tests.api.conftest import API_TOKEN, ServerThread, service_environ
from tests.security.conftest import Stage
from tests.security.stage import ApiRoute, api_routes, captured_logs
from tests.sources.loopback import (
    LoopbackServer,
    Reply,
    loopback_pair,
    other_origin,
    server,
)

__all__ = ["loopback_pair", "other_origin", "server"]

# The routes that respond without a token: a platform's health check and Prometheus.
OPEN_ROUTES = {ApiRoute("GET", "/envsync/health"), ApiRoute("GET", "/metrics")}

PATH_VALUES = {"provider": "render", "run_id": "unknown-run"}


@pytest.fixture
def start_service(emulators: EmulatorSet, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Serve the API on a loopback port with the given settings; stop it after the test."""
    running: list[ServerThread] = []

    def start(**settings: str | None) -> tuple[str, FastAPI, Service]:
        environ = service_environ(emulators, tmp_path)
        for name, value in settings.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        service = Service(load_settings(environ, cwd=tmp_path), environ=environ, cwd=tmp_path)
        app = create_app(service)
        thread = ServerThread(app)
        thread.start()
        running.append(thread)
        return thread.url, app, service

    yield start
    for thread in running:
        thread.stop()


def concrete(route: ApiRoute) -> str:
    path = route.path
    for name, value in PATH_VALUES.items():
        path = path.replace(f"{{{name}}}", value)
    assert "{" not in path, f"no test value for a parameter of {route.path}"
    return path


def unauthenticated_routes(url: str, app: FastAPI) -> list[ApiRoute]:
    """Return the routes outside OPEN_ROUTES that serve a request without a token."""
    exposed = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for route in api_routes(app):
            if route in OPEN_ROUTES:
                continue
            if client.request(route.method, concrete(route)).status_code != 401:
                exposed.append(route)
    return exposed


# Authentication.


def test_route_list_covers_openapi_paths(start_service: Callable[..., Any]) -> None:
    _, app, _ = start_service()

    listed = {route.path for route in api_routes(app)}

    assert set(app.openapi()["paths"]) <= listed
    assert {"/docs", "/openapi.json"} <= listed


def test_every_route_but_two_needs_token(start_service: Callable[..., Any]) -> None:
    url, app, _ = start_service()

    assert unauthenticated_routes(url, app) == []


def test_open_routes_serve_without_token(start_service: Callable[..., Any]) -> None:
    url, _, _ = start_service()

    with httpx.Client(base_url=url, timeout=60) as client:
        statuses = {route.path: client.get(route.path).status_code for route in OPEN_ROUTES}

    assert statuses == {"/envsync/health": 200, "/metrics": 200}


def test_new_route_without_token_is_caught(start_service: Callable[..., Any]) -> None:
    url, app, _ = start_service()

    @app.get("/envsync/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"ok": "yes"}

    assert unauthenticated_routes(url, app) == [ApiRoute("GET", "/envsync/forgotten")]


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {API_TOKEN}x", f"Bearer {API_TOKEN[:-1]}", f"Basic {API_TOKEN}", "Bearer", ""],
    ids=["longer", "shorter", "basic", "empty-bearer", "empty"],
)
def test_every_route_rejects_bad_authorization(
    start_service: Callable[..., Any], authorization: str
) -> None:
    url, app, _ = start_service()

    with httpx.Client(base_url=url, timeout=60) as client:
        for route in api_routes(app):
            if route in OPEN_ROUTES:
                continue
            response = client.request(
                route.method, concrete(route), headers={"Authorization": authorization}
            )
            assert response.status_code == 401, route
            assert response.headers["www-authenticate"] == 'Bearer realm="envsync"', route


def test_token_compared_with_compare_digest(
    start_service: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _, _ = start_service()
    calls: list[tuple[Any, Any]] = []
    compare_digest = hmac.compare_digest

    def spy(presented: Any, expected: Any) -> bool:
        calls.append((presented, expected))
        return compare_digest(presented, expected)

    monkeypatch.setattr(api_auth.hmac, "compare_digest", spy)
    tokens = [API_TOKEN, "x" * len(API_TOKEN), "short"]
    with httpx.Client(base_url=url, timeout=60) as client:
        statuses = [
            client.get("/envsync/runs", headers={"Authorization": f"Bearer {token}"}).status_code
            for token in tokens
        ]

    assert statuses == [200, 401, 401]
    assert [presented for presented, _ in calls] == [token.encode() for token in tokens]
    assert all(expected == API_TOKEN.encode() for _, expected in calls)
    assert all(
        type(presented) is bytes and type(expected) is bytes for presented, expected in calls
    )


def test_failed_attempts_counted_and_logged_without_token(
    start_service: Callable[..., Any],
) -> None:
    url, app, _ = start_service()
    presented = "presented-token-ab12cd34ef56"
    guarded = [route for route in api_routes(app) if route not in OPEN_ROUTES]

    with captured_logs("DEBUG", "text") as logs, httpx.Client(base_url=url, timeout=60) as client:
        for route in guarded:
            client.request(
                route.method, concrete(route), headers={"Authorization": f"Bearer {presented}"}
            )
        metrics = client.get("/metrics").text

    count = f"{float(len(guarded))}"
    assert f'envsync_api_auth_failures_total{{reason="wrong"}} {count}' in metrics
    rejections = [text for text in logs.collector.texts if "rejected " in text]
    assert rejections, "no rejected request was logged"
    assert "wrong bearer token" in rejections[0]
    assert presented not in "\n".join(logs.collector.texts)
    assert presented not in logs.stream.getvalue()


# Request bodies and CORS.


def test_oversized_body_rejected_on_every_post_route(start_service: Callable[..., Any]) -> None:
    url, app, _ = start_service(ENVSYNC_MAX_BODY_BYTES="1024")
    posts = [route for route in api_routes(app) if route.method == "POST"]
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}

    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        for route in posts:
            response = client.post(concrete(route), content=b" " * 1025)
            assert response.status_code == 413, route
            assert response.json()["error"] == "RequestEntityTooLarge", route


def test_body_limit_is_exact(start_service: Callable[..., Any]) -> None:
    url, _, _ = start_service(ENVSYNC_MAX_BODY_BYTES="1024")
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}

    def chunks(size: int) -> Iterator[bytes]:
        yield b" " * size

    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        at_limit = client.post("/envsync/rotate", content=b" " * 1024)
        over_limit = client.post("/envsync/rotate", content=b" " * 1025)
        streamed_over = client.post("/envsync/rotate", content=chunks(1025))

    assert at_limit.status_code == 422
    assert over_limit.status_code == 413
    assert streamed_over.status_code == 413


ORIGIN = "https://admin.example.com"
SECOND_ORIGIN = "http://127.0.0.1:3000"


def preflight(client: httpx.Client, path: str, origin: str) -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def test_no_cors_headers_without_setting(start_service: Callable[..., Any]) -> None:
    url, app, _ = start_service()

    with httpx.Client(base_url=url, timeout=60) as client:
        for route in api_routes(app):
            path = concrete(route)
            assert cors_headers(preflight(client, path, ORIGIN)) == {}, route
            simple = client.request(route.method, path, headers={"Origin": ORIGIN})
            assert cors_headers(simple) == {}, route


def test_cors_allows_exactly_configured_origins(start_service: Callable[..., Any]) -> None:
    url, _, _ = start_service(ENVSYNC_CORS_ORIGINS=f"{ORIGIN},{SECOND_ORIGIN}")
    path = "/envsync/apply-all"

    with httpx.Client(base_url=url, timeout=60) as client:
        allowed = {origin: preflight(client, path, origin) for origin in (ORIGIN, SECOND_ORIGIN)}
        other = preflight(client, path, "https://admin.example.com.evil.test")
        simple_other = client.get("/envsync/health", headers={"Origin": "https://evil.test"})

    for origin, response in allowed.items():
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-credentials" not in response.headers
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in simple_other.headers


# Credentials over plain HTTP.


def settings_of(**values: str) -> Settings:
    base = {
        "ENVSYNC_SECRET_DIRS": "/nonexistent/envsync-secrets",
        "ENVSYNC_MAX_RETRIES": "0",
        "ENVSYNC_DATABASE_URL": "sqlite:////nonexistent/envsync.db",
    }
    return load_settings({**base, **values}, cwd=Path("/nonexistent"))


REMOTE = "http://vault.example.com/x"

PLAIN_HTTP_CASES: dict[str, tuple[dict[str, str], str]] = {
    "bridge vault source": (
        {
            "ENVSYNC_CANONICAL_SOURCE": "vault",
            "ENVSYNC_VAULT_URL": REMOTE,
            "ENVSYNC_VAULT_AUTH_TOKEN": "t0ken-value",
        },
        "ENVSYNC_VAULT_URL",
    ),
    "hashicorp vault source": (
        {"ENVSYNC_CANONICAL_SOURCE": "vault", "VAULT_ADDR": REMOTE, "VAULT_TOKEN": "t0ken-value"},
        "VAULT_ADDR",
    ),
    "dashboard source": (
        {
            "ENVSYNC_CANONICAL_SOURCE": "dashboard",
            "ENVSYNC_DASHBOARD_URL": REMOTE,
            "ENVSYNC_DASHBOARD_AUTH_TOKEN": "t0ken-value",
        },
        "ENVSYNC_DASHBOARD_URL",
    ),
}


@pytest.mark.parametrize("case", list(PLAIN_HTTP_CASES))
def test_source_over_plain_http_rejected(case: str) -> None:
    values, setting = PLAIN_HTTP_CASES[case]

    with pytest.raises(ConfigError) as rejected:
        asyncio.run(load_canonical(settings_of(**values), environ={}))

    assert rejected.value.setting == setting
    assert "/x" not in str(rejected.value)


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        (
            {
                "ENVSYNC_DISCOVERY_ORDER": "dashboard",
                "ENVSYNC_DASHBOARD_TOKEN_URLS": REMOTE,
            },
            "ENVSYNC_DASHBOARD_TOKEN_URLS",
        ),
        (
            {"ENVSYNC_DISCOVERY_ORDER": "vault", "ENVSYNC_VAULT_URL": REMOTE},
            "ENVSYNC_VAULT_URL",
        ),
    ],
    ids=["dashboard", "bridge-vault"],
)
def test_token_discovery_over_plain_http_rejected(values: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as rejected:
        asyncio.run(discover_token(settings_of(**values), "render", environ={}))

    assert rejected.value.setting == setting


def test_webhook_over_plain_http_rejected() -> None:
    settings = settings_of(ENVSYNC_WEBHOOK_URLS=REMOTE, ENVSYNC_WEBHOOK_SECRET="s3cret-value")

    with pytest.raises(ConfigError) as rejected:
        WebhookSink(settings)

    assert rejected.value.setting == "ENVSYNC_WEBHOOK_URLS"
    assert "/x" not in str(rejected.value)


# TLS verification.


class TransportSpy:
    """Records the `verify` argument of every httpx transport and requests send."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.httpx: list[Any] = []
        self.requests: list[Any] = []
        original_init = httpx.AsyncHTTPTransport.__init__
        original_send = requests.Session.send
        spy = self

        def init(transport: Any, *args: Any, **kwargs: Any) -> None:
            spy.httpx.append(kwargs.get("verify", True))
            original_init(transport, *args, **kwargs)

        def send(session: Any, request: Any, **kwargs: Any) -> Any:
            spy.requests.append(kwargs.get("verify"))
            return original_send(session, request, **kwargs)

        monkeypatch.setattr(httpx.AsyncHTTPTransport, "__init__", init)
        monkeypatch.setattr(requests.Session, "send", send)


def run_apply(environ: dict[str, str], folder: Path) -> None:
    settings = load_settings(environ, cwd=folder)
    engine = Engine(settings, environ=environ, cwd=folder)
    report = asyncio.run(engine.run(RunRequest(mode=RunMode.ENFORCE)))
    assert report.ok, [result.errors for result in report.results]


def test_every_client_verifies_tls(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = TransportSpy(monkeypatch)
    dashboard = stage.environ(
        ENVSYNC_CANONICAL_SOURCE="dashboard",
        ENVSYNC_DISCOVERY_ORDER="dashboard",
        RENDER_API_TOKEN=None,
        NETLIFY_API_TOKEN=None,
    )
    bridge = stage.environ(ENVSYNC_CANONICAL_SOURCE="vault", ENVSYNC_VAULT_KIND="bridge")
    hashicorp = stage.environ(ENVSYNC_CANONICAL_SOURCE="vault", ENVSYNC_DISCOVERY_ORDER="vault")

    for environ in (dashboard, bridge, hashicorp):
        run_apply(environ, stage.folder)
    asyncio.run(deliver_one_event(load_settings(dashboard, cwd=stage.folder)))

    # Providers, token URLs, the dashboard, the bridge vault and the webhook sink.
    assert len(spy.httpx) >= 5
    assert all(verifies(verify) for verify in spy.httpx), spy.httpx
    # hvac, through requests, for HashiCorp Vault.
    assert spy.requests
    assert all(verifies(verify) for verify in spy.requests), spy.requests
    assert stage.server.deliveries()


def verifies(verify: Any) -> bool:
    """Whether a `verify` argument keeps certificate checks on: True, a CA bundle path
    (requests puts REQUESTS_CA_BUNDLE there), or a context that requires certificates."""
    if isinstance(verify, ssl.SSLContext):
        return verify.verify_mode == ssl.CERT_REQUIRED and verify.check_hostname
    if isinstance(verify, str):
        return bool(verify)
    return verify is True


async def deliver_one_event(settings: Settings) -> None:
    sink = WebhookSink(settings)
    sink.publish(
        Event("e1", "ENVSYNC_COMPLETE", "2026-01-01T00:00:00Z", "render", "t", "r", {}, [], [])
    )
    await sink.aclose()


# Redirects.


@pytest.fixture
def redirecting(server: LoopbackServer, other_origin: LoopbackServer) -> Callable[[str, int], None]:
    """Make `server` respond to a path with a redirect to that path on `other_origin`."""

    def redirect(path: str, status: int) -> None:
        location = f"{other_origin.url}{path}"
        server.reply(path, Reply(status, headers={"Location": location}))
        other_origin.reply(path, Reply(json_body={"key": "RENDER_API_TOKEN", "value": "x"}))

    return redirect


REDIRECTS = [301, 302, 307, 308]


@pytest.mark.parametrize("status", REDIRECTS)
def test_dashboard_redirect_not_followed(
    server: LoopbackServer,
    other_origin: LoopbackServer,
    redirecting: Callable[[str, int], None],
    status: int,
) -> None:
    redirecting("/canonical", status)
    settings = settings_of(
        ENVSYNC_CANONICAL_SOURCE="dashboard",
        ENVSYNC_DASHBOARD_URL=f"{server.url}/canonical",
        ENVSYNC_DASHBOARD_AUTH_TOKEN="dashboard-t0ken",
    )

    with pytest.raises(SourceFetchError) as failed:
        asyncio.run(load_canonical(settings, environ={}))

    assert failed.value.status == status
    assert other_origin.received == []


@pytest.mark.parametrize("status", REDIRECTS)
def test_token_discovery_redirects_not_followed(
    server: LoopbackServer,
    other_origin: LoopbackServer,
    redirecting: Callable[[str, int], None],
    status: int,
) -> None:
    redirecting("/tokens", status)
    redirecting("/bridge/vault/secret", status)
    settings = settings_of(
        ENVSYNC_DISCOVERY_ORDER="vault,dashboard",
        ENVSYNC_VAULT_URL=server.url,
        ENVSYNC_VAULT_AUTH_TOKEN="vault-t0ken",
        ENVSYNC_DASHBOARD_TOKEN_URLS=f"{server.url}/tokens",
        ENVSYNC_DASHBOARD_AUTH_TOKEN="dashboard-t0ken",
    )

    found = asyncio.run(discover_token(settings, "render", environ={}))

    assert found.token is None
    assert len(server.received) == 2
    assert other_origin.received == []


@pytest.mark.parametrize("status", REDIRECTS)
def test_vault_redirect_to_other_origin_not_followed(
    server: LoopbackServer,
    other_origin: LoopbackServer,
    redirecting: Callable[[str, int], None],
    status: int,
) -> None:
    redirecting("/v1/secret/data/envsync", status)
    settings = settings_of(
        ENVSYNC_CANONICAL_SOURCE="vault", VAULT_ADDR=server.url, VAULT_TOKEN="vault-t0ken"
    )

    with pytest.raises(SourceFetchError) as failed:
        asyncio.run(load_canonical(settings, environ={}))

    assert failed.value.status == status
    assert other_origin.received == []


def test_provider_redirect_not_followed(
    server: LoopbackServer,
    other_origin: LoopbackServer,
    redirecting: Callable[[str, int], None],
    tmp_path: Path,
) -> None:
    redirecting("/v1/services/srv-redirect0000000000000/env-vars", 307)
    canonical = tmp_path / "canonical.env"
    canonical.write_text("BRIDGE_A=1\n", encoding="utf-8")
    environ = {
        "RENDER_API_URL": f"{server.url}/v1",
        "RENDER_API_TOKEN": "rnd_t0ken",
        "RENDER_SERVICE_ID": "srv-redirect0000000000000",
        "ENVSYNC_TARGETS": "render",
        "ENVSYNC_CANONICAL_FILE": str(canonical),
        "ENVSYNC_DISCOVERY_ORDER": "env",
        "ENVSYNC_INCLUDE_PREFIXES": "",
        "ENVSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "ENVSYNC_CONFIG_FILE": str(tmp_path / "envsync.toml"),
        "ENVSYNC_MAX_RETRIES": "0",
    }
    engine = Engine(load_settings(environ, cwd=tmp_path), environ=environ, cwd=tmp_path)

    report = asyncio.run(engine.run(RunRequest(mode=RunMode.DRY_RUN)))

    assert not report.ok
    assert any("HTTP 307" in error for error in report.results[0].errors)
    assert other_origin.received == []


def test_webhook_redirect_not_followed(
    server: LoopbackServer, other_origin: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.reply("/hook", Reply(307, headers={"Location": f"{other_origin.url}/hook"}))
    settings = settings_of(
        ENVSYNC_WEBHOOK_URLS=f"{server.url}/hook",
        ENVSYNC_WEBHOOK_SECRET="s3cret-value",
        ENVSYNC_WEBHOOK_MAX_ATTEMPTS="1",
    )
    caplog.set_level(logging.WARNING, logger="envsync.webhooks")

    asyncio.run(deliver_one_event(settings))

    assert len(server.received) == 1
    assert other_origin.received == []
    assert any("redirect" in record.getMessage() for record in caplog.records)
