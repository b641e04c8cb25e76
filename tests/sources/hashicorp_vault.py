"""Helpers for tests against the HashiCorp Vault emulator.

Secrets are written, deleted and destroyed with hvac, as a person would with the Vault
CLI; envsync then reads them through its own settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hvac  # type: ignore[import-untyped]
import pytest

from envsync.emulators import EmulatorSet

MOUNT = "secret"


@pytest.fixture
def vault(emulators: EmulatorSet) -> Iterator[hvac.Client]:
    """An hvac client of the emulator's root namespace, for setting secrets up."""
    client = hvac.Client(url=emulators.vault_url, token=emulators.vault_token)
    yield client
    client.adapter.close()


def write(vault: hvac.Client, data: dict[str, Any], path: str = "envsync") -> int:
    """Write a new version of the secret at `path` and return its version number."""
    response = vault.secrets.kv.v2.create_or_update_secret(
        path=path, secret=data, mount_point=MOUNT
    )
    version: int = response["data"]["version"]
    return version


def delete_latest(vault: hvac.Client, path: str = "envsync") -> None:
    vault.secrets.kv.v2.delete_latest_version_of_secret(path=path, mount_point=MOUNT)


def vault_settings(emulators: EmulatorSet, **extra: str) -> dict[str, str]:
    return {
        "VAULT_ADDR": emulators.vault_url,
        "VAULT_TOKEN": emulators.vault_token,
        **extra,
    }
