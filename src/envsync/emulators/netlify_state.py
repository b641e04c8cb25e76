"""The Netlify emulator's state: accounts (teams), sites and their environment variables.

A seed may hold states that the API would refuse to create, such as `all` mixed with
specific contexts on one key, so that clients can be tested against data made by older
tools or by hand. Loading checks only the structure.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envsync.emulators.common import JSONObject, SeedError
from envsync.emulators.ids import netlify_hex_id, new_uuid, timestamp

# Netlify's deploy contexts; `branch` needs a `context_parameter` naming the branch.
CONTEXTS = ("all", "dev", "dev-server", "branch-deploy", "deploy-preview", "production", "branch")
SCOPES = ("builds", "functions", "runtime", "post_processing")
SECRET_SCOPES = ("builds", "functions", "runtime")

# The user every write is attributed to, in `updated_by`.
EMULATOR_USER: JSONObject = {
    "id": "65e0c0ffee0000000000beef",
    "full_name": "Emulator User",
    "email": "emulator@example.com",
    "avatar_url": "",
}


_last_change_ms = 0


def netlify_time() -> str:
    """Return the current time as Netlify writes it, with milliseconds.

    Each call returns a later time than the one before, even within one millisecond, so
    that every change of a variable shows a new `updated_at`.
    """
    global _last_change_ms
    now_ms = max(int(time.time() * 1000), _last_change_ms + 1)
    _last_change_ms = now_ms
    return timestamp(now_ms * 1_000_000, digits=3)


@dataclass(slots=True)
class Value:
    id: str
    context: str
    value: str
    context_parameter: str | None = None


@dataclass(slots=True)
class EnvVar:
    key: str
    scopes: list[str]
    values: list[Value]
    is_secret: bool
    updated_at: str
    updated_by: JSONObject = field(default_factory=lambda: dict(EMULATOR_USER))


@dataclass(slots=True)
class Account:
    id: str
    slug: str
    name: str
    created_at: str
    env: dict[str, EnvVar] = field(default_factory=dict)
    extra: JSONObject = field(default_factory=dict)


@dataclass(slots=True)
class Site:
    id: str
    name: str
    account_id: str
    created_at: str
    updated_at: str
    env: dict[str, EnvVar] = field(default_factory=dict)
    builds: list[JSONObject] = field(default_factory=list)
    extra: JSONObject = field(default_factory=dict)


@dataclass(slots=True)
class NetlifyState:
    tokens: list[str] = field(default_factory=list)
    accounts: dict[str, Account] = field(default_factory=dict)
    slugs: dict[str, str] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)

    def account(self, id_or_slug: str) -> Account | None:
        """Find an account by id or by slug, as Netlify's env paths accept either."""
        account = self.accounts.get(id_or_slug)
        if account is not None:
            return account
        account_id = self.slugs.get(id_or_slug)
        return self.accounts.get(account_id) if account_id is not None else None


def load_netlify_seed(document: Mapping[str, Any]) -> NetlifyState:
    """Build the state from the seed form; raise SeedError naming the offending field."""
    state = NetlifyState()
    tokens = document.get("tokens", [])
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise SeedError("netlify.tokens must be a list of non-empty strings")
    state.tokens = list(tokens)

    for position, raw in enumerate(_objects(document.get("accounts", []), "netlify.accounts")):
        account = _load_account(raw, f"netlify.accounts[{position}]")
        state.accounts[account.id] = account
        state.slugs[account.slug] = account.id

    for position, raw in enumerate(_objects(document.get("sites", []), "netlify.sites")):
        site = _load_site(state, raw, f"netlify.sites[{position}]")
        state.sites[site.id] = site
    return state


def dump_netlify_state(state: NetlifyState) -> JSONObject:
    return {
        "tokens": list(state.tokens),
        "accounts": [
            {
                "id": account.id,
                "slug": account.slug,
                "name": account.name,
                "created_at": account.created_at,
                **account.extra,
                "env": [dump_env_var(var) for var in account.env.values()],
            }
            for account in state.accounts.values()
        ],
        "sites": [
            {
                "id": site.id,
                "name": site.name,
                "account_id": site.account_id,
                "account_slug": state.accounts[site.account_id].slug,
                "created_at": site.created_at,
                "updated_at": site.updated_at,
                **site.extra,
                "env": [dump_env_var(var) for var in site.env.values()],
                "builds": list(site.builds),
            }
            for site in state.sites.values()
        ],
    }


