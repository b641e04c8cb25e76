"""Netlify API calls: the only module that builds Netlify URLs and parses its JSON.

Environment variables live under `/accounts/{account}/env`. Without a `site_id` query
parameter those calls act on team-level variables, which every site of the team inherits
(Netlify API reference, environment variables). A site's variables are reached only with
`site_id`, so every env call here goes through `EnvScope`, which cannot exist without a
site id, and `_env_request`, which always adds it.

Contexts travel inside envsync as strings: `production`, `dev`, ..., and `branch:NAME`
for a branch value, which the platform spells `{"context": "branch",
"context_parameter": NAME}`. This module converts between the two forms.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from envsync.errors import IncompleteReadError, UnexpectedResponseError
from envsync.http import ApiClient, ApiResponse
from envsync.model import SecretValue

logger = logging.getLogger(__name__)

PROVIDER = "netlify"

# Netlify sends one rate-limit budget per token for every call (500 requests a minute,
# Netlify API docs, rate limiting), so every call draws from one pacing bucket.
BUCKET = "api"

# `GET /sites` pages hold at most 100 sites (Netlify API docs, pagination).
SITES_PER_PAGE = 100
MAX_SITE_PAGES = 100

BRANCH_PREFIX = "branch:"


@dataclass(frozen=True, slots=True)
class EnvScope:
    """The location of a site's variables: the site's team (id or slug) and the site id.

    Construction fails on an empty site id, because an env call without `site_id` would
    read or write the team-level variables of every site instead.
    """

    account: str
    site_id: str
    target: str | None = None

    def __post_init__(self) -> None:
        if not self.site_id.strip():
            raise ValueError(
                "a Netlify env call needs a site id, because without one it acts team-wide"
            )
        if not self.account.strip():
            raise ValueError("a Netlify env call needs the site's account id or slug")


@dataclass(frozen=True, slots=True)
class SiteRecord:
    """The fields of a Netlify site object that envsync uses."""

    id: str
    name: str
    account_id: str | None
    account_slug: str | None

    @property
    def account(self) -> str | None:
        return self.account_id or self.account_slug

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})"


@dataclass(frozen=True, slots=True)
class ValueRecord:
    """One value of a variable as the platform returned it.

    `value` is None when the response had no `value` field, which is one way the
    platform hides a secret value.
    """

    context: str
    value: SecretValue | None
    value_id: str | None


@dataclass(frozen=True, slots=True)
class VariableRecord:
    """One variable of a site as the platform returned it."""

    key: str
    values: tuple[ValueRecord, ...]
    is_secret: bool
    scopes: tuple[str, ...] | None
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class ContextValue:
    """A value to send for one context (`branch:NAME` for a branch)."""

    context: str
    value: SecretValue


@dataclass(frozen=True, slots=True)
class NewVariable:
    """A variable to create or replace whole. `scopes=None` leaves `scopes` out of the body."""

    key: str
    values: tuple[ContextValue, ...]
    scopes: tuple[str, ...] | None
    is_secret: bool


class NetlifyClient:
    """Typed calls to the Netlify API, sent through one ApiClient."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    async def get_site(self, site_id: str, *, target: str | None = None) -> SiteRecord:
        path = f"/sites/{_segment(site_id)}"
        response = await self.api.get(path, operation="get_site", target=target, bucket=BUCKET)
        return _parse_site(response.body, path, target)

    async def list_sites(
        self, *, name: str | None = None, target: str | None = None
    ) -> list[SiteRecord]:
        """List every site the token can see, page by page until a page comes back short."""
        sites: list[SiteRecord] = []
        previous_ids: list[str] | None = None

        for page in range(1, MAX_SITE_PAGES + 1):
            batch = await self._list_sites_page(page, name, target)
            page_ids = [site.id for site in batch]
            if batch and page_ids == previous_ids:
                raise _read_error("GET", "/sites", "the same page came back twice", target)

            sites.extend(batch)
            if len(batch) < SITES_PER_PAGE:
                return sites
            previous_ids = page_ids

        raise _read_error(
            "GET", "/sites", f"the list did not end within {MAX_SITE_PAGES} pages", target
        )

    async def _list_sites_page(
        self, page: int, name: str | None, target: str | None
    ) -> list[SiteRecord]:
        params: dict[str, Any] = {"per_page": SITES_PER_PAGE, "page": page}
        if name is not None:
            params["name"] = name
        response = await self.api.get(
            "/sites", operation="list_sites", params=params, target=target, bucket=BUCKET
        )

        if not isinstance(response.body, list):
            raise _read_error("GET", "/sites", "the response is not a list of sites", target)
        return [_parse_site(item, "/sites", target) for item in response.body]

    async def list_env(self, scope: EnvScope) -> list[VariableRecord]:
        """Read every variable of the site. Netlify returns them all in one response."""
        response = await self._env_request(scope, "GET", "", operation="list_env")
        path = _env_path(scope, "")

        if not isinstance(response.body, list):
            raise _read_error("GET", path, "the response is not a list of variables", scope.target)
        return [
            _parse_variable(item, "GET", path, scope.target, read=True) for item in response.body
        ]

    async def create_env(
        self, scope: EnvScope, variables: Sequence[NewVariable]
    ) -> dict[str, str | None]:
        """Create every variable in one batch and return each key's `updated_at`.

        The platform creates the whole batch or none of it: a key that already exists
        fails the batch with 409, and a reserved key name fails it too.
        """
        body = [_variable_body(variable) for variable in variables]
        response = await self._env_request(
            scope, "POST", "", operation="create_env", json_body=body
        )
        path = _env_path(scope, "")

        if not isinstance(response.body, list):
            problem = "the response is not a list of variables"
            raise _write_error("POST", path, problem, scope.target)
        created = [
            _parse_variable(item, "POST", path, scope.target, read=False) for item in response.body
        ]
        return {variable.key: variable.updated_at for variable in created}

    async def set_value(
        self, scope: EnvScope, key: str, value: ContextValue, *, is_secret: bool
    ) -> str | None:
        """Set one context's value of an existing variable (creating that value if absent).

        Netlify's OpenAPI 2 spec documents 201 and its server spec 200; both are success.
        Returns the variable's `updated_at` when the response has it.
        """
        body: dict[str, Any] = {**_context_fields(value.context), "value": value.value.reveal()}
        if is_secret:
            body["is_secret"] = True
        response = await self._env_request(
            scope, "PATCH", f"/{_segment(key)}", operation="set_env_value", json_body=body
        )
        return _updated_at(response, "PATCH", _env_path(scope, f"/{key}"), scope.target)

    async def replace_variable(self, scope: EnvScope, variable: NewVariable) -> str | None:
        """Replace a variable whole: every value, its scopes and `is_secret`.

        Every context left out of `values` is deleted by the platform.
        """
        body = _variable_body(variable)
        del body["key"]
        response = await self._env_request(
            scope,
            "PUT",
            f"/{_segment(variable.key)}",
            operation="replace_env",
            json_body=body,
        )
        return _updated_at(response, "PUT", _env_path(scope, f"/{variable.key}"), scope.target)

    async def delete_variable(self, scope: EnvScope, key: str) -> None:
        await self._env_request(scope, "DELETE", f"/{_segment(key)}", operation="delete_env")

    async def delete_value(self, scope: EnvScope, key: str, value_id: str) -> None:
        """Delete one value of a variable by its id. The variable's other values stay."""
        suffix = f"/{_segment(key)}/value/{_segment(value_id)}"
        await self._env_request(scope, "DELETE", suffix, operation="delete_env_value")

    async def start_build(self, site_id: str, *, target: str | None = None) -> None:
        await self.api.request(
            "POST",
            f"/sites/{_segment(site_id)}/builds",
            operation="start_build",
            target=target,
            bucket=BUCKET,
        )

    async def _env_request(
        self,
        scope: EnvScope,
        method: str,
        suffix: str,
        *,
        operation: str,
        json_body: Any = None,
    ) -> ApiResponse:
        """Send one env call with `site_id` in the query, so that it never acts team-wide."""
        return await self.api.request(
            method,
            f"/accounts/{_segment(scope.account)}/env{suffix}",
            operation=operation,
            params={"site_id": scope.site_id},
            json_body=json_body,
            target=scope.target,
            bucket=BUCKET,
        )


