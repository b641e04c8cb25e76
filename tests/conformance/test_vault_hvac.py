"""Drive the Vault emulator's KV v2 engine with hvac, Vault's Python client.

hvac 2.4.0's `secrets.kv.v2` reads the fields below, so each must be what Vault returns.
A read returns `data.data` and `data.metadata` (`created_time`, `custom_metadata`,
`deletion_time`, `destroyed`, `version`), and a write returns the same metadata. A list
returns `data.keys`. A metadata read returns `current_version`, `oldest_version` and
`versions`, among others. A read of a deleted version is a 404 that still carries
`data.metadata`, which `read_secret_version` returns when `raise_on_deleted_version=False`
and `deletion_time` is set. A destroyed version has no `deletion_time`, so hvac raises
even then. `X-Vault-Namespace` selects a namespace.
"""

from __future__ import annotations

import re
from typing import Any

import hvac  # type: ignore[import-untyped]
import hvac.exceptions  # type: ignore[import-untyped]
import pytest

from envsync.emulators import EmulatorSet

# Vault writes times in RFC 3339 with nanoseconds, such as 2018-03-22T02:24:06.945319214Z.
VAULT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")
VERSION_FIELDS = {"created_time", "custom_metadata", "deletion_time", "destroyed", "version"}
METADATA_FIELDS = {
    "cas_required",
    "created_time",
    "current_version",
    "custom_metadata",
    "delete_version_after",
    "max_versions",
    "oldest_version",
    "updated_time",
    "versions",
}


@pytest.fixture
def vault(emulators: EmulatorSet) -> hvac.Client:
    return hvac.Client(url=emulators.vault_url, token=emulators.vault_token)


def kv(client: hvac.Client) -> Any:
    return client.secrets.kv.v2


def read(client: hvac.Client, path: str, **options: Any) -> Any:
    return kv(client).read_secret_version(path=path, raise_on_deleted_version=True, **options)


def write_versions(client: hvac.Client, path: str, count: int) -> None:
    for number in range(1, count + 1):
        kv(client).create_or_update_secret(path=path, secret={"N": str(number)})


# Writing and reading.


def test_write_returns_version_metadata(vault: hvac.Client) -> None:
    written = kv(vault).create_or_update_secret(path="app", secret={"A": "1"})["data"]

    assert set(written) == VERSION_FIELDS
    assert written["version"] == 1
    assert written["deletion_time"] == ""
    assert written["destroyed"] is False
    assert written["custom_metadata"] is None
    assert VAULT_TIME.match(written["created_time"])


def test_read_returns_data_and_metadata(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="app", secret={"A": "1"})

    answer = read(vault, "app")

    assert answer["data"]["data"] == {"A": "1"}
    assert set(answer["data"]["metadata"]) == VERSION_FIELDS
    assert answer["data"]["metadata"]["version"] == 1
    assert answer["data"]["metadata"]["deletion_time"] == ""


def test_values_keep_their_json_types(vault: hvac.Client) -> None:
    secret = {"PORT": 8080, "DEBUG": True, "LIMITS": {"max": 3}, "NAMES": ["a"], "NONE": None}
    kv(vault).create_or_update_secret(path="typed", secret=secret)

    assert read(vault, "typed")["data"]["data"] == secret


def test_default_seed_has_empty_envsync_secret(vault: hvac.Client) -> None:
    assert read(vault, "envsync")["data"]["data"] == {}


def test_read_names_a_version(vault: hvac.Client) -> None:
    write_versions(vault, "app", 2)

    old = read(vault, "app", version=1)
    new = read(vault, "app")

    assert old["data"]["data"] == {"N": "1"}
    assert old["data"]["metadata"]["version"] == 1
    assert new["data"]["data"] == {"N": "2"}
    assert new["data"]["metadata"]["version"] == 2


