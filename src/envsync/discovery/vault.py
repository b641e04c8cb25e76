"""The `vault` step: a provider token stored in HashiCorp Vault KV v2 or a bridge-style vault.

HashiCorp Vault: the field named for the provider among ENVSYNC_VAULT_TOKEN_KEYS, in the
secret at ENVSYNC_VAULT_TOKEN_PATH (default ENVSYNC_VAULT_PATH) of ENVSYNC_VAULT_MOUNT.
A bridge-style vault: `GET {ENVSYNC_VAULT_URL}/bridge/vault/secret?key=NAME`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from envsync.discovery.base import (
    StepContext,
    StepResult,
    miss,
    token_from_body,
    token_result,
)
from envsync.errors import ConfigError, SourceError, SourceFetchError
from envsync.sources.base import setting_secret
from envsync.sources.hashicorp import read_kv2
from envsync.sources.http import get_json
from envsync.sources.vault import BRIDGE_SECRET_PATH, bridge_endpoint

STEP = "vault"


def token_field(context: StepContext) -> str | None:
    """Return the field of ENVSYNC_VAULT_TOKEN_KEYS that contains this provider's token."""
    keys = context.settings.vault_token_keys
    if context.token_name in keys:
        return context.token_name
    prefix = f"{context.provider.upper()}_"
    return next((key for key in keys if key.upper().startswith(prefix)), None)


async def find(context: StepContext) -> StepResult:
    kind = context.settings.effective_vault_kind
    if kind is None:
        return miss(STEP, "not configured: neither VAULT_ADDR nor ENVSYNC_VAULT_URL is set")
    field = token_field(context)
    if field is None:
        return miss(STEP, f"ENVSYNC_VAULT_TOKEN_KEYS names no field for {context.provider}")
    return await VAULT_FINDERS[kind](context, field)


async def _find_hashicorp(context: StepContext, field: str) -> StepResult:
    settings = context.settings
    mount = settings.vault_mount
    path = settings.vault_token_path or settings.vault_path
    where = f"{STEP} {mount}/{path} field {field}"
    try:
        secret = await read_kv2(settings, mount, path)
    except SourceFetchError as error:
        return miss(where, error.reason)
    except SourceError as error:
        return miss(where, error.message.removeprefix(f"vault {mount}/{path}: "))

    value = secret.data.get(field)
    if value is None:
        return miss(where, "no such field")
    if not isinstance(value, str):
        return miss(where, "the field is not a string")
    return token_result(value, where)


async def _find_bridge(context: StepContext, field: str) -> StepResult:
    settings = context.settings
    if not settings.vault_url:
        raise ConfigError(
            "ENVSYNC_VAULT_URL",
            "is not set, but ENVSYNC_VAULT_KIND is bridge",
            hint="set it to the base URL of the bridge-style vault",
        )

    endpoint = bridge_endpoint(
        settings.vault_url, BRIDGE_SECRET_PATH, setting_secret(settings.vault_auth_token)
    )
    where = f"{endpoint.where} key {field}"
    try:
        result = await get_json(endpoint, settings, params={"key": field}, not_found_ok=True)
    except SourceFetchError as error:
        return miss(where, error.reason)

    if result.status == 404:
        return miss(where, "not found (HTTP 404)")
    return token_from_body(result.body, field, where)


VAULT_FINDERS: dict[str, Callable[[StepContext, str], Awaitable[StepResult]]] = {
    "hashicorp": _find_hashicorp,
    "bridge": _find_bridge,
}


def hint(context: StepContext) -> str | None:
    settings = context.settings
    kind = settings.effective_vault_kind
    field = token_field(context)
    if kind is None or field is None:
        return None
    if kind == "bridge":
        return f"store it under key {field} in the bridge-style vault at ENVSYNC_VAULT_URL"
    path = settings.vault_token_path or settings.vault_path
    return f"store it in field {field} of Vault secret {settings.vault_mount}/{path}"
