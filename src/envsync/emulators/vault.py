"""An emulator of HashiCorp Vault's KV version 2 secrets engine, plus a bridge-style vault.

Under `/v1/{mount}/` it serves:

- `data/{path}`: read (optionally `?version=`), write with POST or PUT and an optional
  `options.cas`, JSON merge PATCH, and DELETE, a soft delete of the current version.
- `metadata/{path}`: read, list (the LIST method or `GET ?list=true`), write, and DELETE,
  which removes every version.
- `delete/`, `undelete/` and `destroy/{path}` for the versions given, and `config`.

It also serves `GET /v1/sys/health` and `GET /v1/auth/token/lookup-self`, which hvac's
`is_authenticated()` calls.

Behaviour follows Vault's KV v2 API docs and what hvac 2.x reads:

- Auth: `X-Vault-Token` (or `Authorization: Bearer`); an unknown or missing token gets
  `403 {"errors": ["permission denied"]}`. `X-Vault-Namespace` selects a namespace, each
  with its own secrets; see `envsync.emulators.vault_state` for how namespaces are seeded.
- Responses are `Content-Type: application/json` exactly (hvac parses error bodies only
  then) and use Vault's envelope: `request_id`, `lease_id`, `renewable`,
  `lease_duration`, `data`, `wrap_info`, `warnings`, `auth`, `mount_type`.
- A missing path returns `404 {"errors": []}`. Reading a current version that is deleted
  or destroyed returns 404 with the envelope and `data: {"data": null, "metadata": {...}}`,
  as Vault does; hvac's `raise_on_deleted_version=False` returns that body when
  `deletion_time` is set.
- A check-and-set mismatch returns 400. Versions beyond `max_versions` (default 10) are
  dropped, oldest first. Values may be any JSON.
- The lookup-self response leaves out the token itself, so that no response carries a token.

The bridge-style vault reads one KV secret of the root namespace, `secret/envsync` unless
the `bridge_secret` switch (`POST /_emulator/config`) names another `mount/path`:
`GET /bridge/vault/secret?key=NAME` returns `{"key": NAME, "value": "..."}` (404 when
absent) and `GET /bridge/vault/secrets` a JSON object of strings. Values that are not
strings are sent as compact JSON text. Both need `Authorization: Bearer <vault token>`
and return 401 `{"error": "unauthorized"}` without it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from envsync.emulators.common import (
    ApiError,
    Emulator,
    JSONObject,
    bearer_token,
    header_value,
    note_keys,
    read_json,
)
from envsync.emulators.ids import new_uuid
from envsync.emulators.seed import default_part
from envsync.emulators.vault_state import (
    ROOT_NAMESPACE,
    Secret,
    VaultState,
    dump_vault_state,
    load_vault_seed,
    new_secret,
    vault_time,
)

logger = logging.getLogger(__name__)

_PATH = "{path:path}"


class VaultEmulator(Emulator):
    """Vault KV v2 under `/v1` and a bridge-style vault under `/bridge/vault`."""

    api: ClassVar[str] = "vault"
    media_type: ClassVar[str] = "application/json"
    config_choices: ClassVar[dict[str, tuple[Any, ...]]] = {"bridge_secret": (str,)}
    config_defaults: ClassVar[dict[str, Any]] = {"bridge_secret": "secret/envsync"}

    state: VaultState

    @classmethod
    def default_seed(cls) -> JSONObject:
        return default_part("vault")

    def load_seed(self, document: Any) -> None:
        self.state = load_vault_seed(document)
        self.tokens = frozenset(self.state.tokens)

    def dump_state(self) -> JSONObject:
        return dump_vault_state(self.state)

    def error_body(self, status: int, message: str) -> Any:
        return {"errors": [message] if message else []}

    def token_of(self, scope: Scope) -> str | None:
        token = bearer_token(scope)
        if not scope["path"].startswith("/bridge/"):
            token = header_value(scope, b"x-vault-token") or token
        return token if token in self.tokens else None

    def needs_token(self, path: str) -> bool:
        return path != "/v1/sys/health"

    def auth_failure(self, path: str) -> Response:
        if path.startswith("/bridge/"):
            return self.json_response({"error": "unauthorized"}, 401)
        return self.error_response(403, "permission denied")

    def not_found_route(self, path: str) -> Response:
        route = path.removeprefix("/v1/")
        return self.error_response(404, f'no handler for route "{route}". route entry not found.')

    def api_routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/sys/health", self.health, methods=["GET"]),
            Route("/v1/auth/token/lookup-self", self.lookup_self, methods=["GET"]),
            Route("/v1/{mount}/config", self.read_config, methods=["GET"]),
            Route(f"/v1/{{mount}}/data/{_PATH}", self.read_data, methods=["GET"]),
            Route(f"/v1/{{mount}}/data/{_PATH}", self.write_data, methods=["POST", "PUT"]),
            Route(f"/v1/{{mount}}/data/{_PATH}", self.patch_data, methods=["PATCH"]),
            Route(f"/v1/{{mount}}/data/{_PATH}", self.delete_latest, methods=["DELETE"]),
            Route("/v1/{mount}/metadata", self.read_metadata, methods=["GET", "LIST"]),
            Route(f"/v1/{{mount}}/metadata/{_PATH}", self.read_metadata, methods=["GET", "LIST"]),
            Route(f"/v1/{{mount}}/metadata/{_PATH}", self.write_metadata, methods=["POST", "PUT"]),
            Route(f"/v1/{{mount}}/metadata/{_PATH}", self.delete_metadata, methods=["DELETE"]),
            Route(f"/v1/{{mount}}/delete/{_PATH}", self.delete_versions, methods=["POST", "PUT"]),
            Route(f"/v1/{{mount}}/undelete/{_PATH}", self.undelete, methods=["POST", "PUT"]),
            Route(f"/v1/{{mount}}/destroy/{_PATH}", self.destroy, methods=["POST", "PUT"]),
            Route("/bridge/vault/secret", self.bridge_secret, methods=["GET"]),
            Route("/bridge/vault/secrets", self.bridge_secrets, methods=["GET"]),
        ]

    # System paths.

    async def health(self, request: Request) -> Response:
        return self.json_response(
            {
                "initialized": True,
                "sealed": False,
                "standby": False,
                "performance_standby": False,
                "server_time_utc": int(time.time()),
                "version": "1.17.0",
                "cluster_name": "envsync-emulator",
            }
        )

    async def lookup_self(self, request: Request) -> Response:
        namespace = _namespace(request)
        return self._envelope(
            {
                "accessor": "emulator-accessor",
                "display_name": "token",
                "policies": ["root"],
                "renewable": False,
                "ttl": 0,
                "type": "service",
                "namespace_path": f"{namespace}/" if namespace else "",
            }
        )

    async def read_config(self, request: Request) -> Response:
        self._mount(request)
        return self._envelope(
            {"cas_required": False, "delete_version_after": "0s", "max_versions": 0}
        )

    # Data.

    async def read_data(self, request: Request) -> Response:
        secret = self._existing(request)
        number = _version_param(request.query_params.get("version")) or secret.current_version
        version = secret.versions.get(number)
        if version is None:
            raise ApiError(404, "")

        metadata = secret.version_metadata(number)
        if not version.readable:
            # Vault returns 404 with the metadata, so that clients can tell "deleted" apart.
            return self._envelope({"data": None, "metadata": metadata}, status=404)
        return self._envelope({"data": version.data, "metadata": metadata})

    async def write_data(self, request: Request) -> Response:
        secrets = self._mount(request)
        path = _secret_path(request)
        body = await _json_object(request)
        data = body.get("data")
        if not isinstance(data, dict):
            raise ApiError(400, "no data provided")

        secret = secrets.get(path)
        self._check_cas(secret, body.get("options"))
        if secret is None:
            secret = new_secret(data)
            secrets[path] = secret
        else:
            secret.write(data)
        note_keys(request, data)
        return self._envelope(secret.version_metadata(secret.current_version))

    async def patch_data(self, request: Request) -> Response:
        secret = self._existing(request)
        body = await _json_object(request)
        patch = body.get("data")
        if not isinstance(patch, dict):
            raise ApiError(400, "no data provided")
        current = secret.versions.get(secret.current_version)
        if current is None or not current.readable or current.data is None:
            raise ApiError(404, "")

        self._check_cas(secret, body.get("options"))
        merged = {**current.data, **patch}
        data = {key: value for key, value in merged.items() if value is not None}
        secret.write(data)
        note_keys(request, patch)
        return self._envelope(secret.version_metadata(secret.current_version))

    async def delete_latest(self, request: Request) -> Response:
        secret = self._mount(request).get(_secret_path(request))
        if secret is not None:
            self._soft_delete(request, secret, [secret.current_version])
        return self.no_content()

    # Versions.

    async def delete_versions(self, request: Request) -> Response:
        secret = self._mount(request).get(_secret_path(request))
        versions = await _versions(request)
        if secret is not None:
            self._soft_delete(request, secret, versions)
        return self.no_content()

    async def undelete(self, request: Request) -> Response:
        secret = self._mount(request).get(_secret_path(request))
        versions = await _versions(request)
        if secret is None:
            return self.no_content()

        for number in versions:
            version = secret.versions.get(number)
            if version is not None and not version.destroyed:
                version.deletion_time = ""
                note_keys(request, version.data or {})
        return self.no_content()

    async def destroy(self, request: Request) -> Response:
        secret = self._mount(request).get(_secret_path(request))
        versions = await _versions(request)
        if secret is None:
            return self.no_content()

        for number in versions:
            version = secret.versions.get(number)
            if version is not None and not version.destroyed:
                note_keys(request, version.data or {})
                version.destroyed = True
                version.data = None
        return self.no_content()

    # Metadata.

    async def read_metadata(self, request: Request) -> Response:
        is_list = request.method == "LIST" or request.query_params.get("list") == "true"
        if is_list:
            return self._list(request)
        return self._envelope(self._existing(request).metadata())

    async def write_metadata(self, request: Request) -> Response:
        secrets = self._mount(request)
        path = _secret_path(request)
        body = await _json_object(request)
        now = vault_time()
        secret = secrets.setdefault(path, Secret(created_time=now, updated_time=now))

        if "max_versions" in body:
            secret.max_versions = _non_negative_int(body["max_versions"], "max_versions")
        if "cas_required" in body:
            secret.cas_required = bool(body["cas_required"])
        if "delete_version_after" in body:
            secret.delete_version_after = str(body["delete_version_after"])
        if "custom_metadata" in body:
            custom = body["custom_metadata"]
            if custom is not None and not isinstance(custom, dict):
                raise ApiError(400, "custom_metadata must be an object of strings")
            secret.custom_metadata = {str(k): str(v) for k, v in (custom or {}).items()} or None
        secret.updated_time = now
        return self.no_content()

    async def delete_metadata(self, request: Request) -> Response:
        removed = self._mount(request).pop(_secret_path(request), None)
        if removed is not None:
            for version in removed.versions.values():
                note_keys(request, version.data or {})
        return self.no_content()

    # The bridge-style vault.

    async def bridge_secret(self, request: Request) -> Response:
        key = request.query_params.get("key")
        if not key:
            raise ApiError(400, "", body={"error": "the key query parameter is required"})
        values = self._bridge_values()
        if key not in values:
            raise ApiError(404, "", body={"error": f"no secret named {key}"})
        return self.json_response({"key": key, "value": values[key]})

    async def bridge_secrets(self, request: Request) -> Response:
        return self.json_response(self._bridge_values())

    def _bridge_values(self) -> dict[str, str]:
        mount, _, path = str(self.config["bridge_secret"]).partition("/")
        secret = self.state.mounts(ROOT_NAMESPACE).get(mount, {}).get(path.strip("/"))
        current = secret.versions.get(secret.current_version) if secret is not None else None
        if current is None or not current.readable or current.data is None:
            raise ApiError(404, "", body={"error": f"secret {mount}/{path} not found"})
        return {key: _as_text(value) for key, value in current.data.items()}

    # Helpers.

    def _envelope(self, data: Any, status: int = 200) -> Response:
        return self.json_response(
            {
                "request_id": new_uuid(),
                "lease_id": "",
                "renewable": False,
                "lease_duration": 0,
                "data": data,
                "wrap_info": None,
                "warnings": None,
                "auth": None,
                "mount_type": "kv",
            },
            status,
        )

    def _mount(self, request: Request) -> dict[str, Secret]:
        mount = request.path_params["mount"]
        secrets = self.state.mounts(_namespace(request)).get(mount)
        if secrets is None:
            route = request.url.path.removeprefix("/v1/")
            raise ApiError(404, f'no handler for route "{route}". route entry not found.')
        return secrets

    def _existing(self, request: Request) -> Secret:
        secret = self._mount(request).get(_secret_path(request))
        if secret is None:
            raise ApiError(404, "")
        return secret

    def _list(self, request: Request) -> Response:
        prefix = _secret_path(request)
        prefix = f"{prefix}/" if prefix else ""
        children: set[str] = set()
        for path in self._mount(request):
            if not path.startswith(prefix):
                continue
            head, slash, _ = path[len(prefix) :].partition("/")
            children.add(head + slash)
        if not children:
            raise ApiError(404, "")
        return self._envelope({"keys": sorted(children)})

    def _check_cas(self, secret: Secret | None, options: Any) -> None:
        cas = options.get("cas") if isinstance(options, dict) else None
        current = secret.current_version if secret is not None else 0
        if cas is None:
            if secret is not None and secret.cas_required:
                raise ApiError(400, "check-and-set parameter required for this call")
            return
        if isinstance(cas, bool) or not isinstance(cas, int) or cas != current:
            raise ApiError(400, "check-and-set parameter did not match the current version")

    def _soft_delete(self, request: Request, secret: Secret, versions: list[int]) -> None:
        now = vault_time()
        for number in versions:
            version = secret.versions.get(number)
            if version is not None and version.readable:
                version.deletion_time = now
                note_keys(request, version.data or {})


def _namespace(request: Request) -> str:
    return (request.headers.get("x-vault-namespace") or ROOT_NAMESPACE).strip("/")


def _secret_path(request: Request) -> str:
    return str(request.path_params.get("path", "")).strip("/")


def _version_param(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    try:
        return _non_negative_int(int(raw), "version")
    except ValueError:
        raise ApiError(400, "invalid version") from None


def _non_negative_int(raw: Any, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ApiError(400, f"{name} must be a non-negative integer")
    return raw


async def _versions(request: Request) -> list[int]:
    body = await _json_object(request)
    versions = body.get("versions")
    if not isinstance(versions, list) or not versions:
        raise ApiError(400, "no version number provided")
    return [_non_negative_int(number, "versions") for number in versions]


async def _json_object(request: Request) -> JSONObject:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