def test_missing_path_is_invalid_path(vault: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(vault, "absent")


def test_check_and_set_guards_writes(vault: hvac.Client) -> None:
    created = kv(vault).create_or_update_secret(path="app", secret={"A": "1"}, cas=0)

    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv(vault).create_or_update_secret(path="app", secret={"A": "2"}, cas=0)
    updated = kv(vault).create_or_update_secret(path="app", secret={"A": "2"}, cas=1)

    assert created["data"]["version"] == 1
    assert updated["data"]["version"] == 2


# hvac's patch() reads without raise_on_deleted_version, which warns about a coming default.
@pytest.mark.filterwarnings("ignore:The raise_on_deleted_version parameter:DeprecationWarning")
def test_patch_merges_into_the_latest_version(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="app", secret={"A": "1", "B": "2"})

    patched = kv(vault).patch(path="app", secret={"B": "3"})

    assert patched["data"]["version"] == 2
    assert read(vault, "app")["data"]["data"] == {"A": "1", "B": "3"}


# Listing.


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


# Metadata.


def test_metadata_has_vault_fields(vault: hvac.Client) -> None:
    write_versions(vault, "app", 2)

    metadata = kv(vault).read_secret_metadata(path="app")["data"]

    assert set(metadata) == METADATA_FIELDS
    assert metadata["current_version"] == 2
    assert metadata["max_versions"] == 0
    assert metadata["cas_required"] is False
    assert metadata["delete_version_after"] == "0s"
    assert metadata["custom_metadata"] is None
    assert sorted(metadata["versions"]) == ["1", "2"]
    assert set(metadata["versions"]["1"]) == {"created_time", "deletion_time", "destroyed"}


@pytest.mark.parametrize(
    ("writes", "oldest", "kept"),
    [
        (1, 0, ["1"]),
        (9, 0, [str(n) for n in range(1, 10)]),
        (10, 1, [str(n) for n in range(1, 11)]),
        (12, 3, [str(n) for n in range(3, 13)]),
    ],
)
def test_oldest_version_moves_when_versions_drop(
    vault: hvac.Client, writes: int, oldest: int, kept: list[str]
) -> None:
    # Vault keeps 10 versions by default; oldest_version stays 0 until it drops one
    # (Vault's KV v2 plugin, AddVersion).
    write_versions(vault, "app", writes)

    metadata = kv(vault).read_secret_metadata(path="app")["data"]

    assert metadata["oldest_version"] == oldest
    assert sorted(metadata["versions"], key=int) == kept


def test_metadata_update_sets_limits_and_labels(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="app", secret={"A": "1"})

    kv(vault).update_metadata(
        path="app", max_versions=3, cas_required=True, custom_metadata={"owner": "envsync"}
    )
    metadata = kv(vault).read_secret_metadata(path="app")["data"]
    version = read(vault, "app")["data"]["metadata"]

    assert metadata["max_versions"] == 3
    assert metadata["cas_required"] is True
    assert metadata["custom_metadata"] == {"owner": "envsync"}
    assert version["custom_metadata"] == {"owner": "envsync"}
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv(vault).create_or_update_secret(path="app", secret={"A": "2"})


def test_delete_metadata_removes_every_version(vault: hvac.Client) -> None:
    write_versions(vault, "app", 2)

    kv(vault).delete_metadata_and_all_versions(path="app")

    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(vault).read_secret_metadata(path="app")
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(vault, "app", version=1)


# Soft delete, undelete and destroy.


def test_soft_deleted_latest_raises_when_asked(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="envsync", secret={"A": "1"})

    kv(vault).delete_latest_version_of_secret(path="envsync")

    with pytest.raises(hvac.exceptions.InvalidPath):
        read(vault, "envsync")


def test_soft_deleted_latest_returns_metadata(vault: hvac.Client) -> None:
    kv(vault).delete_latest_version_of_secret(path="envsync")

    answer = kv(vault).read_secret_version(path="envsync", raise_on_deleted_version=False)

    assert answer["data"]["data"] is None
    assert answer["data"]["metadata"]["version"] == 1
    assert VAULT_TIME.match(answer["data"]["metadata"]["deletion_time"])
    assert answer["data"]["metadata"]["destroyed"] is False


def test_undelete_restores_a_version(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="envsync", secret={"A": "1"})
    kv(vault).delete_latest_version_of_secret(path="envsync")

    kv(vault).undelete_secret_versions(path="envsync", versions=[2])

    answer = read(vault, "envsync")
    assert answer["data"]["data"] == {"A": "1"}
    assert answer["data"]["metadata"]["deletion_time"] == ""


def test_delete_marks_only_given_versions(vault: hvac.Client) -> None:
    write_versions(vault, "app", 3)

    kv(vault).delete_secret_versions(path="app", versions=[1, 3])

    versions = kv(vault).read_secret_metadata(path="app")["data"]["versions"]
    assert VAULT_TIME.match(versions["1"]["deletion_time"])
    assert versions["2"]["deletion_time"] == ""
    assert VAULT_TIME.match(versions["3"]["deletion_time"])
    assert read(vault, "app", version=2)["data"]["data"] == {"N": "2"}


def test_destroyed_version_raises_even_when_not_asked(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="app", secret={"A": "1"})

    kv(vault).destroy_secret_versions(path="app", versions=[1])
    kv(vault).undelete_secret_versions(path="app", versions=[1])

    # A destroyed version has no deletion_time, so hvac raises despite the False option.
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(vault).read_secret_version(path="app", raise_on_deleted_version=False)
    version = kv(vault).read_secret_metadata(path="app")["data"]["versions"]["1"]
    assert version["destroyed"] is True
    assert version["deletion_time"] == ""


def test_write_after_delete_makes_a_new_version(vault: hvac.Client) -> None:
    kv(vault).create_or_update_secret(path="envsync", secret={"A": "1"})
    kv(vault).delete_latest_version_of_secret(path="envsync")

    written = kv(vault).create_or_update_secret(path="envsync", secret={"A": "2"})

    assert written["data"]["version"] == 3
    assert read(vault, "envsync")["data"]["data"] == {"A": "2"}


# Namespaces, configuration and tokens.


def test_namespace_header_isolates_secrets(emulators: EmulatorSet, vault: hvac.Client) -> None:
    team = hvac.Client(url=emulators.vault_url, token=emulators.vault_token, namespace="team-a")
    kv(team).create_or_update_secret(path="only-here", secret={"A": "1"})

    assert read(team, "only-here")["data"]["data"] == {"A": "1"}
    assert kv(team).list_secrets(path="")["data"]["keys"] == ["only-here"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(vault, "only-here")
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(team, "envsync")


def test_engine_configuration_reads(vault: hvac.Client) -> None:
    configuration = kv(vault).read_configuration()["data"]

    assert set(configuration) == {"cas_required", "delete_version_after", "max_versions"}


def test_token_is_checked(emulators: EmulatorSet, vault: hvac.Client) -> None:
    stranger = hvac.Client(url=emulators.vault_url, token="hvs.unknown")

    assert vault.is_authenticated() is True
    assert stranger.is_authenticated() is False
    with pytest.raises(hvac.exceptions.Forbidden):
        read(stranger, "envsync")
