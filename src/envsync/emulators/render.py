"""An emulator of Render's REST API (`/v1`), enough for environment variables and groups.

It serves owners, services (list, create, get, patch, delete), a service's environment
variables (paginated list, bulk replace, get, upsert, delete) and secret files, deploys,
and environment groups with their variables, secret files and service links. A few reads
that Render's Terraform provider makes (custom domains, notification overrides, log
streams) return what its recordings show, so that recorded traffic can be replayed.

Behaviour taken from Render's docs, its OpenAPI-generated clients and recordings of real
traffic (render-oss/terraform-provider-render test cassettes):

- Auth: `Authorization: Bearer <token>`; an unknown or missing token gets 401.
- Responses carry `Content-Type: application/json; charset=utf-8`, a `Render-Request-Id`,
  and `Ratelimit-Limit`, `Ratelimit-Remaining` and `Ratelimit-Reset`, where Reset is the
  number of seconds until the window ends (the recordings show small numbers such as 42,
  although the docs call it epoch seconds).
- Limits per window, per token (the values the recordings show in `Ratelimit-Limit`): 400
  GETs a minute; 100 other writes a minute; 20 `POST /v1/services` an hour; 10 deploys,
  PATCHes, suspends, resumes and restarts of one service a minute. A refused request gets
  429 with `Retry-After` (seconds) and the same headers.
- Pagination: `limit` defaults to 20 and is at most 100; every item sits beside a `cursor`,
  the next page starts after the cursor given, and the end is an empty array. Lists run
  newest first, the order the recordings show, which is not alphabetical.
- A bulk `PUT /services/{id}/env-vars` replaces the whole set and returns the new list in
  request order; `generateValue: true` makes a 44-character base64 value of 256 bits.
- Errors are `{"message": ...}`; 404 bodies are exactly `{"message": "not found: <id>"}`
  (what every recorded 404 shows). 400 and 401 also carry an `id` field, as Render's
  spec allows, so that clients are exercised with both shapes.
- `GET /v1/env-groups` returns group metadata without `envVars` and without cursor
  wrappers; its `cursor` parameter takes the id of the last group seen.

Choices where Render's behaviour is undocumented, switchable at run time through
`POST /_emulator/config`:

- `empty_value`: "reject" (default) returns 400 for an empty value, as other sync tools
  report Render does; "accept" stores it.
- `duplicate_keys`: "reject" (default) returns 400 when a bulk PUT names a key twice;
  "last_wins" keeps the last value.
- `limit_over_max`: "clamp" (default) serves 100 items for `limit` above 100; "reject"
  returns 400.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from envsync.emulators.common import (
    REPEAT_CURSOR_SCOPE,
    ApiError,
    Emulator,
    JSONObject,
    note_keys,
    query_values,
    read_json,
)
from envsync.emulators.ids import generated_secret, parse_timestamp, render_id, timestamp
from envsync.emulators.ratelimit import Bucket, RateDecision
from envsync.emulators.render_state import (
    SERVICE_TYPES,
    EnvGroup,
    Listing,
    Owner,
    RenderState,
    Service,
    decode_cursor,
    dump_render_state,
    load_render_seed,
)
from envsync.emulators.seed import default_part

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

_GET = Bucket("get", 400, 60)
_WRITE = Bucket("write", 100, 60)
_CREATE_SERVICE = Bucket("create-service", 20, 3600)
# Deploy-type calls are limited per service.
_SERVICE_ACTION = re.compile(r"^/v1/services/([^/]+)(?:/(deploys|suspend|resume|restart))?$")


class RenderEmulator(Emulator):
    """Render's API under `/v1`; see the module docstring for its behaviour and switches."""

    api: ClassVar[str] = "render"
    media_type: ClassVar[str] = "application/json; charset=utf-8"
    config_choices: ClassVar[dict[str, tuple[Any, ...]]] = {
        "empty_value": ("reject", "accept"),
        "duplicate_keys": ("reject", "last_wins"),
        "limit_over_max": ("clamp", "reject"),
    }
    config_defaults: ClassVar[dict[str, Any]] = {
        "empty_value": "reject",
        "duplicate_keys": "reject",
        "limit_over_max": "clamp",
    }

    state: RenderState

    @classmethod
    def default_seed(cls) -> JSONObject:
        return default_part("render")

    def load_seed(self, document: Any) -> None:
        self.state = load_render_seed(document)
        self.tokens = frozenset(self.state.tokens)
        self._request_count = 0

    def dump_state(self) -> JSONObject:
        return dump_render_state(self.state)

    def error_body(self, status: int, message: str) -> Any:
        if status == 400:
            return {"id": "invalid_request", "message": message}
        if status == 401:
            return {"id": "unauthorized", "message": message}
        return {"message": message}

    def extra_headers(self) -> dict[str, str]:
        self._request_count += 1
        return {"Render-Request-Id": f"emu-{secrets.token_hex(5)}/{self._request_count:06d}"}

    def rate_bucket(self, method: str, path: str) -> Bucket | None:
        if method in ("GET", "HEAD"):
            return _GET
        if method == "POST" and path == "/v1/services":
            return _CREATE_SERVICE

        action = _SERVICE_ACTION.match(path)
        is_patch = method == "PATCH" and action is not None and action.group(2) is None
        is_action = method == "POST" and action is not None and action.group(2) is not None
        if action is not None and (is_patch or is_action):
            return Bucket(f"service:{action.group(1)}", 10, 60)
        return _WRITE

    def rate_headers(self, decision: RateDecision) -> dict[str, str]:
        return {
            "Ratelimit-Limit": str(decision.limit),
            "Ratelimit-Remaining": str(decision.remaining),
            "Ratelimit-Reset": str(decision.reset_after_s),
        }

    def rate_limited(self, decision: RateDecision) -> Response:
        headers = {"Retry-After": str(max(1, decision.reset_after_s))}
        return self.error_response(429, "rate limit exceeded", headers)

    def api_routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/owners", self.list_owners, methods=["GET"]),
            Route("/v1/owners/{owner_id}", self.get_owner, methods=["GET"]),
            Route("/v1/services", self.list_services, methods=["GET"]),
            Route("/v1/services", self.create_service, methods=["POST"]),
            Route("/v1/services/{service_id}", self.get_service, methods=["GET"]),
            Route("/v1/services/{service_id}", self.update_service, methods=["PATCH"]),
            Route("/v1/services/{service_id}", self.delete_service, methods=["DELETE"]),
            Route("/v1/services/{service_id}/env-vars", self.list_env_vars, methods=["GET"]),
            Route("/v1/services/{service_id}/env-vars", self.replace_env_vars, methods=["PUT"]),
            Route("/v1/services/{service_id}/env-vars/{key}", self.get_env_var, methods=["GET"]),
            Route("/v1/services/{service_id}/env-vars/{key}", self.put_env_var, methods=["PUT"]),
            Route(
                "/v1/services/{service_id}/env-vars/{key}",
                self.delete_env_var,
                methods=["DELETE"],
            ),
            Route(
                "/v1/services/{service_id}/secret-files",
                self.list_secret_files,
                methods=["GET"],
            ),
            Route(
                "/v1/services/{service_id}/secret-files",
                self.replace_secret_files,
                methods=["PUT"],
            ),
            Route(
                "/v1/services/{service_id}/secret-files/{name}",
                self.service_secret_file,
                methods=["GET", "PUT", "DELETE"],
            ),
            Route("/v1/services/{service_id}/deploys", self.list_deploys, methods=["GET"]),
            Route("/v1/services/{service_id}/deploys", self.create_deploy, methods=["POST"]),
            Route(
                "/v1/services/{service_id}/deploys/{deploy_id}",
                self.get_deploy,
                methods=["GET"],
            ),
            Route(
                "/v1/services/{service_id}/custom-domains",
                self.list_custom_domains,
                methods=["GET"],
            ),
            Route(
                "/v1/notification-settings/overrides/services/{service_id}",
                self.notification_overrides,
                methods=["GET", "PATCH"],
            ),
            Route(
                "/v1/logs/streams/resource/{resource_id}",
                self.log_stream,
                methods=["GET"],
            ),
            Route("/v1/env-groups", self.list_env_groups, methods=["GET"]),
            Route("/v1/env-groups", self.create_env_group, methods=["POST"]),
            Route(
                "/v1/env-groups/{group_id}",
                self.env_group,
                methods=["GET", "PATCH", "DELETE"],
            ),
            Route(
                "/v1/env-groups/{group_id}/env-vars/{key}",
                self.env_group_var,
                methods=["GET", "PUT", "DELETE"],
            ),
            Route(
                "/v1/env-groups/{group_id}/secret-files/{name}",
                self.env_group_secret_file,
                methods=["GET", "PUT", "DELETE"],
            ),
            Route(
                "/v1/env-groups/{group_id}/services/{service_id}",
                self.env_group_link,
                methods=["POST", "DELETE"],
            ),
        ]

    # Owners.

    async def list_owners(self, request: Request) -> Response:
        names = set(query_values(request, "name"))
        emails = set(query_values(request, "email"))

        def keep(owner: Owner) -> bool:
            return (not names or owner.name in names) and (not emails or owner.email in emails)

        page = self._page(request, self.state.owners, keep)
        return self.json_response(
            [{"cursor": cursor, "owner": _owner_json(owner)} for cursor, _, owner in page]
        )

    async def get_owner(self, request: Request) -> Response:
        owner_id = request.path_params["owner_id"]
        owner = self.state.owners.get(owner_id)
        if owner is None:
            raise _not_found(owner_id)
        return self.json_response(_owner_json(owner))

    # Services.

    async def list_services(self, request: Request) -> Response:
        keep = _service_filter(request)
        page = self._page(request, self.state.services, keep)
        return self.json_response(
            [{"cursor": cursor, "service": _service_json(service)} for cursor, _, service in page]
        )

    async def create_service(self, request: Request) -> Response:
        body = await _json_object(request)
        service_type = body.get("type")
        if not isinstance(service_type, str) or service_type not in SERVICE_TYPES:
            raise ApiError(400, f"type must be one of {', '.join(SERVICE_TYPES)}")
        name = _required_text(body, "name")
        owner_id = _required_text(body, "ownerId")
        if owner_id not in self.state.owners:
            raise _not_found(owner_id)

        env_pairs = self._parse_env_inputs(body.get("envVars"))
        file_pairs = _parse_secret_files(body.get("secretFiles"))
        service = self.state.new_service(name, owner_id, service_type)
        service.extra = _creation_extras(body)
        for key, value in env_pairs:
            service.env_vars.put(key, value)
        for file_name, content in file_pairs:
            service.secret_files.put(file_name, content)
        self.state.services.put(service.id, service)
        note_keys(request, [key for key, _ in env_pairs])

        deploy = _new_deploy(service)
        service.deploys.put(deploy["id"], deploy)
        return self.json_response(
            {"deployId": deploy["id"], "service": _service_json(service)}, status=201
        )

    async def get_service(self, request: Request) -> Response:
        return self.json_response(_service_json(self._service(request)))

    async def update_service(self, request: Request) -> Response:
        service = self._service(request)
        body = await _json_object(request)
        if "name" in body:
            service.name = _required_text(body, "name")
        for field_name in ("autoDeploy", "branch", "rootDir", "repo", "buildFilter"):
            if field_name in body:
                service.extra[field_name] = body[field_name]
        _merge_details(service, body.get("serviceDetails"))
        service.updated_at = timestamp()
        return self.json_response(_service_json(service))

    async def delete_service(self, request: Request) -> Response:
        service = self._service(request)
        self.state.services.remove(service.id)
        for _, group in self.state.env_groups.oldest_first():
            if service.id in group.service_ids:
                group.service_ids.remove(service.id)
        return self.no_content()

    # A service's environment variables.

    async def list_env_vars(self, request: Request) -> Response:
        service = self._service(request)
        page = self._page(request, service.env_vars)
        return self.json_response(
            [
                {"envVar": {"key": key, "value": value}, "cursor": cursor}
                for cursor, key, value in page
            ]
        )

    async def replace_env_vars(self, request: Request) -> Response:
        service = self._service(request)
        pairs = self._parse_env_inputs(await read_json(request))
        new_keys = {key for key, _ in pairs}
        removed = [key for key, _ in service.env_vars.oldest_first() if key not in new_keys]

        # Render recreates every variable: each gets a new cursor, in request order.
        service.env_vars.clear()
        for key, value in pairs:
            service.env_vars.put(key, value)
        note_keys(request, [*(key for key, _ in pairs), *removed])
        return self.json_response(
            [
                {"envVar": {"key": key, "value": value}, "cursor": service.env_vars.cursor_of(key)}
                for key, value in pairs
            ]
        )

    async def get_env_var(self, request: Request) -> Response:
        service = self._service(request)
        key = request.path_params["key"]
        value = service.env_vars.get(key)
        if value is None:
            raise _not_found(key)
        return self.json_response({"key": key, "value": value})

    async def put_env_var(self, request: Request) -> Response:
        service = self._service(request)
        key = request.path_params["key"]
        value = self._parse_single_value(await _json_object(request), key)
        service.env_vars.put(key, value)
        note_keys(request, [key])
        return self.json_response({"key": key, "value": value})

    async def delete_env_var(self, request: Request) -> Response:
        service = self._service(request)
        key = request.path_params["key"]
        if service.env_vars.remove(key) is None:
            raise _not_found(key)
        note_keys(request, [key])
        return self.no_content()

    # A service's secret files.

    async def list_secret_files(self, request: Request) -> Response:
        service = self._service(request)
        page = self._page(request, service.secret_files)
        return self.json_response(
            [
                {"secretFile": {"name": name, "content": content}, "cursor": cursor}
                for cursor, name, content in page
            ]
        )

    async def replace_secret_files(self, request: Request) -> Response:
        service = self._service(request)
        pairs = _parse_secret_files(await read_json(request))
        service.secret_files.clear()
        for name, content in pairs:
            service.secret_files.put(name, content)
        return self.json_response(
            [
                {
                    "secretFile": {"name": name, "content": content},
                    "cursor": service.secret_files.cursor_of(name),
                }
                for name, content in pairs
            ]
        )

    async def service_secret_file(self, request: Request) -> Response:
        service = self._service(request)
        name = request.path_params["name"]
        return await self._secret_file(request, service.secret_files, name, lambda: None)

    # Deploys.

    async def list_deploys(self, request: Request) -> Response:
        service = self._service(request)
        page = self._page(request, service.deploys)
        return self.json_response(
            [{"deploy": deploy, "cursor": cursor} for cursor, _, deploy in page]
        )

    async def create_deploy(self, request: Request) -> Response:
        service = self._service(request)
        body = await read_json(request)
        if body is not None and not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        deploy = _new_deploy(service)
        service.deploys.put(deploy["id"], deploy)
        return self.json_response(deploy, status=201)

    async def get_deploy(self, request: Request) -> Response:
        service = self._service(request)
        deploy_id = request.path_params["deploy_id"]
        deploy = service.deploys.get(deploy_id)
        if deploy is None:
            raise _not_found(deploy_id)
        return self.json_response(deploy)

    # Reads that the Terraform provider makes around a service, returning what was recorded.

    async def list_custom_domains(self, request: Request) -> Response:
        self._service(request)
        return self.json_response([])

    async def notification_overrides(self, request: Request) -> Response:
        service = self._service(request)
        return self.json_response(
            {
                "notificationsToSend": "default",
                "previewNotificationsEnabled": "default",
                "serviceId": service.id,
            }
        )

    async def log_stream(self, request: Request) -> Response:
        # No resource has a log stream configured, for which Render returns 404.
        raise _not_found(request.path_params["resource_id"])

    # Environment groups.

    async def list_env_groups(self, request: Request) -> Response:
        keep = _env_group_filter(request)
        after = self._group_cursor(request.query_params.get("cursor"))
        page = self.state.env_groups.page(after, self._limit(request), keep)
        return self.json_response([self._env_group_meta(group) for _, _, group in page])

    async def create_env_group(self, request: Request) -> Response:
        body = await _json_object(request)
        name = _required_text(body, "name")
        owner_id = _required_text(body, "ownerId")
        if owner_id not in self.state.owners:
            raise _not_found(owner_id)

        env_pairs = self._parse_env_inputs(body.get("envVars"))
        file_pairs = _parse_secret_files(body.get("secretFiles"))
        service_ids = body.get("serviceIds") or []
        if not isinstance(service_ids, list) or not all(isinstance(s, str) for s in service_ids):
            raise ApiError(400, "serviceIds must be a list of service ids")
        for service_id in service_ids:
            if service_id not in self.state.services:
                raise _not_found(service_id)

        group = self.state.new_env_group(name, owner_id)
        environment_id = body.get("environmentId")
        group.environment_id = environment_id if isinstance(environment_id, str) else None
        group.service_ids = list(dict.fromkeys(service_ids))
        for key, value in env_pairs:
            group.env_vars.put(key, value)
        for file_name, content in file_pairs:
            group.secret_files.put(file_name, content)
        self.state.env_groups.put(group.id, group)
        note_keys(request, [key for key, _ in env_pairs])
        return self.json_response(self._env_group_json(group), status=201)

    async def env_group(self, request: Request) -> Response:
        group = self._env_group(request)
        if request.method == "DELETE":
            self.state.env_groups.remove(group.id)
            note_keys(request, [key for key, _ in group.env_vars.oldest_first()])
            return self.no_content()

        if request.method == "PATCH":
            body = await _json_object(request)
            group.name = _required_text(body, "name")
            group.updated_at = timestamp()
        return self.json_response(self._env_group_json(group))

    async def env_group_var(self, request: Request) -> Response:
        group = self._env_group(request)
        key = request.path_params["key"]
        if request.method == "GET":
            value = group.env_vars.get(key)
            if value is None:
                raise _not_found(key)
            return self.json_response({"key": key, "value": value})

        if request.method == "DELETE":
            if group.env_vars.remove(key) is None:
                raise _not_found(key)
            group.updated_at = timestamp()
            note_keys(request, [key])
            return self.no_content()

        # A PUT of one key returns the whole group, as the recordings show.
        group.env_vars.put(key, self._parse_single_value(await _json_object(request), key))
        group.updated_at = timestamp()
        note_keys(request, [key])
        return self.json_response(self._env_group_json(group))

    async def env_group_secret_file(self, request: Request) -> Response:
        group = self._env_group(request)

        def touch() -> Response:
            group.updated_at = timestamp()
            return self.json_response(self._env_group_json(group))

        name = request.path_params["name"]
        return await self._secret_file(request, group.secret_files, name, touch)

    async def env_group_link(self, request: Request) -> Response:
        group = self._env_group(request)
        service_id = request.path_params["service_id"]
        if service_id not in self.state.services:
            raise _not_found(service_id)

        if request.method == "DELETE":
            if service_id in group.service_ids:
                group.service_ids.remove(service_id)
            group.updated_at = timestamp()
            return self.no_content()

        if service_id not in group.service_ids:
            group.service_ids.append(service_id)
        group.updated_at = timestamp()
        return self.json_response(self._env_group_json(group))

    # Helpers.

    def _service(self, request: Request) -> Service:
        service_id = request.path_params["service_id"]
        service = self.state.services.get(service_id)
        if service is None:
            raise _not_found(service_id)
        return service

    def _env_group(self, request: Request) -> EnvGroup:
        group_id = request.path_params["group_id"]
        group = self.state.env_groups.get(group_id)
        if group is None:
            raise _not_found(group_id)
        return group

    def _limit(self, request: Request) -> int:
        raw = request.query_params.get("limit")
        if raw is None or raw == "":
            return DEFAULT_LIMIT
        try:
            limit = int(raw)
        except ValueError:
            raise ApiError(400, "limit must be an integer between 1 and 100") from None
        if limit < 1:
            raise ApiError(400, "limit must be an integer between 1 and 100")
        if limit > MAX_LIMIT and self.config["limit_over_max"] == "reject":
            raise ApiError(400, "limit must be an integer between 1 and 100")
        return min(limit, MAX_LIMIT)

    def _page(
        self,
        request: Request,
        listing: Listing[Any],
        keep: Callable[[Any], bool] | None = None,
    ) -> list[tuple[str, str, Any]]:
        cursor = request.query_params.get("cursor") or None
        after = None
        if cursor is not None:
            try:
                after = decode_cursor(cursor)
            except ValueError:
                raise ApiError(400, "invalid cursor") from None

        page = listing.page(after, self._limit(request), keep)
        if cursor is not None and page and request.scope.get(REPEAT_CURSOR_SCOPE):
            # The repeat_cursor fault: hand back the cursor the client sent.
            _, key, item = page[-1]
            page[-1] = (cursor, key, item)
        return page

    def _group_cursor(self, cursor: str | None) -> int | None:
        if not cursor:
            return None
        sequence = self.state.env_groups.sequence_of(cursor)
        if sequence is not None:
            return sequence
        try:
            return decode_cursor(cursor)
        except ValueError:
            raise ApiError(400, "invalid cursor") from None

    def _parse_env_inputs(self, body: Any) -> list[tuple[str, str]]:
        """Validate a list of `{"key", "value"}` or `{"key", "generateValue": true}`."""
        if body is None:
            return []
        if not isinstance(body, list):
            raise ApiError(400, "the body must be a JSON array of environment variables")

        pairs: dict[str, str] = {}
        for position, item in enumerate(body):
            if not isinstance(item, dict):
                raise ApiError(400, f"item {position} must be an object with key and value")
            key = item.get("key")
            if not isinstance(key, str) or not key:
                raise ApiError(400, f"item {position} has no key")
            if key in pairs and self.config["duplicate_keys"] == "reject":
                raise ApiError(400, f"duplicate key {key}")
            pairs.pop(key, None)
            pairs[key] = self._parse_single_value(item, key)
        return list(pairs.items())

    def _parse_single_value(self, body: JSONObject, key: str) -> str:
        if body.get("generateValue") is True:
            return generated_secret()

        value = body.get("value")
        if not isinstance(value, str):
            raise ApiError(400, f"the value of {key} must be a string, or generateValue true")
        if value == "" and self.config["empty_value"] == "reject":
            raise ApiError(400, f"the value of {key} must not be empty")
        return value

    async def _secret_file(
        self,
        request: Request,
        files: Listing[str],
        name: str,
        after_write: Callable[[], Response | None],
    ) -> Response:
        if request.method == "GET":
            content = files.get(name)
            if content is None:
                raise _not_found(name)
            return self.json_response({"name": name, "content": content})

        if request.method == "DELETE":
            if files.remove(name) is None:
                raise _not_found(name)
            after_write()
            return self.no_content()

        body = await _json_object(request)
        content = body.get("content")
        if not isinstance(content, str):
            raise ApiError(400, "content must be a string")
        files.put(name, content)
        group_response = after_write()
        return (
            group_response
            if group_response is not None
            else self.json_response({"name": name, "content": content})
        )

    def _env_group_meta(self, group: EnvGroup) -> JSONObject:
        meta: JSONObject = {
            "id": group.id,
            "name": group.name,
            "ownerId": group.owner_id,
            "createdAt": group.created_at,
            "updatedAt": group.updated_at,
            "serviceLinks": self._service_links(group),
        }
        if group.environment_id is not None:
            meta["environmentId"] = group.environment_id
        return meta

    def _env_group_json(self, group: EnvGroup) -> JSONObject:
        return {
            **self._env_group_meta(group),
            "envVars": [{"key": k, "value": v} for k, v in group.env_vars.newest_first()],
            "secretFiles": [
                {"name": n, "content": c} for n, c in group.secret_files.newest_first()
            ],
        }

    def _service_links(self, group: EnvGroup) -> list[JSONObject]:
        links = []
        for service_id in group.service_ids:
            service = self.state.services.get(service_id)
            if service is not None:
                links.append(
                    {"id": service.id, "name": service.name, "type": SERVICE_TYPES[service.type]}
                )
        return links


