"""Behaviour of the Vault KV v2 emulator and the bridge-style vault, over loopback HTTP."""

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


# hvac against the emulator.


def test_hvac_write_then_read(vault: hvac.Client) -> None:
    written = kv(vault).create_or_update_secret(path="app", secret={"A": "1"})

    read = kv(vault).read_secret_version(path="app", raise_on_deleted_version=True)

    assert written["data"]["version"] == 1
    assert read["data"]["data"] == {"A": "1"}
    assert read["data"]["metadata"]["version"] == 1
    assert read["data"]["metadata"]["deletion_time"] == ""


def test_values_can_be_any_json(vault: hvac.Client) -> None:
    secret = {"PORT": 8080, "DEBUG": True, "LIMITS": {"max": 3}, "NAMES": ["a"], "NONE": None}
    kv(vault).create_or_update_secret(path="typed", secret=secret)

    read = kv(vault).read_secret_version(path="typed", raise_on_deleted_version=True)

    assert read["data"]["data"] == secret


def test_default_seed_has_empty_envsync_secret(vault: hvac.Client) -> None:
    read = kv(vault).read_secret_version(path="envsync", raise_on_deleted_version=True)

    assert read["data"]["data"] == {}


def test_read_an_older_version(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="app", secret={"A": "1"})
    kv(vault).create_or_update_secret(path="app", secret={"A": "2"})

    old = kv(vault).read_secret_version(path="app", version=1, raise_on_deleted_version=True)
    new = kv(vault).read_secret_version(path="app", raise_on_deleted_version=True)

    assert old["data"]["data"] == {"A": "1"}
    assert new["data"]["data"] == {"A": "2"}


def test_list_shows_keys_and_folders(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="team/app", secret={"A": "1"})
    kv(vault).create_or_update_secret(path="team/deep/x", secret={"B": "2"})

    top = kv(vault).list_secrets(path="")
    team = kv(vault).list_secrets(path="team")

    assert top["data"]["keys"] == ["envsync", "team/"]
    assert team["data"]["keys"] == ["app", "deep/"]


def test_list_of_missing_folder_is_invalid_path(vault: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(vault).list_secrets(path="nothing-here")


def test_soft_delete_then_undelete(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="envsync", secret={"A": "1"})
    kv(vault).delete_latest_version_of_secret(path="envsync")

    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(vault).read_secret_version(path="envsync", raise_on_deleted_version=True)
    kv(vault).undelete_secret_versions(path="envsync", versions=[2])

    read = kv(vault).read_secret_version(path="envsync", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"A": "1"}


def test_deleted_version_answer_carries_metadata(vault: hvac.Client) -> None:
    kv(vault).delete_latest_version_of_secret(path="envsync")

    answer = kv(vault).read_secret_version(path="envsync", raise_on_deleted_version=False)

    assert answer["data"]["data"] is None
    assert answer["data"]["metadata"]["deletion_time"] != ""
    assert answer["data"]["metadata"]["version"] == 1


def test_deleted_read_is_404_with_metadata(raw: httpx.Client) -> None:
    raw.delete("/v1/secret/data/envsync")

    response = raw.get("/v1/secret/data/envsync")

    assert response.status_code == 404
    assert response.json()["data"]["metadata"]["deletion_time"]


def test_delete_given_versions(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="app", secret={"A": "1"})
    kv(vault).create_or_update_secret(path="app", secret={"A": "2"})

    kv(vault).delete_secret_versions(path="app", versions=[1])

    metadata = kv(vault).read_secret_metadata(path="app")["data"]
    assert metadata["versions"]["1"]["deletion_time"] != ""
    assert metadata["versions"]["2"]["deletion_time"] == ""


def test_destroyed_version_cannot_be_read_or_undeleted(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="app", secret={"A": "1"})

    kv(vault).destroy_secret_versions(path="app", versions=[1])
    kv(vault).undelete_secret_versions(path="app", versions=[1])

    # A destroyed version has no deletion_time, so hvac raises even with
    # raise_on_deleted_version=False.
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(vault).read_secret_version(path="app", raise_on_deleted_version=False)
    metadata = kv(vault).read_secret_metadata(path="app")["data"]
    assert metadata["versions"]["1"]["destroyed"] is True


def test_metadata_read_and_delete(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="app", secret={"A": "1"})

    metadata = kv(vault).read_secret_metadata(path="app")["data"]
    kv(vault).delete_metadata_and_all_versions(path="app")

    assert metadata["current_version"] == 1
    assert metadata["oldest_version"] == 1
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(vault).read_secret_metadata(path="app")


def test_check_and_set_mismatch_is_rejected(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="app", secret={"A": "1"})

    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv(vault).create_or_update_secret(path="app", secret={"A": "2"}, cas=0)
    written = kv(vault).create_or_update_secret(path="app", secret={"A": "2"}, cas=1)

    assert written["data"]["version"] == 2


# hvac's patch() reads without raise_on_deleted_version, which warns about a coming default.
@pytest.mark.filterwarnings("ignore:The raise_on_deleted_version parameter:DeprecationWarning")
def test_hvac_patch_merges(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="app", secret={"A": "1", "B": "2"})

    kv(vault).patch(path="app", secret={"B": "3"})

    read = kv(vault).read_secret_version(path="app", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"A": "1", "B": "3"}


def test_old_versions_beyond_max_are_dropped(vault: hvac.Client) -> None:
    for number in range(12):
        kv(vault).create_or_update_secret(path="app", secret={"N": str(number)})

    metadata = kv(vault).read_secret_metadata(path="app")["data"]

    assert metadata["current_version"] == 12
    assert sorted(metadata["versions"], key=int) == [str(n) for n in range(3, 13)]


def test_unknown_token_is_forbidden(emulators: EmulatorSet) -> None:
    client = hvac.Client(url=emulators.vault_url, token="hvs.unknown")

    with pytest.raises(hvac.exceptions.Forbidden):
        kv(client).read_secret_version(path="envsync", raise_on_deleted_version=True)
    assert client.is_authenticated() is False


def test_missing_token_body(emulators: EmulatorSet) -> None:
    response = httpx.get(f"{emulators.vault_url}/v1/secret/data/envsync")

    assert response.status_code == 403
    assert response.json() == {"errors": ["permission denied"]}


def test_namespaces_are_isolated(emulators: EmulatorSet, vault: hvac.Client) -> None:
    team = hvac.Client(url=emulators.vault_url, token=emulators.vault_token, namespace="team-a")
    kv(team).create_or_update_secret(path="only-here", secret={"A": "1"})

    read = kv(team).read_secret_version(path="only-here", raise_on_deleted_version=True)

    assert read["data"]["data"] == {"A": "1"}
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(vault).read_secret_version(path="only-here", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(team).read_secret_version(path="envsync", raise_on_deleted_version=True)


# Raw shapes.


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
