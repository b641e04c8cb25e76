"""The vault step of the discovery chain against the HashiCorp Vault emulator."""

from __future__ import annotations

import asyncio
from typing import Any

import hvac  # type: ignore[import-untyped]
import pytest

from envsync.discovery import Discovery, discover_token
from envsync.emulators import EmulatorSet
from tests.sources.hashicorp_vault import delete_latest, vault, vault_settings, write
from tests.sources.loopback import make_settings

__all__ = ["vault"]

CANARY = "rnd_canaryFromVault77ab"


def discover(emulators: EmulatorSet, provider: str = "render", **extra: str) -> Discovery:
    values = vault_settings(emulators, ENVSYNC_DISCOVERY_ORDER="vault", **extra)
    return asyncio.run(discover_token(make_settings(**values), provider, environ={}))


def test_discovery_reads_token_field(emulators: EmulatorSet, vault: hvac.Client) -> None:
    write(vault, {"RENDER_API_TOKEN": f"{CANARY}\n", "BRIDGE_A": "1"})

    found = discover(emulators)

    assert found.token is not None
    assert found.token.reveal() == CANARY
    assert found.source == "vault secret/envsync field RENDER_API_TOKEN"
    assert found.warnings == (
        "vault secret/envsync field RENDER_API_TOKEN: trimmed a line ending around the token",
    )


def test_discovery_reads_token_path(emulators: EmulatorSet, vault: hvac.Client) -> None:
    write(vault, {"NETLIFY_API_TOKEN": "nfp_tokens"}, path="envsync/tokens")

    found = discover(emulators, "netlify", ENVSYNC_VAULT_TOKEN_PATH="envsync/tokens")

    assert found.token is not None
    assert found.token.reveal() == "nfp_tokens"
    assert found.source == "vault secret/envsync/tokens field NETLIFY_API_TOKEN"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"BRIDGE_A": "1"}, "no such field"),
        ({"RENDER_API_TOKEN": 12345}, "the field is not a string"),
        ({"RENDER_API_TOKEN": ""}, "empty"),
    ],
    ids=["missing", "number", "empty"],
)
def test_discovery_field_miss_reasons(
    emulators: EmulatorSet, vault: hvac.Client, data: dict[str, Any], reason: str
) -> None:
    write(vault, data)

    found = discover(emulators)

    assert found.token is None
    assert found.attempts == (("vault secret/envsync field RENDER_API_TOKEN", reason),)


def test_discovery_deleted_secret_is_a_miss(emulators: EmulatorSet, vault: hvac.Client) -> None:
    version = write(vault, {"RENDER_API_TOKEN": CANARY})
    delete_latest(vault)

    found = discover(emulators)

    assert found.token is None
    assert found.attempts == (
        (
            "vault secret/envsync field RENDER_API_TOKEN",
            f"the secret is deleted at version {version}",
        ),
    )


def test_discovery_wrong_token_is_a_miss(emulators: EmulatorSet) -> None:
    found = discover(emulators, VAULT_TOKEN="hvs.notAKnownToken")

    assert found.attempts == (
        ("vault secret/envsync field RENDER_API_TOKEN", "HTTP 403: permission denied"),
    )


def test_bridge_vault_emulator_returns_token(emulators: EmulatorSet, vault: hvac.Client) -> None:
    write(vault, {"NETLIFY_API_TOKEN": CANARY})
    values = {
        "ENVSYNC_DISCOVERY_ORDER": "vault",
        "ENVSYNC_VAULT_URL": emulators.vault_url,
        "ENVSYNC_VAULT_AUTH_TOKEN": emulators.vault_token,
    }

    found = asyncio.run(discover_token(make_settings(**values), "netlify", environ={}))

    assert found.token is not None
    assert found.token.reveal() == CANARY
    assert found.source == f"vault {emulators.vault_url}/bridge/vault/secret key NETLIFY_API_TOKEN"
