"""Behaviour of the Vault KV v2 emulator and the bridge-style vault, over loopback HTTP.

What hvac, Vault's Python client, reads from the emulator is checked in
`tests/conformance/test_vault_hvac.py`. These tests look at raw responses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import hvac
import hvac.exceptions
import pytest

from envsync.emulators import EmulatorSet


@pytest.fixture
def vault(emulators: EmulatorSet) -> hvac.Client:
    return hvac.Client(url=emulators.vault_url, token=emulators.vault_token)


@pytest.fixture
def raw(emulators: EmulatorSet) -> Iterator[httpx.Client]:
    headers = {"X-Vault-Token": emulators.vault_token}
    with httpx.Client(base_url=emulators.vault_url, headers=headers) as client:
        yield client


def kv(client: hvac.Client) -> Any:
    return client.secrets.kv.v2


# Raw shapes.


def test_deleted_read_is_404_with_metadata(raw: httpx.Client) -> None:
    raw.delete("/v1/secret/data/envsync")

    response = raw.get("/v1/secret/data/envsync")

    assert response.status_code == 404
    assert response.json()["data"]["metadata"]["deletion_time"]


def test_missing_token_body(emulators: EmulatorSet) -> None:
    response = httpx.get(f"{emulators.vault_url}/v1/secret/data/envsync")

    assert response.status_code == 403
    assert response.json() == {"errors": ["permission denied"]}


def test_answers_use_the_vault_envelope(raw: httpx.Client) -> None:
    response = raw.get("/v1/secret/data/envsync")

    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) >= {
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    }
    assert set(response.json()["data"]["metadata"]) == {
        "created_time",
        "custom_metadata",
        "deletion_time",
        "destroyed",
        "version",
    }


@pytest.mark.parametrize(
    ("method", "params"),
    [("LIST", {}), ("GET", {"list": "true"})],
)
def test_list_by_method_or_parameter(
    raw: httpx.Client, method: str, params: dict[str, str]
) -> None:
    response = raw.request(method, "/v1/secret/metadata/", params=params)

    assert response.json()["data"]["keys"] == ["envsync"]


def test_missing_secret_is_404_with_empty_errors(raw: httpx.Client) -> None:
    response = raw.get("/v1/secret/data/absent")

    assert response.status_code == 404
    assert response.json() == {"errors": []}


def test_unknown_mount_is_404(raw: httpx.Client) -> None:
    response = raw.get("/v1/nomount/data/x")

    assert response.status_code == 404
    assert response.json()["errors"]


def test_write_without_data_is_400(raw: httpx.Client) -> None:
    response = raw.post("/v1/secret/data/app", json={"A": "1"})

    assert response.status_code == 400


def test_write_log_lists_keys_only(emulators: EmulatorSet, vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="envsync", secret={"RENDER_API_TOKEN": "rnd_hush"})

    entry = emulators.requests("vault")[-1]

    assert entry["keys"] == ["RENDER_API_TOKEN"]
    assert "rnd_hush" not in repr(emulators.requests("vault"))


# The bridge-style vault.


@pytest.fixture
def bridge(emulators: EmulatorSet, vault: hvac.Client) -> Iterator[httpx.Client]:
    secret = {"BRIDGE_URL": "https://bridge.test", "PORT": 8080, "FLAGS": {"on": True}}
    kv(vault).create_or_update_secret(path="envsync", secret=secret)
    headers = {"Authorization": f"Bearer {emulators.vault_token}"}
    with httpx.Client(base_url=f"{emulators.vault_url}/bridge/vault", headers=headers) as client:
        yield client


def test_bridge_secret_by_key(bridge: httpx.Client) -> None:
    response = bridge.get("/secret", params={"key": "BRIDGE_URL"})

    assert response.json() == {"key": "BRIDGE_URL", "value": "https://bridge.test"}


def test_bridge_secrets_are_strings(bridge: httpx.Client) -> None:
    response = bridge.get("/secrets")

    assert response.json() == {
        "BRIDGE_URL": "https://bridge.test",
        "PORT": "8080",
        "FLAGS": '{"on":true}',
    }


def test_bridge_missing_key_is_404(bridge: httpx.Client) -> None:
    assert bridge.get("/secret", params={"key": "ABSENT"}).status_code == 404


def test_bridge_needs_a_bearer_token(emulators: EmulatorSet, bridge: httpx.Client) -> None:
    anonymous = httpx.get(f"{emulators.vault_url}/bridge/vault/secrets")
    vault_header = httpx.get(
        f"{emulators.vault_url}/bridge/vault/secrets",
        headers={"X-Vault-Token": emulators.vault_token},
    )

    assert anonymous.status_code == 401
    assert vault_header.status_code == 401


def test_bridge_reads_the_configured_secret(
    emulators: EmulatorSet, vault: hvac.Client, bridge: httpx.Client
) -> None:
    kv(vault).create_or_update_secret(path="other", secret={"X": "1"})
    emulators.configure("vault", bridge_secret="secret/other")

    assert bridge.get("/secrets").json() == {"X": "1"}