def _context_fields(context: str) -> dict[str, str]:
    if context.startswith(BRANCH_PREFIX):
        return {"context": "branch", "context_parameter": context.removeprefix(BRANCH_PREFIX)}
    return {"context": context}


def _variable_body(variable: NewVariable) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": variable.key,
        "values": [
            {**_context_fields(item.context), "value": item.value.reveal()}
            for item in variable.values
        ],
        "is_secret": variable.is_secret,
    }
    if variable.scopes is not None:
        body["scopes"] = list(variable.scopes)
    return body


def _segment(text: str) -> str:
    """Quote one path segment, so a key or id can never reach another path."""
    return quote(text, safe="")


def _env_path(scope: EnvScope, suffix: str) -> str:
    return f"/accounts/{scope.account}/env{suffix}"


def _parse_site(item: Any, path: str, target: str | None) -> SiteRecord:
    if not isinstance(item, dict):
        raise _read_error("GET", path, "a site is not a JSON object", target)

    site_id = item.get("id")
    name = item.get("name")
    if not isinstance(site_id, str) or not site_id or not isinstance(name, str):
        raise _read_error("GET", path, "a site has no string `id` or `name`", target)

    return SiteRecord(
        id=site_id,
        name=name,
        account_id=_optional_str(item.get("account_id")),
        account_slug=_optional_str(item.get("account_slug")),
    )


