"""The `vault` source: HashiCorp Vault KV v2 through hvac, or a bridge-style vault over HTTP.

VAULT_ADDR selects HashiCorp Vault and ENVSYNC_VAULT_URL a bridge-style vault; when both
are set, ENVSYNC_VAULT_KIND chooses (the settings reject both without it). The fields
named by ENVSYNC_VAULT_TOKEN_KEYS hold provider tokens and are never part of the set.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from envsync.errors import ConfigError
from envsync.model import CanonicalSet, SecretValue
from envsync.sources.base import SourceRequest, drop_keys, setting_secret, string_object
from envsync.sources.hashicorp import read_kv2
from envsync.sources.http import JsonEndpoint, get_json

BRIDGE_SECRETS_PATH = "/bridge/vault/secrets"
BRIDGE_SECRET_PATH = "/bridge/vault/secret"


async def load(request: SourceRequest) -> CanonicalSet:
    settings = request.settings
    kind = settings.effective_vault_kind
    if kind is None:
        raise ConfigError(
            "VAULT_ADDR",
            "is not set, and neither is ENVSYNC_VAULT_URL, but the canonical source is vault",
            hint="set VAULT_ADDR for HashiCorp Vault or ENVSYNC_VAULT_URL for a bridge-style vault",
        )

    canonical = await VAULT_READERS[kind](request)
    return drop_keys(
        canonical,
        set(settings.vault_token_keys),
        "that ENVSYNC_VAULT_TOKEN_KEYS names as provider tokens, which are never synced",
    )


async def _load_hashicorp(request: SourceRequest) -> CanonicalSet:
    settings = request.settings
    secret = await read_kv2(settings, settings.vault_mount, settings.vault_path)
    values = {key: SecretValue(as_text(value)) for key, value in secret.data.items()}
    return CanonicalSet(f"vault {secret.mount}/{secret.path}", values)


def as_text(value: Any) -> str:
    """Convert a KV v2 field to an environment value: a string unchanged, anything else as JSON.

    So 5432 becomes "5432", true becomes "true" and {"type": "x"} becomes '{"type": "x"}',
    never a language literal such as "True".
    """
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def bridge_endpoint(base_url: str, path: str, token: SecretValue | None) -> JsonEndpoint:
    """Build the endpoint for `path` of the bridge-style vault at ENVSYNC_VAULT_URL."""
    return JsonEndpoint(
        label="vault",
        url=f"{base_url.rstrip('/')}{path}",
        setting="ENVSYNC_VAULT_URL",
        token=token,
        token_setting="ENVSYNC_VAULT_AUTH_TOKEN",
        api_path=path,
    )


async def _load_bridge(request: SourceRequest) -> CanonicalSet:
    settings = request.settings
    if not settings.vault_url:
        raise ConfigError(
            "ENVSYNC_VAULT_URL",
            "is not set, but ENVSYNC_VAULT_KIND is bridge",
            hint="set it to the base URL of the bridge-style vault",
        )

    endpoint = bridge_endpoint(
        settings.vault_url, BRIDGE_SECRETS_PATH, setting_secret(settings.vault_auth_token)
    )
    result = await get_json(endpoint, settings)
    return CanonicalSet(endpoint.where, string_object(result.body, endpoint.where))


VAULT_READERS: dict[str, Callable[[SourceRequest], Awaitable[CanonicalSet]]] = {
    "hashicorp": _load_hashicorp,
    "bridge": _load_bridge,
}
