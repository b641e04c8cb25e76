"""The vault source against the HashiCorp Vault emulator."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import hvac  # type: ignore[import-untyped]
import pytest

from envsync.emulators import EmulatorSet
from envsync.errors import SecretDeletedError, SourceError, SourceFetchError
from envsync.model import CanonicalSet
from envsync.sources import load_canonical
from tests.sources.hashicorp_vault import MOUNT, delete_latest, vault, vault_settings, write
from tests.sources.loopback import make_settings

__all__ = ["vault"]

CANARY = "rnd_canaryFromVault77ab"


def load(emulators: EmulatorSet, **extra: str) -> CanonicalSet:
    values = vault_settings(emulators, ENVSYNC_CANONICAL_SOURCE="vault", **extra)
    return asyncio.run(load_canonical(make_settings(**values), environ={}))


def revealed(canonical: CanonicalSet) -> dict[str, str]:
    return {key: value.reveal() for key, value in canonical.values.items()}


def test_strings_pass_unchanged(emulators: EmulatorSet, vault: hvac.Client) -> None:
    write(vault, {"BRIDGE_A": " spaced ", "BRIDGE_EMPTY": "", "BRIDGE_JSON": '{"a": 1}'})

    canonical = load(emulators)

    assert canonical.origin == "vault secret/envsync"
    assert revealed(canonical) == {
        "BRIDGE_A": " spaced ",
        "BRIDGE_EMPTY": "",
        "BRIDGE_JSON": '{"a": 1}',
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5432, "5432"),
        (True, "true"),
        (False, "false"),
        (1.5, "1.5"),
        ({"type": "x"}, '{"type": "x"}'),
        ([1, "a"], '[1, "a"]'),
        (None, "null"),
        ({"name": "café"}, '{"name": "café"}'),
    ],
    ids=["int", "true", "false", "float", "object", "array", "null", "unicode"],
)
def test_non_strings_become_json_text(
    emulators: EmulatorSet, vault: hvac.Client, value: Any, text: str
) -> None:
    write(vault, {"BRIDGE_VALUE": value})

    canonical = load(emulators)

    assert canonical.values["BRIDGE_VALUE"].reveal() == text


def test_mixed_secret_converts_each_field(emulators: EmulatorSet, vault: hvac.Client) -> None:
    write(vault, {"port": 5432, "debug": True, "sa": {"type": "x"}, "name": "api"})

    canonical = load(emulators)

    assert revealed(canonical) == {
        "port": "5432",
        "debug": "true",
        "sa": '{"type": "x"}',
        "name": "api",
    }


def test_configured_mount_and_path_are_read(emulators: EmulatorSet, vault: hvac.Client) -> None:
    write(vault, {"BRIDGE_A": "other"}, path="apps/api")

    canonical = load(emulators, ENVSYNC_VAULT_PATH="apps/api")

    assert canonical.origin == "vault secret/apps/api"
    assert revealed(canonical) == {"BRIDGE_A": "other"}


def test_token_fields_are_left_out(emulators: EmulatorSet, vault: hvac.Client) -> None:
    write(vault, {"BRIDGE_A": "1", "RENDER_API_TOKEN": CANARY, "NETLIFY_API_TOKEN": CANARY})

    canonical = load(emulators)

    assert revealed(canonical) == {"BRIDGE_A": "1"}
    assert any("RENDER_API_TOKEN" in warning for warning in canonical.warnings)
    assert all(CANARY not in warning for warning in canonical.warnings)


def test_soft_deleted_latest_version_is_error(emulators: EmulatorSet, vault: hvac.Client) -> None:
    write(vault, {"BRIDGE_A": "1"})
    version = write(vault, {"BRIDGE_A": "2"})
    delete_latest(vault)

    with pytest.raises(SecretDeletedError) as caught:
        load(emulators)

    assert f"deleted at version {version}" in str(caught.value)
    assert "undelete" in caught.value.hint


def test_destroyed_latest_version_is_error(emulators: EmulatorSet, vault: hvac.Client) -> None:
    version = write(vault, {"BRIDGE_A": "1"})
    vault.secrets.kv.v2.destroy_secret_versions(
        path="envsync", versions=[version], mount_point=MOUNT
    )

    with pytest.raises(SecretDeletedError) as caught:
        load(emulators)

    assert f"destroyed at version {version}" in str(caught.value)


def test_undeleted_version_reads_again(emulators: EmulatorSet, vault: hvac.Client) -> None:
    version = write(vault, {"BRIDGE_A": "back"})
    delete_latest(vault)
    vault.secrets.kv.v2.undelete_secret_versions(
        path="envsync", versions=[version], mount_point=MOUNT
    )

    canonical = load(emulators)

    assert revealed(canonical) == {"BRIDGE_A": "back"}


def test_missing_path_names_mount_and_path(emulators: EmulatorSet) -> None:
    with pytest.raises(SourceError) as caught:
        load(emulators, ENVSYNC_VAULT_PATH="no/such/secret")

    assert not isinstance(caught.value, SecretDeletedError)
    assert "'no/such/secret'" in str(caught.value)
    assert "'secret'" in str(caught.value)


def test_wrong_token_is_permission_denied(emulators: EmulatorSet) -> None:
    with pytest.raises(SourceFetchError) as caught:
        load(emulators, VAULT_TOKEN="hvs.notAKnownToken")

    assert caught.value.status == 403
    assert "hvs.notAKnownToken" not in str(caught.value)


def test_namespace_reads_its_own_secrets(emulators: EmulatorSet, vault: hvac.Client) -> None:
    write(vault, {"BRIDGE_ROOT": "root"})
    team = hvac.Client(url=emulators.vault_url, token=emulators.vault_token, namespace="team-a")
    try:
        write(team, {"BRIDGE_TEAM": "a"})
    finally:
        team.adapter.close()

    canonical = load(emulators, VAULT_NAMESPACE="team-a")

    assert revealed(canonical) == {"BRIDGE_TEAM": "a"}


def test_vault_errors_and_logs_hold_no_token(
    emulators: EmulatorSet, vault: hvac.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    write(vault, {"BRIDGE_A": CANARY})
    delete_latest(vault)

    with pytest.raises(SecretDeletedError) as caught:
        load(emulators)

    assert emulators.vault_token not in str(caught.value)
    assert emulators.vault_token not in caplog.text
    assert CANARY not in caplog.text


def test_bridge_vault_emulator_serves_same_secret(
    emulators: EmulatorSet, vault: hvac.Client
) -> None:
    write(vault, {"BRIDGE_A": "1", "RENDER_API_TOKEN": CANARY})
    values = {
        "ENVSYNC_CANONICAL_SOURCE": "vault",
        "ENVSYNC_VAULT_URL": emulators.vault_url,
        "ENVSYNC_VAULT_AUTH_TOKEN": emulators.vault_token,
    }

    canonical = asyncio.run(load_canonical(make_settings(**values), environ={}))

    assert canonical.origin == f"vault {emulators.vault_url}/bridge/vault/secrets"
    assert revealed(canonical) == {"BRIDGE_A": "1"}
