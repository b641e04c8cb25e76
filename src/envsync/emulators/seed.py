"""The default seed: what the emulators hold when they are started without a seed file.

- Render: one team owner, "Emulator Team", with a web service named `api` and no
  variables; no environment groups.
- Netlify: one account (slug `team`) with a site named `web` and no variables.
- Vault: a KV v2 mount `secret` holding an empty secret at `envsync`.

Each API has one fixed token, so a demo or a shell session can be repeated as it is. The
tokens only open these emulators.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from envsync.emulators.common import JSONObject, SeedError

DEFAULT_RENDER_TOKEN = "rnd_envsyncEmulatorRender0000000000"
DEFAULT_NETLIFY_TOKEN = "nfp_envsyncEmulatorNetlify000000000000000"
DEFAULT_VAULT_TOKEN = "hvs.envsyncEmulatorVault00000"

_DEFAULT_SEED: JSONObject = {
    "render": {
        "tokens": [DEFAULT_RENDER_TOKEN],
        "owners": [{"id": "tea-d0emu0team0000000000", "name": "Emulator Team", "type": "team"}],
        "services": [
            {
                "id": "srv-d0emu0api00000000000",
                "name": "api",
                "ownerId": "tea-d0emu0team0000000000",
                "type": "web_service",
                "envVars": [],
            }
        ],
        "envGroups": [],
    },
    "netlify": {
        "tokens": [DEFAULT_NETLIFY_TOKEN],
        "accounts": [{"id": "65e0c0ffee00000000000001", "slug": "team", "name": "Team"}],
        "sites": [
            {
                "id": "5f1c0de0-0000-4000-8000-000000000001",
                "name": "web",
                "account_id": "65e0c0ffee00000000000001",
                "account_slug": "team",
                "env": [],
            }
        ],
    },
    "vault": {
        "tokens": [DEFAULT_VAULT_TOKEN],
        "mounts": {"secret": {"envsync": {}}},
    },
}

APIS = ("render", "netlify", "vault")


def default_seed() -> JSONObject:
    """Return a fresh copy of the whole default seed document."""
    return copy.deepcopy(_DEFAULT_SEED)


def default_part(api: str) -> JSONObject:
    """Return a fresh copy of one API's part of the default seed."""
    part: JSONObject = copy.deepcopy(_DEFAULT_SEED[api])
    return part


def split_seed(document: Mapping[str, Any] | None) -> dict[str, JSONObject]:
    """Split a seed document into its three parts; a missing part takes the default one."""
    if document is None:
        return {api: default_part(api) for api in APIS}
    unknown = sorted(set(document) - set(APIS))
    if unknown:
        raise SeedError(f"unknown seed part {unknown[0]!r}; the parts are {', '.join(APIS)}")

    parts: dict[str, JSONObject] = {}
    for api in APIS:
        part = document.get(api)
        if part is None:
            parts[api] = default_part(api)
        elif isinstance(part, dict):
            parts[api] = copy.deepcopy(part)
        else:
            raise SeedError(f"the seed's {api!r} part must be a JSON object")
    return parts
