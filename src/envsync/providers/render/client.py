"""Render's REST API for service variables, environment groups, services, owners and deploys.

This module is the only code that contains Render's URLs, query parameters and JSON shapes.
Every call goes through `envsync.http.ApiClient`, which adds the bearer token, retries,
waits on 429 responses and turns HTTP failures into envsync errors. Responses of the wrong
shape raise `IncompleteReadError` on reads and `UnexpectedResponseError` on writes; the
messages name the call and the item, never a value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

from envsync.errors import IncompleteReadError, NotFoundError, UnexpectedResponseError
from envsync.http import ApiClient
from envsync.model import SecretValue

logger = logging.getLogger(__name__)

PROVIDER = "render"

Parsed = TypeVar("Parsed")

# Render's maximum page size (Render API docs, pagination page). A page shorter than this,
# or an empty page, is the last one, which is also where Render's own CLI stops.
PAGE_LIMIT = 100

# A list that needs more pages than this is looping with fresh cursors, not ending.
MAX_PAGES = 10_000

# Render counts GETs, env-var writes and deploys in separate rate-limit windows: recorded
# responses carry Ratelimit-Limit 400, 100 and 10. Deploys are limited per service (Render
# API docs, rate-limiting page), so each service gets its own deploy bucket.
READ_BUCKET = "read"
ENV_WRITE_BUCKET = "env-write"


def deploy_bucket(service_id: str) -> str:
    return f"deploy:{service_id}"


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One Render variable. Render returns every value in plaintext."""

    key: str
    value: SecretValue


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    name: str
    owner_id: str | None
    type: str | None

    @property
    def label(self) -> str:
        """The service as messages list it: `name (id)`."""
        return f"{self.name} ({self.id})"


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    name: str
    type: str | None


@dataclass(frozen=True, slots=True)
class EnvGroup:
    """An environment group with all of its variables and the services linked to it."""

    id: str
    name: str
    owner_id: str | None
    env_vars: tuple[EnvVar, ...]
    service_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EnvVarList:
    """A complete list of a service's variables, in Render's order, and the pages it took."""

    env_vars: tuple[EnvVar, ...]
    pages: int


class ShapeError(Exception):
    """A response that does not have the shape Render documents. The text names no value."""