def dump_env_var(var: EnvVar) -> JSONObject:
    """Return a variable in the seed form, every value in full."""
    values = []
    for value in var.values:
        dumped: JSONObject = {"id": value.id, "context": value.context, "value": value.value}
        if value.context_parameter is not None:
            dumped["context_parameter"] = value.context_parameter
        values.append(dumped)
    return {
        "key": var.key,
        "scopes": list(var.scopes),
        "is_secret": var.is_secret,
        "values": values,
        "updated_at": var.updated_at,
    }


def _load_account(raw: JSONObject, where: str) -> Account:
    name = _text(raw, "name", where)
    slug = raw.get("slug") or name.lower().replace(" ", "-")
    if not isinstance(slug, str):
        raise SeedError(f"{where}.slug must be a string")
    known = {"id", "slug", "name", "created_at", "env"}
    return Account(
        id=_optional_text(raw, "id", where) or netlify_hex_id(),
        slug=slug,
        name=name,
        created_at=_optional_text(raw, "created_at", where) or netlify_time(),
        env=_load_env(raw.get("env", []), f"{where}.env"),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def _load_site(state: NetlifyState, raw: JSONObject, where: str) -> Site:
    account_ref = raw.get("account_id") or raw.get("account_slug")
    account = state.account(account_ref) if isinstance(account_ref, str) else None
    if account is None:
        raise SeedError(f"{where} needs an account_id or account_slug of one of netlify.accounts")

    now = netlify_time()
    known = {
        "id",
        "name",
        "account_id",
        "account_slug",
        "created_at",
        "updated_at",
        "env",
        "builds",
    }
    builds = raw.get("builds", [])
    return Site(
        id=_optional_text(raw, "id", where) or new_uuid(),
        name=_text(raw, "name", where),
        account_id=account.id,
        created_at=_optional_text(raw, "created_at", where) or now,
        updated_at=_optional_text(raw, "updated_at", where) or now,
        env=_load_env(raw.get("env", []), f"{where}.env"),
        builds=list(_objects(builds, f"{where}.builds")),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def _load_env(raw: Any, where: str) -> dict[str, EnvVar]:
    variables: dict[str, EnvVar] = {}
    for position, item in enumerate(_objects(raw, where)):
        var = _load_env_var(item, f"{where}[{position}]")
        if var.key in variables:
            raise SeedError(f"{where} contains the key {var.key!r} twice")
        variables[var.key] = var
    return variables


def _load_env_var(raw: JSONObject, where: str) -> EnvVar:
    is_secret = raw.get("is_secret", False)
    if not isinstance(is_secret, bool):
        raise SeedError(f"{where}.is_secret must be true or false")

    scopes = raw.get("scopes", list(SECRET_SCOPES if is_secret else SCOPES))
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise SeedError(f"{where}.scopes must be a list of scope names")
    normalized = [s.replace("-", "_") for s in scopes]
    unknown = sorted(set(normalized) - set(SCOPES))
    if unknown:
        raise SeedError(f"{where}.scopes contains the unknown scope {unknown[0]!r}")

    values = [
        _load_value(item, f"{where}.values[{position}]")
        for position, item in enumerate(_objects(raw.get("values", []), f"{where}.values"))
    ]
    return EnvVar(
        key=_text(raw, "key", where),
        scopes=normalized,
        values=values,
        is_secret=is_secret,
        updated_at=_optional_text(raw, "updated_at", where) or netlify_time(),
    )


def _load_value(raw: JSONObject, where: str) -> Value:
    context = raw.get("context")
    if context not in CONTEXTS:
        raise SeedError(f"{where}.context must be one of {', '.join(CONTEXTS)}")
    value = raw.get("value", "")
    if not isinstance(value, str):
        raise SeedError(f"{where}.value must be a string")
    parameter = raw.get("context_parameter")
    if context == "branch" and (not isinstance(parameter, str) or not parameter):
        raise SeedError(f"{where}.context_parameter must name the branch")
    return Value(
        id=_optional_text(raw, "id", where) or new_uuid(),
        context=context,
        value=value,
        context_parameter=parameter if context == "branch" else None,
    )


def _objects(raw: Any, where: str) -> list[JSONObject]:
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise SeedError(f"{where} must be a list of objects")
    return raw


def _text(raw: JSONObject, name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise SeedError(f"{where}.{name} must be a non-empty string")
    return value


def _optional_text(raw: JSONObject, name: str, where: str) -> str | None:
    if raw.get(name) is None:
        return None
    return _text(raw, name, where)
