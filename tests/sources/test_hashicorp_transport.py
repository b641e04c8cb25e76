"""hvac's transport as envsync sets it up: redirects, retries and error text.

A scripted loopback server plays Vault here, because these cases (a redirect to another
origin, a 503 that clears) are about HTTP, not about KV v2; the Vault emulator covers the
secrets engine itself.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from envsync.errors import ConfigError, SourceFetchError
from envsync.sources.hashicorp import KvSecret, read_kv2
from tests.sources.loopback import LoopbackServer, Reply, make_settings

VAULT_TOKEN = "hvs.canaryVaultToken41d8"
DATA_PATH = "/v1/secret/data/envsync"


def kv2_envelope(data: dict[str, object], version: int = 1) -> dict[str, object]:
    return {
        "request_id": "0",
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": {
            "data": data,
            "metadata": {
                "created_time": "2026-01-01T00:00:00Z",
                "custom_metadata": None,
                "deletion_time": "",
                "destroyed": False,
                "version": version,
            },
        },
        "wrap_info": None,
        "warnings": None,
        "auth": None,
    }


def read(server: LoopbackServer, **values: str) -> KvSecret:
    settings = make_settings(VAULT_ADDR=server.url, VAULT_TOKEN=VAULT_TOKEN, **values)
    return asyncio.run(read_kv2(settings, "secret", "envsync"))


def test_token_goes_in_vault_header(server: LoopbackServer) -> None:
    server.reply(DATA_PATH, Reply(json_body=kv2_envelope({"A": "1"}, version=4)))

    secret = read(server, VAULT_NAMESPACE="team-a")

    assert secret.data == {"A": "1"}
    assert secret.version == 4
    [request] = server.requests_to(DATA_PATH)
    assert request.headers["x-vault-token"] == VAULT_TOKEN
    assert request.headers["x-vault-namespace"] == "team-a"


def test_cross_origin_redirect_keeps_vault_token(
    server: LoopbackServer, other_origin: LoopbackServer
) -> None:
    server.reply(DATA_PATH, Reply(307, headers={"Location": f"{other_origin.url}{DATA_PATH}"}))
    other_origin.reply(DATA_PATH, Reply(json_body=kv2_envelope({"A": "stolen"})))

    with pytest.raises(SourceFetchError) as caught:
        read(server)

    assert caught.value.status == 307
    assert other_origin.origin in str(caught.value)
    assert other_origin.received == []
    assert VAULT_TOKEN not in str(caught.value)


def test_same_origin_redirect_is_followed(server: LoopbackServer) -> None:
    server.reply(DATA_PATH, Reply(307, headers={"Location": "/v1/secret/data/moved"}))
    server.reply("/v1/secret/data/moved", Reply(json_body=kv2_envelope({"A": "1"})))

    secret = read(server)

    assert secret.data == {"A": "1"}


def test_server_error_is_retried(server: LoopbackServer) -> None:
    server.reply(
        DATA_PATH,
        Reply(503, json_body={"errors": ["Vault is sealed"]}),
        Reply(json_body=kv2_envelope({"A": "1"})),
    )

    secret = read(server)

    assert secret.data == {"A": "1"}
    assert len(server.requests_to(DATA_PATH)) == 2


def test_persistent_server_error_fails_after_retries(server: LoopbackServer) -> None:
    server.reply(DATA_PATH, Reply(500, json_body={"errors": ["internal error"]}))

    with pytest.raises(SourceFetchError) as caught:
        read(server, ENVSYNC_MAX_RETRIES="1")

    assert caught.value.reason == "HTTP 500 after 2 attempts"
    assert len(server.requests_to(DATA_PATH)) == 2


def test_timeout_is_reported_without_url_query(server: LoopbackServer) -> None:
    server.reply(DATA_PATH, Reply(json_body=kv2_envelope({}), delay_s=1.0))

    with pytest.raises(SourceFetchError) as caught:
        read(server, ENVSYNC_HTTP_TIMEOUT_S="0.1", ENVSYNC_MAX_RETRIES="0")

    assert caught.value.reason == "the request timed out after 1 attempt"
    assert str(caught.value).startswith("vault secret/envsync: ")


def test_permission_denied_names_token_setting(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.reply(DATA_PATH, Reply(403, json_body={"errors": ["permission denied"]}))

    with pytest.raises(SourceFetchError) as caught:
        read(server)

    assert caught.value.status == 403
    assert "VAULT_TOKEN" in caught.value.hint
    assert len(server.requests_to(DATA_PATH)) == 1
    assert VAULT_TOKEN not in str(caught.value)
    assert VAULT_TOKEN not in repr(caught.value)
    assert VAULT_TOKEN not in caplog.text


def test_body_that_is_not_kv2_is_reported(server: LoopbackServer) -> None:
    server.reply(DATA_PATH, Reply(json_body={"data": "flat"}))

    with pytest.raises(SourceFetchError) as caught:
        read(server)

    assert "not a KV v2 secret" in caught.value.reason


def test_plain_http_vault_addr_to_remote_host_is_rejected() -> None:
    settings = make_settings(VAULT_ADDR="http://vault.example.com:8200", VAULT_TOKEN=VAULT_TOKEN)

    with pytest.raises(ConfigError) as caught:
        asyncio.run(read_kv2(settings, "secret", "envsync"))

    assert caught.value.setting == "VAULT_ADDR"


def test_missing_vault_token_is_not_read_from_home(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "from-process-environment")
    server.reply(DATA_PATH, Reply(403, json_body={"errors": ["permission denied"]}))
    settings = make_settings(VAULT_ADDR=server.url)

    with pytest.raises(SourceFetchError):
        asyncio.run(read_kv2(settings, "secret", "envsync"))

    [request] = server.requests_to(DATA_PATH)
    assert "x-vault-token" not in request.headers