class RenderClient:
    """Typed calls to Render's API over one ApiClient."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    async def list_env_vars(self, service_id: str, *, target: str | None = None) -> EnvVarList:
        """Read every variable set directly on a service, following cursors to the end.

        Raises IncompleteReadError when a page has the wrong shape, a cursor repeats or a
        key appears twice, so a caller never sees part of the list.
        """
        path = f"/services/{_segment(service_id)}/env-vars"
        items, pages = await self._paginate(
            path, operation="list_env_vars", item_field="envVar", params={}, target=target
        )

        env_vars = _parse_or_raise_read(_env_vars_from_items, items, path, target)
        return EnvVarList(env_vars=env_vars, pages=pages)

    async def replace_env_vars(
        self, service_id: str, env_vars: Sequence[EnvVar], *, target: str | None = None
    ) -> tuple[EnvVar, ...]:
        """Replace a service's whole variable set; any key left out is deleted by Render.

        Returns the variables listed in Render's response, in its order.
        """
        path = f"/services/{_segment(service_id)}/env-vars"
        body = [{"key": env_var.key, "value": env_var.value.reveal()} for env_var in env_vars]
        response = await self._api.request(
            "PUT",
            path,
            operation="replace_env_vars",
            json_body=body,
            target=target,
            bucket=ENV_WRITE_BUCKET,
        )

        return _parse_or_raise_write(_env_vars_from_answer, response.body, "PUT", path, target)

    async def put_env_var(
        self, service_id: str, key: str, value: SecretValue, *, target: str | None = None
    ) -> EnvVar:
        """Create or update one service variable. Render responds with the stored variable."""
        path = f"/services/{_segment(service_id)}/env-vars/{_segment(key)}"
        response = await self._api.request(
            "PUT",
            path,
            operation="put_env_var",
            json_body={"value": value.reveal()},
            target=target,
            bucket=ENV_WRITE_BUCKET,
        )

        return _parse_or_raise_write(_env_var_from_object, response.body, "PUT", path, target)

    async def delete_env_var(self, service_id: str, key: str, *, target: str | None = None) -> bool:
        """Delete one service variable. Returns False when Render reports it already gone."""
        path = f"/services/{_segment(service_id)}/env-vars/{_segment(key)}"
        return await self._delete(path, operation="delete_env_var", target=target)

    async def get_env_group(self, group_id: str, *, target: str | None = None) -> EnvGroup:
        """Read an environment group; Render returns every variable inline, unpaginated."""
        path = f"/env-groups/{_segment(group_id)}"
        response = await self._api.get(
            path, operation="get_env_group", target=target, bucket=READ_BUCKET
        )

        return _parse_or_raise_read(_env_group_from_object, response.body, path, target)

    async def put_env_group_var(
        self, group_id: str, key: str, value: SecretValue, *, target: str | None = None
    ) -> EnvGroup:
        """Create or update one group variable. Render responds with the whole group."""
        path = f"/env-groups/{_segment(group_id)}/env-vars/{_segment(key)}"
        response = await self._api.request(
            "PUT",
            path,
            operation="put_env_group_var",
            json_body={"value": value.reveal()},
            target=target,
            bucket=ENV_WRITE_BUCKET,
        )

        return _parse_or_raise_write(_env_group_from_object, response.body, "PUT", path, target)

    async def delete_env_group_var(
        self, group_id: str, key: str, *, target: str | None = None
    ) -> bool:
        """Delete one group variable. Returns False when Render reports it already gone."""
        path = f"/env-groups/{_segment(group_id)}/env-vars/{_segment(key)}"
        return await self._delete(path, operation="delete_env_group_var", target=target)

    async def list_services(
        self, *, name: str | None = None, owner_id: str | None = None, target: str | None = None
    ) -> tuple[Service, ...]:
        """List the services the token can see, filtered by exact name and owner if given."""
        params: dict[str, Any] = {}
        if name is not None:
            params["name"] = name
        if owner_id is not None:
            params["ownerId"] = owner_id

        items, _ = await self._paginate(
            "/services",
            operation="list_services",
            item_field="service",
            params=params,
            target=target,
        )
        return _parse_or_raise_read(_services_from_items, items, "/services", target)

    async def get_service(self, service_id: str, *, target: str | None = None) -> Service:
        path = f"/services/{_segment(service_id)}"
        response = await self._api.get(
            path, operation="get_service", target=target, bucket=READ_BUCKET
        )

        return _parse_or_raise_read(_service_from_object, response.body, path, target)

    async def list_owners(self, *, target: str | None = None) -> tuple[Owner, ...]:
        """List the users and teams the token belongs to."""
        items, _ = await self._paginate(
            "/owners", operation="list_owners", item_field="owner", params={}, target=target
        )
        return _parse_or_raise_read(_owners_from_items, items, "/owners", target)

    async def trigger_deploy(self, service_id: str, *, target: str | None = None) -> str | None:
        """Start a deploy of a service; returns Render's deploy id when the response has one.

        Changing variables never deploys by itself, so clients call this after a change.
        The response's shape is not checked further, because the deploy started whatever
        it contains.
        """
        path = f"/services/{_segment(service_id)}/deploys"
        response = await self._api.request(
            "POST",
            path,
            operation="trigger_deploy",
            json_body={},
            target=target,
            bucket=deploy_bucket(service_id),
        )

        deploy_id = response.body.get("id") if isinstance(response.body, dict) else None
        return deploy_id if isinstance(deploy_id, str) else None

    async def _delete(self, path: str, *, operation: str, target: str | None) -> bool:
        # A 404 on delete means the key is gone already, which is what the delete was for.
        # The Terraform provider for Render treats it the same way.
        try:
            await self._api.request(
                "DELETE", path, operation=operation, target=target, bucket=ENV_WRITE_BUCKET
            )
        except NotFoundError:
            logger.debug("render: %s found nothing to delete on %s", operation, path)
            return False
        return True

    async def _paginate(
        self,
        path: str,
        *,
        operation: str,
        item_field: str,
        params: dict[str, Any],
        target: str | None,
    ) -> tuple[list[Any], int]:
        """Fetch every page of a cursor-paginated list; return the items and the page count.

        Each item of a page is `{"cursor": ..., item_field: {...}}`. The next page starts
        after the last item's cursor, and a page shorter than the limit ends the list.
        """
        items: list[Any] = []
        sent_cursors: set[str] = set()
        cursor: str | None = None

        for page_number in range(1, MAX_PAGES + 1):
            query = {**params, "limit": PAGE_LIMIT}
            if cursor is not None:
                query["cursor"] = cursor
            response = await self._api.get(
                path, operation=operation, params=query, target=target, bucket=READ_BUCKET
            )

            page = _parse_or_raise_read(
                partial(_page_from_body, item_field=item_field), response.body, path, target
            )
            items.extend(item for _, item in page)
            if len(page) < PAGE_LIMIT:
                return items, page_number

            cursor = page[-1][0]
            if cursor in sent_cursors:
                problem = f"page {page_number} handed back a cursor that was already used"
                raise _read_error(problem, path, target)
            sent_cursors.add(cursor)

        raise _read_error(f"the list did not end within {MAX_PAGES} pages", path, target)


def _segment(text: str) -> str:
    """Quote a key or id as one path segment, so `/`, `?` and `%` stay inside it."""
    return quote(text, safe="")


def _read_error(problem: str, path: str, target: str | None) -> IncompleteReadError:
    return IncompleteReadError(
        f"the read is incomplete: {problem}",
        provider=PROVIDER,
        method="GET",
        path=path,
        target=target,
        hint="nothing was written; run again, and report it if it persists",
    )


def _parse_or_raise_read(
    parse: Callable[[Any], Parsed], body: Any, path: str, target: str | None
) -> Parsed:
    try:
        return parse(body)
    except ShapeError as error:
        raise _read_error(f"the response has an unexpected shape: {error}", path, target) from None


def _parse_or_raise_write(
    parse: Callable[[Any], Parsed], body: Any, method: str, path: str, target: str | None
) -> Parsed:
    try:
        return parse(body)
    except ShapeError as error:
        raise UnexpectedResponseError(
            f"the write succeeded but its response has an unexpected shape: {error}",
            provider=PROVIDER,
            method=method,
            path=path,
            target=target,
            hint="read the target again before writing more",
        ) from None


def _page_from_body(body: Any, item_field: str) -> list[tuple[str, Any]]:
    if not isinstance(body, list):
        raise ShapeError(f"expected a JSON array, got {_kind(body)}")

    page: list[tuple[str, Any]] = []
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            raise ShapeError(f"item {index} is {_kind(item)}, not an object")
        cursor = item.get("cursor")
        if not isinstance(cursor, str) or not cursor:
            raise ShapeError(f"item {index} has no string `cursor`")
        if not isinstance(item.get(item_field), dict):
            raise ShapeError(f"item {index} has no object `{item_field}`")
        page.append((cursor, item[item_field]))
    return page


def _env_var_from_object(document: Any) -> EnvVar:
    if not isinstance(document, dict):
        raise ShapeError(f"a variable is {_kind(document)}, not an object")
    key = document.get("key")
    value = document.get("value")
    if not isinstance(key, str) or not key:
        raise ShapeError("a variable has no string `key`")
    if not isinstance(value, str):
        raise ShapeError(f"variable {key} has no string `value`")
    return EnvVar(key=key, value=SecretValue(value))


def _env_vars_from_items(items: list[Any]) -> tuple[EnvVar, ...]:
    env_vars = tuple(_env_var_from_object(item) for item in items)
    _reject_repeated_keys(env_vars)
    return env_vars


def _env_vars_from_answer(body: Any) -> tuple[EnvVar, ...]:
    """Parse a bulk PUT response: the stored set as `[{"envVar": {...}, "cursor": ...}]`."""
    if not isinstance(body, list):
        raise ShapeError(f"expected a JSON array, got {_kind(body)}")

    env_vars = []
    for index, item in enumerate(body):
        if not isinstance(item, dict) or not isinstance(item.get("envVar"), dict):
            raise ShapeError(f"item {index} has no object `envVar`")
        env_vars.append(_env_var_from_object(item["envVar"]))
    return tuple(env_vars)


def _reject_repeated_keys(env_vars: Sequence[EnvVar]) -> None:
    seen: set[str] = set()
    for env_var in env_vars:
        if env_var.key in seen:
            raise ShapeError(f"key {env_var.key} is listed twice")
        seen.add(env_var.key)


def _env_group_from_object(document: Any) -> EnvGroup:
    if not isinstance(document, dict):
        raise ShapeError(f"the environment group is {_kind(document)}, not an object")
    group_id = document.get("id")
    name = document.get("name")
    raw_vars = document.get("envVars")
    links = document.get("serviceLinks", [])
    if not isinstance(group_id, str) or not isinstance(name, str):
        raise ShapeError("the environment group has no string `id` and `name`")
    if not isinstance(raw_vars, list):
        raise ShapeError("the environment group has no array `envVars`")
    if not isinstance(links, list):
        raise ShapeError("the environment group's `serviceLinks` is not an array")

    env_vars = tuple(_env_var_from_object(item) for item in raw_vars)
    _reject_repeated_keys(env_vars)
    return EnvGroup(
        id=group_id,
        name=name,
        owner_id=_optional_str(document, "ownerId"),
        env_vars=env_vars,
        service_ids=tuple(_service_link_id(link) for link in links),
    )


def _service_link_id(link: Any) -> str:
    if not isinstance(link, dict) or not isinstance(link.get("id"), str):
        raise ShapeError("a service link has no string `id`")
    service_id: str = link["id"]
    return service_id


def _service_from_object(document: Any) -> Service:
    if not isinstance(document, dict):
        raise ShapeError(f"a service is {_kind(document)}, not an object")
    service_id = document.get("id")
    name = document.get("name")
    if not isinstance(service_id, str) or not isinstance(name, str):
        raise ShapeError("a service has no string `id` and `name`")
    return Service(
        id=service_id,
        name=name,
        owner_id=_optional_str(document, "ownerId"),
        type=_optional_str(document, "type"),
    )


def _services_from_items(items: list[Any]) -> tuple[Service, ...]:
    return tuple(_service_from_object(item) for item in items)


def _owners_from_items(items: list[Any]) -> tuple[Owner, ...]:
    owners = []
    for item in items:
        owner_id = item.get("id")
        name = item.get("name")
        if not isinstance(owner_id, str) or not isinstance(name, str):
            raise ShapeError("an owner has no string `id` and `name`")
        owners.append(Owner(id=owner_id, name=name, type=_optional_str(item, "type")))
    return tuple(owners)


def _optional_str(document: dict[str, Any], field_name: str) -> str | None:
    value = document.get(field_name)
    return value if isinstance(value, str) else None


def _kind(document: Any) -> str:
    """The JSON type of a document, for messages that must not show its content."""
    if document is None:
        return "null"
    if isinstance(document, bool):
        return "a boolean"
    if isinstance(document, int | float):
        return "a number"
    if isinstance(document, str):
        return "a string"
    if isinstance(document, list):
        return "an array"
    return "an object"
