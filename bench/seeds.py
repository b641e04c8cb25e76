"""Seeds and canonical files for the benchmarks.

Every benchmark variable is named `BENCH_<n>` and is managed (the include list is empty),
so that drift, creation and request counts are exact. Ids follow the platforms' formats:
Render's `srv-`/`evg-`/`tea-` plus 20 lowercase characters, Netlify's UUID sites and
24-hex accounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RENDER_TOKEN = "rnd_benchToken0000000000000000000"
NETLIFY_TOKEN = "nfp_benchToken000000000000000000000000"
OWNER_ID = "tea-bench0owner00000000"
ACCOUNT_ID = "65e0be0c4000000000000001"
ACCOUNT_SLUG = "bench-team"
ALL_SCOPES = ["builds", "functions", "runtime", "post_processing"]
# The three Netlify contexts of the request-count scenarios.
THREE_CONTEXTS = ("production", "deploy-preview", "branch-deploy")


def service_id(index: int) -> str:
    return f"srv-bench{index:015d}"


def group_id(index: int) -> str:
    return f"evg-bench{index:015d}"


def site_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def key(index: int) -> str:
    return f"BENCH_{index:05d}"


def base_values(count: int) -> dict[str, str]:
    """Return the values a target has before the canonical set drifts from it."""
    return {key(index): f"value-{index}" for index in range(count)}


def drifted(values: Mapping[str, str], fraction: float) -> dict[str, str]:
    """Return the same keys with the first `fraction` of them given new values."""
    changed = round(len(values) * fraction)
    result = dict(values)
    for position, name in enumerate(sorted(values)):
        if position < changed:
            result[name] = f"{values[name]}-changed"
    return result


def dotenv_text(values: Mapping[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in values.items())


@dataclass(frozen=True, slots=True)
class Fleet:
    """How many targets of each kind a seed holds, and the variables each starts with."""

    services: int = 0
    groups: int = 0
    sites: int = 0
    variables: Mapping[str, str] | None = None
    contexts: Sequence[str] = ("all",)


def render_part(fleet: Fleet) -> dict[str, Any]:
    env_vars = [{"key": k, "value": v} for k, v in (fleet.variables or {}).items()]
    return {
        "tokens": [RENDER_TOKEN],
        "owners": [{"id": OWNER_ID, "name": "Bench", "type": "team"}],
        "services": [
            {
                "id": service_id(index),
                "name": f"bench-{index}",
                "ownerId": OWNER_ID,
                "type": "web_service",
                "envVars": env_vars,
            }
            for index in range(fleet.services)
        ],
        "envGroups": [
            {
                "id": group_id(index),
                "name": f"bench-group-{index}",
                "ownerId": OWNER_ID,
                "envVars": env_vars,
                "serviceIds": [],
            }
            for index in range(fleet.groups)
        ],
    }


def netlify_part(fleet: Fleet) -> dict[str, Any]:
    variables = [
        {
            "key": name,
            "scopes": ALL_SCOPES,
            "is_secret": False,
            "values": [_netlify_value(context, value) for context in fleet.contexts],
        }
        for name, value in (fleet.variables or {}).items()
    ]
    return {
        "tokens": [NETLIFY_TOKEN],
        "accounts": [{"id": ACCOUNT_ID, "slug": ACCOUNT_SLUG, "name": "Bench"}],
        "sites": [
            {
                "id": site_id(index),
                "name": f"bench-{index}",
                "account_id": ACCOUNT_ID,
                "account_slug": ACCOUNT_SLUG,
                "env": variables,
            }
            for index in range(fleet.sites)
        ],
    }


def _netlify_value(context: str, value: str) -> dict[str, str]:
    if context.startswith("branch:"):
        return {"context": "branch", "context_parameter": context[7:], "value": value}
    return {"context": context, "value": value}


def seed(fleet: Fleet) -> dict[str, Any]:
    return {"render": render_part(fleet), "netlify": netlify_part(fleet)}


def targets_toml(fleet: Fleet, *, write_mode: str = "bulk") -> str:
    """Build an envsync.toml that names every target of the fleet by id (no `auto`
    look-ups)."""
    tables = [
        f'[[target]]\nname = "svc-{i}"\nprovider = "render"\nservice_id = "{service_id(i)}"\n'
        f'write_mode = "{write_mode}"\n'
        for i in range(fleet.services)
    ]
    tables += [
        f'[[target]]\nname = "grp-{i}"\nprovider = "render"\nenv_group_id = "{group_id(i)}"\n'
        for i in range(fleet.groups)
    ]
    contexts = ", ".join(f'"{context}"' for context in fleet.contexts)
    tables += [
        f'[[target]]\nname = "site-{i}"\nprovider = "netlify"\nsite_id = "{site_id(i)}"\n'
        f'account_id = "{ACCOUNT_ID}"\ncontexts = [{contexts}]\n'
        for i in range(fleet.sites)
    ]
    return "\n".join(tables)