def _not_found(identifier: str) -> ApiError:
    return ApiError(404, f"not found: {identifier}")


async def _json_object(request: Request) -> JSONObject:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _required_text(body: JSONObject, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{name} must be a non-empty string")
    return value


def _parse_secret_files(body: Any) -> list[tuple[str, str]]:
    if body is None:
        return []
    if not isinstance(body, list):
        raise ApiError(400, "secretFiles must be a JSON array")

    files: list[tuple[str, str]] = []
    for item in body:
        if not isinstance(item, dict):
            raise ApiError(400, "each secret file must be an object with name and content")
        name, content = item.get("name"), item.get("content")
        if not isinstance(name, str) or not name or not isinstance(content, str):
            raise ApiError(400, "each secret file needs a name and a string content")
        files.append((name, content))
    return files


def _creation_extras(body: JSONObject) -> JSONObject:
    """Keep the fields of a service creation that the service object echoes."""
    extras: JSONObject = {}
    for field_name in ("autoDeploy", "branch", "rootDir", "repo", "environmentId"):
        if field_name in body:
            extras[field_name] = body[field_name]

    image = body.get("image")
    if isinstance(image, dict) and isinstance(image.get("imagePath"), str):
        extras["imagePath"] = normalized_image(image["imagePath"])

    details = body.get("serviceDetails")
    if isinstance(details, dict):
        kept = ("plan", "region", "runtime", "env", "numInstances", "healthCheckPath", "schedule")
        extras["serviceDetails"] = {k: details[k] for k in kept if k in details}
    return extras


def _merge_details(service: Service, details: Any) -> None:
    if not isinstance(details, dict):
        return
    current = _service_details(service)
    stored: JSONObject = dict(service.extra.get("serviceDetails") or {})
    for name, value in details.items():
        if name in current and not isinstance(value, dict):
            stored[name] = value
    service.extra["serviceDetails"] = stored


def _new_deploy(service: Service) -> JSONObject:
    now = timestamp()
    deploy: JSONObject = {
        "id": render_id("dep"),
        "commit": None,
        "status": "build_in_progress",
        "trigger": "api",
        "createdAt": now,
        "updatedAt": now,
        "finishedAt": None,
    }
    image_path = service.extra.get("imagePath")
    if isinstance(image_path, str):
        # An image-backed service skips the build, as the recorded deploy shows. The digest
        # is made up: the emulator pulls no image.
        deploy["image"] = {"ref": image_path, "sha": f"sha256:{secrets.token_hex(32)}"}
        deploy["status"] = "update_in_progress"
    return deploy


def normalized_image(path: str) -> str:
    """Return an image reference in the full form Render stores, as Docker normalizes it.

    Render returns `docker.io/library/nginx:latest` for a service created with `nginx`
    (recorded traffic). The registry defaults to docker.io, a one-part name to the
    `library/` namespace, and a missing tag or digest to `:latest`.
    """
    first, slash, _ = path.partition("/")
    has_registry = bool(slash) and ("." in first or ":" in first or first == "localhost")
    if not has_registry:
        path = f"docker.io/{path}" if slash else f"docker.io/library/{path}"

    last_part = path.rsplit("/", 1)[-1]
    if ":" not in last_part and "@" not in last_part:
        path = f"{path}:latest"
    return path


def _owner_json(owner: Owner) -> JSONObject:
    body: JSONObject = {
        "id": owner.id,
        "name": owner.name,
        "email": owner.email,
        "type": owner.type,
    }
    if owner.type == "user":
        # Render's spec: the field is present only when the owner is a user.
        body["twoFactorAuthEnabled"] = False
    return {**body, **owner.extra}


def _service_json(service: Service) -> JSONObject:
    slug = service.extra.get("slug") or re.sub(r"[^a-z0-9-]+", "-", service.name.lower())
    short_type = SERVICE_TYPES[service.type]
    body: JSONObject = {
        "autoDeploy": "yes",
        "branch": "main",
        "createdAt": service.created_at,
        "dashboardUrl": f"https://dashboard.render.com/{short_type}/{service.id}",
        "id": service.id,
        "name": service.name,
        "notifyOnFail": "default",
        "ownerId": service.owner_id,
        "rootDir": "",
        "slug": slug,
        "suspended": "not_suspended",
        "suspenders": [],
        "type": service.type,
        "updatedAt": service.updated_at,
    }
    if isinstance(service.extra.get("imagePath"), str):
        # A service deployed from an image has no repository, so Render sends no branch.
        del body["branch"]
    body.update({k: v for k, v in service.extra.items() if k != "serviceDetails"})
    body["serviceDetails"] = _service_details(service)
    return body


def _service_details(service: Service) -> JSONObject:
    """Build serviceDetails with the fields Render's schema requires for the service type."""
    overrides: JSONObject = dict(service.extra.get("serviceDetails") or {})
    is_image = isinstance(service.extra.get("imagePath"), str)
    runtime = overrides.get("runtime") or ("image" if is_image else "node")
    slug = re.sub(r"[^a-z0-9-]+", "-", service.name.lower())
    details: JSONObject = {
        "buildPlan": "starter",
        "env": runtime,
        "envSpecificDetails": _env_specific_details(runtime),
        "plan": "starter",
        "region": "oregon",
        "runtime": runtime,
    }
    if service.type == "static_site":
        details = {
            "buildCommand": "npm run build",
            "buildPlan": "starter",
            "publishPath": "public",
            "pullRequestPreviewsEnabled": "no",
            "previews": {"generation": "off"},
            "url": f"https://{slug}.onrender.com",
        }
    elif service.type in ("web_service", "private_service"):
        details.update(
            numInstances=1,
            openPorts=[{"port": 10000, "protocol": "TCP"}],
            sshAddress=f"{service.id}@ssh.oregon.render.com",
            url=f"https://{slug}.onrender.com",
        )
        if service.type == "web_service":
            details.update(
                healthCheckPath="",
                maintenanceMode={"enabled": False, "uri": ""},
                previews={"generation": "off"},
                pullRequestPreviewsEnabled="no",
            )
    elif service.type == "background_worker":
        details.update(numInstances=1, sshAddress=f"{service.id}@ssh.oregon.render.com")
    else:
        details.update(schedule="0 * * * *")
    details.update(overrides)
    return details


def _env_specific_details(runtime: str) -> JSONObject:
    if runtime in ("image", "docker"):
        return {"dockerCommand": "", "dockerContext": "", "dockerfilePath": ""}
    return {"buildCommand": "npm install", "startCommand": "npm start"}


def _service_filter(request: Request) -> Callable[[Service], bool]:
    """Build the predicate for `GET /v1/services` from its query filters."""
    wanted = {
        name: set(query_values(request, name))
        for name in ("name", "type", "environmentId", "env", "region", "suspended", "ownerId")
    }
    bounds = _time_bounds(request)

    def keep(service: Service) -> bool:
        details = _service_details(service)
        actual = {
            "name": service.name,
            "type": service.type,
            "environmentId": service.extra.get("environmentId"),
            "env": details.get("runtime"),
            "region": details.get("region"),
            "suspended": service.extra.get("suspended", "not_suspended"),
            "ownerId": service.owner_id,
        }
        if any(values and actual[name] not in values for name, values in wanted.items()):
            return False
        return _within(bounds, service.created_at, service.updated_at)

    return keep


def _env_group_filter(request: Request) -> Callable[[EnvGroup], bool]:
    names = set(query_values(request, "name"))
    owners = set(query_values(request, "ownerId"))
    environments = set(query_values(request, "environmentId"))
    bounds = _time_bounds(request)

    def keep(group: EnvGroup) -> bool:
        if names and group.name not in names:
            return False
        if owners and group.owner_id not in owners:
            return False
        if environments and group.environment_id not in environments:
            return False
        return _within(bounds, group.created_at, group.updated_at)

    return keep


def _time_bounds(request: Request) -> dict[str, float]:
    bounds: dict[str, float] = {}
    for name in ("createdBefore", "createdAfter", "updatedBefore", "updatedAfter"):
        raw = request.query_params.get(name)
        if not raw:
            continue
        try:
            bounds[name] = parse_timestamp(raw)
        except ValueError:
            raise ApiError(400, f"{name} must be an RFC 3339 time") from None
    return bounds


def _within(bounds: dict[str, float], created_at: str, updated_at: str) -> bool:
    if not bounds:
        return True
    created, updated = parse_timestamp(created_at), parse_timestamp(updated_at)
    limits = {
        "createdBefore": created < bounds.get("createdBefore", float("inf")),
        "createdAfter": created > bounds.get("createdAfter", float("-inf")),
        "updatedBefore": updated < bounds.get("updatedBefore", float("inf")),
        "updatedAfter": updated > bounds.get("updatedAfter", float("-inf")),
    }
    return all(limits.values())