def _parse_variable(
    item: Any, method: str, path: str, target: str | None, *, read: bool
) -> VariableRecord:
    fail = _read_error if read else _write_error
    if not isinstance(item, dict):
        raise fail(method, path, "a variable is not a JSON object", target)

    key = item.get("key")
    raw_values = item.get("values")
    if not isinstance(key, str) or not key:
        raise fail(method, path, "a variable has no string `key`", target)
    if not isinstance(raw_values, list):
        raise fail(method, path, f"variable {key} has no `values` list", target)

    values = tuple(_parse_value(raw, key, method, path, target, read=read) for raw in raw_values)
    return VariableRecord(
        key=key,
        values=values,
        is_secret=item.get("is_secret") is True,
        scopes=_parse_scopes(item.get("scopes"), key, method, path, target, read=read),
        updated_at=_optional_str(item.get("updated_at")),
    )


def _parse_value(
    raw: Any, key: str, method: str, path: str, target: str | None, *, read: bool
) -> ValueRecord:
    fail = _read_error if read else _write_error
    if not isinstance(raw, dict):
        raise fail(method, path, f"a value of variable {key} is not a JSON object", target)

    context = raw.get("context")
    if not isinstance(context, str) or not context:
        raise fail(method, path, f"a value of variable {key} has no `context`", target)
    if context == "branch":
        branch = raw.get("context_parameter")
        if not isinstance(branch, str) or not branch:
            raise fail(method, path, f"a branch value of {key} has no branch name", target)
        context = f"{BRANCH_PREFIX}{branch}"

    value = raw.get("value")
    if value is not None and not isinstance(value, str):
        raise fail(method, path, f"the {context} value of {key} is not a string", target)

    return ValueRecord(
        context=context,
        value=None if value is None else SecretValue(value),
        value_id=_optional_str(raw.get("id")),
    )


def _parse_scopes(
    raw: Any, key: str, method: str, path: str, target: str | None, *, read: bool
) -> tuple[str, ...] | None:
    # Free and Starter plans respond without `scopes` (netlify/terraform-provider-netlify
    # made the field optional for that reason).
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(scope, str) for scope in raw):
        fail = _read_error if read else _write_error
        raise fail(method, path, f"the scopes of {key} are not a list of names", target)
    # Responses spell `post_processing`, but the OpenAPI 2 request enum spells `post-processing`.
    return tuple(scope.replace("-", "_") for scope in raw)


def _updated_at(response: ApiResponse, method: str, path: str, target: str | None) -> str | None:
    body = response.body
    if body is None:
        return None
    if not isinstance(body, dict):
        raise _write_error(method, path, "the response is not a variable object", target)
    return _optional_str(body.get("updated_at"))


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _read_error(method: str, path: str, problem: str, target: str | None) -> IncompleteReadError:
    return IncompleteReadError(
        f"invalid response: {problem}", provider=PROVIDER, method=method, path=path, target=target
    )


def _write_error(
    method: str, path: str, problem: str, target: str | None
) -> UnexpectedResponseError:
    return UnexpectedResponseError(
        f"the write was accepted but its response is invalid: {problem}",
        provider=PROVIDER,
        method=method,
        path=path,
        target=target,
        hint="run plan again to see what the target now holds",
    )
