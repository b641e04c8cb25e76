"""The HTTP helper shared by bridge-style vaults and dashboards, over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from envsync.errors import ConfigError, SourceFetchError
from envsync.model import SecretValue
from envsync.sources.http import (
    JsonEndpoint,
    display_credential_url,
    get_json,
    origin_of,
    require_safe_url,
)
from tests.sources.loopback import LoopbackServer, Reply, make_settings

CANARY = "canary-token-5b1e9f0c7d"
PATH = "/api/tokens/envsync"


def endpoint_for(server: LoopbackServer, token: str | None = CANARY) -> JsonEndpoint:
    return JsonEndpoint(
        label="dashboard",
        url=f"{server.url}{PATH}",
        setting="ENVSYNC_DASHBOARD_URL",
        token=SecretValue(token) if token is not None else None,
        token_setting="ENVSYNC_DASHBOARD_AUTH_TOKEN",
    )


def fetch_error(server: LoopbackServer, **settings: str) -> SourceFetchError:
    with pytest.raises(SourceFetchError) as caught:
        asyncio.run(get_json(endpoint_for(server), make_settings(**settings)))
    return caught.value


def assert_no_canary(error: Exception) -> None:
    assert CANARY not in str(error)
    assert CANARY not in repr(error)
    assert "?" not in str(error)


@pytest.mark.parametrize(
    "url",
    [
        "https://vault.example.com",
        "http://127.0.0.1:8200",
        "http://127.9.9.9",
        "http://[::1]:8200",
        "http://localhost:8200",
        "http://LOCALHOST",
    ],
)
def test_safe_urls_are_accepted(url: str) -> None:
    require_safe_url(url, "ENVSYNC_VAULT_URL")


@pytest.mark.parametrize(
    "url",
    [
        "http://vault.example.com",
        "http://10.0.0.5:8200",
        "http://192.168.1.2",
        "http://[2001:db8::1]",
        "http://localhost.example.com",
        "ftp://127.0.0.1",
    ],
)
def test_plain_http_to_other_hosts_is_rejected(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        require_safe_url(f"{url}/path?key=RENDER_API_TOKEN", "ENVSYNC_VAULT_URL")

    assert caught.value.setting == "ENVSYNC_VAULT_URL"
    assert "key=" not in str(caught.value)


def test_credential_url_shows_only_origin() -> None:
    shown = display_credential_url(
        "https://user:pw@admin.example.com:8443/api/tokens?key=RENDER_API_TOKEN#x"
    )

    assert shown == "https://admin.example.com:8443/..."


def test_credential_url_without_path_is_origin() -> None:
    assert display_credential_url("http://[::1]:8200/") == "http://[::1]:8200"


def test_origin_fills_in_default_port() -> None:
    assert origin_of("https://admin.example.com/api") == "https://admin.example.com:443"


def test_json_answer_is_returned(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(json_body={"A": "1"}))

    answer = asyncio.run(get_json(endpoint_for(server), make_settings()))

    assert answer.status == 200
    assert answer.body == {"A": "1"}


def test_bearer_token_goes_in_authorization_header(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(json_body={}))

    asyncio.run(get_json(endpoint_for(server), make_settings(), params={"key": "NAME"}))

    [request] = server.requests_to(PATH)
    assert request.headers["authorization"] == f"Bearer {CANARY}"
    assert CANARY not in request.query
    assert request.query == "key=NAME"


def test_no_token_sends_no_authorization_header(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(json_body={}))

    asyncio.run(get_json(endpoint_for(server, token=None), make_settings()))

    [request] = server.requests_to(PATH)
    assert "authorization" not in request.headers


def test_token_with_line_break_inside_is_config_error(server: LoopbackServer) -> None:
    with pytest.raises(ConfigError) as caught:
        asyncio.run(get_json(endpoint_for(server, token="abc\ndef"), make_settings()))

    assert caught.value.setting == "ENVSYNC_DASHBOARD_AUTH_TOKEN"
    assert "abc" not in str(caught.value)
    assert server.received == []


def test_token_with_trailing_newline_is_sent_trimmed(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(json_body={}))

    asyncio.run(get_json(endpoint_for(server, token=f"{CANARY}\n"), make_settings()))

    [request] = server.requests_to(PATH)
    assert request.headers["authorization"] == f"Bearer {CANARY}"


def test_server_error_is_retried_until_success(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(500), Reply(503), Reply(json_body={"ok": "yes"}))

    answer = asyncio.run(get_json(endpoint_for(server), make_settings()))

    assert answer.body == {"ok": "yes"}
    assert len(server.requests_to(PATH)) == 3


def test_rate_limit_is_retried_after_retry_after(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(429, headers={"Retry-After": "0"}), Reply(json_body={}))

    answer = asyncio.run(get_json(endpoint_for(server), make_settings()))

    assert answer.status == 200
    assert len(server.requests_to(PATH)) == 2


def test_persistent_server_error_fails_after_every_retry(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(500))

    error = fetch_error(server, ENVSYNC_MAX_RETRIES="2")

    assert error.status == 500
    assert error.reason == "HTTP 500 after 3 attempts"
    assert len(server.requests_to(PATH)) == 3
    assert_no_canary(error)


def test_unauthorized_is_not_retried(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(401, json_body={"error": f"bad token {CANARY}"}))

    error = fetch_error(server)

    assert error.status == 401
    assert "ENVSYNC_DASHBOARD_AUTH_TOKEN" in error.hint
    assert len(server.requests_to(PATH)) == 1
    assert_no_canary(error)


def test_timeout_is_retried_then_reported(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(json_body={}, delay_s=1.0))

    error = fetch_error(server, ENVSYNC_HTTP_TIMEOUT_S="0.1", ENVSYNC_MAX_RETRIES="1")

    assert error.reason == "the request timed out after 2 attempts"
    assert error.status is None
    assert len(server.requests_to(PATH)) == 2
    assert_no_canary(error)


def test_refused_connection_is_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = JsonEndpoint("vault", f"http://127.0.0.1:{port}/x", "ENVSYNC_VAULT_URL", None, "T")

    with pytest.raises(SourceFetchError) as caught:
        asyncio.run(get_json(endpoint, make_settings(ENVSYNC_MAX_RETRIES="1")))

    assert caught.value.reason == "could not connect after 2 attempts"


def test_redirect_to_other_origin_is_not_followed(
    server: LoopbackServer, other_origin: LoopbackServer
) -> None:
    server.reply(PATH, Reply(307, headers={"Location": f"{other_origin.url}{PATH}?key=X"}))
    other_origin.reply(PATH, Reply(json_body={}))

    error = fetch_error(server)

    assert error.status == 307
    assert other_origin.origin in str(error)
    assert "key=X" not in str(error)
    assert other_origin.received == []
    assert_no_canary(error)


def test_redirect_within_origin_is_not_followed_either(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(302, headers={"Location": "/elsewhere"}))

    error = fetch_error(server)

    assert error.status == 302
    assert server.requests_to("/elsewhere") == []


@pytest.mark.parametrize(
    "reply",
    [
        Reply(raw=b"<html>login</html>"),
        Reply(raw=b'{"cut": "sho'),
        Reply(200),
    ],
    ids=["html", "truncated-json", "empty-body"],
)
def test_body_that_is_not_json_is_reported(server: LoopbackServer, reply: Reply) -> None:
    server.reply(PATH, reply)

    error = fetch_error(server)

    assert "not JSON" in error.reason
    assert error.status == 200


def test_not_found_is_returned_when_allowed(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(404, json_body={"error": "no such key"}))

    answer = asyncio.run(get_json(endpoint_for(server), make_settings(), not_found_ok=True))

    assert answer.status == 404
    assert answer.body is None


def test_not_found_is_an_error_by_default(server: LoopbackServer) -> None:
    server.reply(PATH, Reply(404))

    error = fetch_error(server)

    assert error.status == 404


def test_logs_name_path_without_query_or_token(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.reply(PATH, Reply(500), Reply(json_body={"v": CANARY}))

    asyncio.run(get_json(endpoint_for(server), make_settings(), params={"key": "RENDER_API_TOKEN"}))

    call_lines = [r.getMessage() for r in caplog.records if r.name == "envsync.sources.http"]
    assert f"dashboard GET {server.url}/... 500" in call_lines[0]
    assert all(PATH not in line for line in call_lines)
    assert "retrying" in call_lines[1]
    assert CANARY not in caplog.text
