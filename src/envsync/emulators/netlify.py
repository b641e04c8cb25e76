"""An emulator of Netlify's REST API (`/api/v1`): accounts, sites and environment variables.

It serves the environment-variable API (account-level paths with an optional `site_id`,
the per-site list, per-value delete), accounts, sites, team sites, site get and patch, and
build triggers, plus what netlify-cli 27 reads first: `GET /sites/{id}?feature_flags=cli`
and `GET /accounts?minimal=true`.

Behaviour taken from Netlify's OpenAPI specs (netlify/open-api swagger.yml and the
controller-generated spec of netlify/terraform-provider-netlify), netlify-cli's source and
Netlify's docs:

- Auth: `Authorization: Bearer <token>`; otherwise 401. Errors are `{"code", "message"}`;
  an unknown route is a plain-text 404 `Not Found`, as from Netlify's router.
- 204 responses have no body and no content type: netlify's JS client rejects an empty body
  that claims to be JSON.
- Limits: 500 requests a minute per token, reported in `X-RateLimit-Limit`,
  `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix epoch seconds); then 429.
- `{account_id}` in env paths is an account id or slug. Without `site_id` the env calls act
  on the account's team-level variables; with it, only on that site's, with no merging.
- `POST .../env` creates a batch all-or-nothing. Netlify's docs leave this open, but a
  rejected reserved key is known to stop the whole batch. It returns 409 when a key
  exists and 422 for a key that is reserved (compared upper-cased, netlify-cli's list) or
  that is not `^[a-zA-Z][a-zA-Z0-9_]*$` of at most 255 characters. Other invalid input
  gets 400.
- `PUT` replaces all values, scopes and `is_secret` (a missing `is_secret` keeps the flag);
  `key` in the query or body renames. `PATCH` sets, or creates, one context's value, and
  returns 404 for a missing key. `DELETE .../value/{id}` removes one value; a variable
  whose last value is removed stays, with no values (undocumented).
- Secrets: values are write-only except in the `dev` context; the flag cannot be removed;
  `post_processing` is not allowed; values need explicit contexts, not `all`.
- Responses spell the scope `post_processing`; `post-processing` is accepted on input. A
  variable without explicit scopes has all four (a secret has all but post_processing).
- `updated_at` changes on every change of a variable; `updated_by` is a fixed user.
- The site's `build_settings.env` is read-only and shows the plain variables, team and
  site merged, that have an `all` value and every scope. Sites have `use_envelope: true`.

Choices where Netlify's behaviour is undocumented or plan-dependent, switchable through
`POST /_emulator/config`:

- `mixed_all_context`: "reject" (default) returns
  `400 {"code":400,"message":"invalid request: non-compatible context"}` when `all` and
  specific contexts would meet on one key; "accept" stores the mix.
- `patch_status`: 200 (default, the controller-generated spec) or 201 (swagger.yml).
- `free_plan`: true rejects explicit `scopes` with
  `403 {"code":403,"message":"Upgrade your Netlify account to set specific scopes"}`
  and leaves `scopes` out of responses, as on free plans; false (default) allows them.
- `secrets`: "allowed" (default) or "forbidden", which rejects a secret write with 403.
- `secret_value`: how a response shows a hidden secret value: "absent" (default, no `value`
  field) or "empty" (`"value": ""`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from envsync.emulators.common import ApiError, Emulator, JSONObject, note_keys, read_json
from envsync.emulators.ids import netlify_hex_id, new_uuid
from envsync.emulators.netlify_state import (
    CONTEXTS,
    EMULATOR_USER,
    SCOPES,
    SECRET_SCOPES,
    Account,
    EnvVar,
    NetlifyState,
    Site,
    Value,
    dump_netlify_state,
    load_netlify_seed,
    netlify_time,
)
from envsync.emulators.ratelimit import Bucket, RateDecision
from envsync.emulators.seed import default_part

logger = logging.getLogger(__name__)

# netlify-cli's key rule (src/utils/env/deploy-env-vars.ts) and its reserved names, which
# Netlify sets itself at build or run time.
KEY_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
MAX_KEY_LENGTH = 255
RESERVED_KEYS = frozenset(
    {
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "NETLIFY",
        "BUILD_ID",
        "CONTEXT",
        "REPOSITORY_URL",
        "BRANCH",
        "HEAD",
        "COMMIT_REF",
        "CACHED_COMMIT_REF",
        "PULL_REQUEST",
        "REVIEW_ID",
        "URL",
        "DEPLOY_URL",
        "DEPLOY_PRIME_URL",
        "DEPLOY_ID",
        "SITE_NAME",
        "SITE_ID",
        "NETLIFY_IMAGES_CDN_DOMAIN",
        "INCOMING_HOOK_TITLE",
        "INCOMING_HOOK_URL",
        "INCOMING_HOOK_BODY",
    }
)

_ALL_REQUESTS = Bucket("all", 500, 60)
MAX_PER_PAGE = 100
_NON_COMPATIBLE = "invalid request: non-compatible context"
_SCOPES_FORBIDDEN = "Upgrade your Netlify account to set specific scopes"


class NetlifyEmulator(Emulator):
    """Netlify's API under `/api/v1`; see the module docstring for behaviour and switches."""

    api: ClassVar[str] = "netlify"
    media_type: ClassVar[str] = "application/json; charset=utf-8"
    config_choices: ClassVar[dict[str, tuple[Any, ...]]] = {
        "mixed_all_context": ("reject", "accept"),
        "patch_status": (200, 201),
        "free_plan": (False, True),
        "secrets": ("allowed", "forbidden"),
        "secret_value": ("absent", "empty"),
    }
    config_defaults: ClassVar[dict[str, Any]] = {
        "mixed_all_context": "reject",
        "patch_status": 200,
        "free_plan": False,
        "secrets": "allowed",
        "secret_value": "absent",
    }

    state: NetlifyState

    @classmethod
    def default_seed(cls) -> JSONObject:
        return default_part("netlify")

    def load_seed(self, document: Any) -> None:
        self.state = load_netlify_seed(document)
        self.tokens = frozenset(self.state.tokens)

    def dump_state(self) -> JSONObject:
        return dump_netlify_state(self.state)

    def error_body(self, status: int, message: str) -> Any:
        return {"code": status, "message": message}

    def auth_failure(self, path: str) -> Response:
        return self.error_response(401, "Access Denied")

    def not_found_route(self, path: str) -> Response:
        return PlainTextResponse("Not Found", status_code=404)

    def rate_bucket(self, method: str, path: str) -> Bucket | None:
        return _ALL_REQUESTS

    def rate_headers(self, decision: RateDecision) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Reset": str(decision.reset_at),
        }

    def rate_limited(self, decision: RateDecision) -> Response:
        return self.error_response(429, "API Request rate limit surpassed for application")

    def api_routes(self) -> list[BaseRoute]:
        return [
            Route("/api/v1/accounts", self.list_accounts, methods=["GET"]),
            Route("/api/v1/accounts/{account_id}", self.get_account, methods=["GET"]),
            Route("/api/v1/accounts/{account_id}/env", self.list_env, methods=["GET"]),
            Route("/api/v1/accounts/{account_id}/env", self.create_env, methods=["POST"]),
            Route("/api/v1/accounts/{account_id}/env/{key}", self.get_env, methods=["GET"]),
            Route("/api/v1/accounts/{account_id}/env/{key}", self.replace_env, methods=["PUT"]),
            Route("/api/v1/accounts/{account_id}/env/{key}", self.set_env_value, methods=["PATCH"]),
            Route("/api/v1/accounts/{account_id}/env/{key}", self.delete_env, methods=["DELETE"]),
            Route(
                "/api/v1/accounts/{account_id}/env/{key}/value/{value_id}",
                self.delete_env_value,
                methods=["DELETE"],
            ),
            Route("/api/v1/sites", self.list_sites, methods=["GET"]),
            Route("/api/v1/sites/{site_id}", self.get_site, methods=["GET"]),
            Route("/api/v1/sites/{site_id}", self.update_site, methods=["PATCH"]),
            Route("/api/v1/sites/{site_id}/env", self.list_site_env, methods=["GET"]),
            Route("/api/v1/sites/{site_id}/builds", self.create_build, methods=["POST"]),
            Route("/api/v1/sites/{site_id}/builds", self.list_builds, methods=["GET"]),
            Route("/api/v1/{account_slug}/sites", self.list_team_sites, methods=["GET"]),
        ]

    # Accounts and sites.

    async def list_accounts(self, request: Request) -> Response:
        # `minimal=true` (netlify-cli) gets the same objects: they are already small.
        return self.json_response([self._account_json(a) for a in self.state.accounts.values()])

    async def get_account(self, request: Request) -> Response:
        return self.json_response(self._account_json(self._account(request)))

    async def list_sites(self, request: Request) -> Response:
        return self._site_page(request, list(self.state.sites.values()))

    async def list_team_sites(self, request: Request) -> Response:
        account = self.state.account(request.path_params["account_slug"])
        if account is None:
            raise ApiError(404, "Not Found")
        sites = [site for site in self.state.sites.values() if site.account_id == account.id]
        return self._site_page(request, sites)

    async def get_site(self, request: Request) -> Response:
        return self.json_response(self._site_json(self._site(request.path_params["site_id"])))

    async def update_site(self, request: Request) -> Response:
        site = self._site(request.path_params["site_id"])
        body = await _json_object(request)
        if "name" in body:
            name = body["name"]
            if not isinstance(name, str) or not name:
                raise ApiError(422, "name must be a non-empty string")
            site.name = name

        # build_settings.env is read-only since environment variables moved to their own API.
        protected = {"id", "name", "account_id", "account_slug", "account_name", "build_settings"}
        site.extra.update({k: v for k, v in body.items() if k not in protected})
        settings = body.get("build_settings")
        if isinstance(settings, dict):
            stored = dict(site.extra.get("build_settings") or {})
            stored.update({k: v for k, v in settings.items() if k != "env"})
            site.extra["build_settings"] = stored
        site.updated_at = netlify_time()
        return self.json_response(self._site_json(site))

    async def create_build(self, request: Request) -> Response:
        site = self._site(request.path_params["site_id"])
        body = await read_json(request)
        if body is not None and not isinstance(body, dict):
            raise ApiError(400, "invalid request: the body must be a JSON object")
        build = {
            "id": netlify_hex_id(),
            "deploy_id": netlify_hex_id(),
            "sha": "",
            "done": False,
            "error": "",
            "created_at": netlify_time(),
            "deploy_state": "enqueued",
        }
        site.builds.append(build)
        return self.json_response(build)

    async def list_builds(self, request: Request) -> Response:
        site = self._site(request.path_params["site_id"])
        return self.json_response(list(reversed(site.builds)))

    # Environment variables.

    async def list_env(self, request: Request) -> Response:
        variables = self._variables(request, self._account(request))
        return self.json_response(self._filtered_env(request, variables.values()))

    async def list_site_env(self, request: Request) -> Response:
        site = self._site(request.path_params["site_id"])
        return self.json_response(self._filtered_env(request, site.env.values()))

    async def get_env(self, request: Request) -> Response:
        variables = self._variables(request, self._account(request))
        return self.json_response(self._env_json(_existing(variables, request)))

    async def create_env(self, request: Request) -> Response:
        variables = self._variables(request, self._account(request))
        body = await read_json(request)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise ApiError(400, "invalid request: the body must be a JSON array of variables")

        # Every item is checked before anything is stored: the batch is all-or-nothing.
        created = [self._new_env_var(item) for item in body]
        keys = [var.key for var in created]
        seen: set[str] = set()
        for key in keys:
            if key in variables or key in seen:
                raise ApiError(409, f"Environment variable {key} already exists")
            seen.add(key)

        for var in created:
            variables[var.key] = var
        note_keys(request, keys)
        return self.json_response([self._env_json(var) for var in created], status=201)

    async def replace_env(self, request: Request) -> Response:
        variables = self._variables(request, self._account(request))
        var = _existing(variables, request)
        body = await _json_object(request)

        is_secret = self._secret_flag(body.get("is_secret"), current=var.is_secret)
        new_key = request.query_params.get("key") or body.get("key") or var.key
        if not isinstance(new_key, str):
            raise ApiError(400, "invalid request: key must be a string")
        if new_key != var.key:
            _check_key(new_key)
            if new_key in variables:
                raise ApiError(409, f"Environment variable {new_key} already exists")

        if "values" not in body:
            raise ApiError(400, "invalid request: values are required")
        values = self._parse_values(body["values"], is_secret)
        scopes = self._parse_scopes(body, is_secret, current=var.scopes)

        del variables[var.key]
        replaced = EnvVar(
            key=new_key,
            scopes=scopes,
            values=values,
            is_secret=is_secret,
            updated_at=netlify_time(),
            updated_by=dict(EMULATOR_USER),
        )
        variables[new_key] = replaced
        note_keys(request, dict.fromkeys([var.key, new_key]))
        return self.json_response(self._env_json(replaced))

    async def set_env_value(self, request: Request) -> Response:
        variables = self._variables(request, self._account(request))
        var = _existing(variables, request)
        body = await _json_object(request)

        is_secret = self._secret_flag(body.get("is_secret"), current=var.is_secret)
        incoming = self._parse_values([_value_fields(body)], is_secret)[0]
        target = (incoming.context, incoming.context_parameter)
        existing = next((v for v in var.values if (v.context, v.context_parameter) == target), None)
        others = [v for v in var.values if v is not existing]
        self._check_mix([*others, incoming])

        if existing is not None:
            existing.value = incoming.value
        else:
            var.values.append(incoming)
        if is_secret and not var.is_secret:
            var.is_secret = True
            var.scopes = [scope for scope in var.scopes if scope in SECRET_SCOPES]
        var.updated_at = netlify_time()
        note_keys(request, [var.key])
        return self.json_response(self._env_json(var), status=self.config["patch_status"])

    async def delete_env(self, request: Request) -> Response:
        variables = self._variables(request, self._account(request))
        var = _existing(variables, request)
        del variables[var.key]
        note_keys(request, [var.key])
        return self.no_content()

    async def delete_env_value(self, request: Request) -> Response:
        variables = self._variables(request, self._account(request))
        var = _existing(variables, request)
        value_id = request.path_params["value_id"]
        remaining = [value for value in var.values if value.id != value_id]
        if len(remaining) == len(var.values):
            raise ApiError(404, "Not Found")

        var.values = remaining
        var.updated_at = netlify_time()
        note_keys(request, [var.key])
        return self.no_content()

    # Parsing.

    def _new_env_var(self, item: JSONObject) -> EnvVar:
        key = item.get("key")
        if not isinstance(key, str):
            raise ApiError(400, "invalid request: every variable needs a key")
        _check_key(key)
        is_secret = self._secret_flag(item.get("is_secret"), current=False)
        values = self._parse_values(item.get("values", []), is_secret)
        scopes = self._parse_scopes(item, is_secret, current=None)
        return EnvVar(
            key=key,
            scopes=scopes,
            values=values,
            is_secret=is_secret,
            updated_at=netlify_time(),
            updated_by=dict(EMULATOR_USER),
        )

    def _secret_flag(self, raw: Any, *, current: bool) -> bool:
        if raw is None:
            return current
        if not isinstance(raw, bool):
            raise ApiError(400, "invalid request: is_secret must be true or false")
        if current and not raw:
            raise ApiError(400, "invalid request: a secret variable cannot be made plain again")
        if raw and not current and self.config["secrets"] == "forbidden":
            raise ApiError(403, "Upgrade your Netlify account to use secret environment variables")
        return raw

    def _parse_scopes(
        self, body: JSONObject, is_secret: bool, *, current: list[str] | None
    ) -> list[str]:
        if "scopes" not in body or body["scopes"] is None:
            if current is not None:
                return [s for s in current if s in SECRET_SCOPES] if is_secret else list(current)
            return list(SECRET_SCOPES if is_secret else SCOPES)

        if self.config["free_plan"]:
            raise ApiError(403, _SCOPES_FORBIDDEN)
        raw = body["scopes"]
        if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
            raise ApiError(400, "invalid request: scopes must be a non-empty list")

        scopes = list(dict.fromkeys(scope.replace("-", "_") for scope in raw))
        unknown = [scope for scope in scopes if scope not in SCOPES]
        if unknown:
            raise ApiError(400, f"invalid request: unknown scope {unknown[0]}")
        if is_secret and "post_processing" in scopes:
            raise ApiError(
                400, "invalid request: secret variables cannot have the post_processing scope"
            )
        return [scope for scope in SCOPES if scope in scopes]

    def _parse_values(self, raw: Any, is_secret: bool) -> list[Value]:
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            raise ApiError(400, "invalid request: values must be a list of objects")

        values = [_parse_value(item, is_secret) for item in raw]
        contexts = [(value.context, value.context_parameter) for value in values]
        if len(set(contexts)) != len(contexts):
            raise ApiError(400, "invalid request: a context appears twice in values")
        self._check_mix(values)
        return values

    def _check_mix(self, values: list[Value]) -> None:
        contexts = {value.context for value in values}
        if "all" in contexts and len(contexts) > 1 and self.config["mixed_all_context"] == "reject":
            raise ApiError(400, _NON_COMPATIBLE)

    # Lookups.

    def _account(self, request: Request) -> Account:
        account = self.state.account(request.path_params["account_id"])
        if account is None:
            raise ApiError(404, "Not Found")
        return account

    def _site(self, site_id: str) -> Site:
        site = self.state.sites.get(site_id)
        if site is None:
            raise ApiError(404, "Not Found")
        return site

    def _variables(self, request: Request, account: Account) -> dict[str, EnvVar]:
        """Return the site's variables when `site_id` is given, else the team's."""
        site_id = request.query_params.get("site_id")
        if not site_id:
            return account.env
        site = self._site(site_id)
        if site.account_id != account.id:
            raise ApiError(404, "Not Found")
        return site.env

    # Responses.

    def _filtered_env(self, request: Request, variables: Iterable[EnvVar]) -> list[JSONObject]:
        # netlify/build sends `context_name`, the server spec names it `context`.
        context = request.query_params.get("context_name") or request.query_params.get("context")
        scope = (request.query_params.get("scope") or "").replace("-", "_")
        listed = []
        for var in variables:
            if context and not any(v.context in (context, "all") for v in var.values):
                continue
            if scope and scope not in var.scopes:
                continue
            listed.append(self._env_json(var))
        return listed

    def _env_json(self, var: EnvVar) -> JSONObject:
        values = []
        for value in var.values:
            shown: JSONObject = {"id": value.id, "context": value.context}
            if value.context_parameter is not None:
                shown["context_parameter"] = value.context_parameter
            if not var.is_secret or value.context == "dev":
                shown["value"] = value.value
            elif self.config["secret_value"] == "empty":
                shown["value"] = ""
            values.append(shown)

        body: JSONObject = {"key": var.key}
        if not self.config["free_plan"]:
            body["scopes"] = list(var.scopes)
        body.update(
            values=values,
            is_secret=var.is_secret,
            updated_at=var.updated_at,
            updated_by=dict(var.updated_by),
        )
        return body

    def _account_json(self, account: Account) -> JSONObject:
        plan = "Starter" if self.config["free_plan"] else "Pro"
        return {
            "id": account.id,
            "name": account.name,
            "slug": account.slug,
            "type": "team",
            "capabilities": {},
            "billing_name": account.name,
            "billing_email": EMULATOR_USER["email"],
            "created_at": account.created_at,
            "updated_at": account.created_at,
            "member_roles": [],
            "owner_ids": [EMULATOR_USER["id"]],
            "role": "Owner",
            "roles_allowed": ["Owner", "Developer", "Billing Admin", "Reviewer"],
            "type_id": "5e7c0de0c0ffee0000000001",
            "type_name": plan,
            "type_slug": plan.lower(),
            "support_administration_enabled": False,
            "deploy_diagnostics_setting": "enabled",
            "ai_usage_enabled_setting": "enabled",
            "ai_usage_limit_enforced": False,
            "configurable_limits_exceeded": [],
            "block_site_transfers": False,
            "credit_alert_percentage": 80,
            "in_operational_mode": False,
            **account.extra,
        }

    def _site_json(self, site: Site) -> JSONObject:
        account = self.state.accounts[site.account_id]
        domain = f"{site.name}.netlify.app"
        settings: JSONObject = {
            "cmd": "",
            "dir": "",
            "provider": "",
            "repo_url": "",
            "repo_branch": "main",
            "stop_builds": False,
            **dict(site.extra.get("build_settings") or {}),
            "env": self._build_settings_env(site, account),
        }
        body: JSONObject = {
            "id": site.id,
            "site_id": site.id,
            "plan": "nf_team_dev" if self.config["free_plan"] else "nf_team_pro",
            "name": site.name,
            "default_domain": domain,
            "custom_domain": "",
            "branch_deploy_custom_domain": "",
            "deploy_preview_custom_domain": "",
            "domain_aliases": [],
            "sso_login": False,
            "sso_login_context": "all",
            "notification_email": "",
            "url": f"https://{domain}",
            "admin_url": f"https://app.netlify.com/projects/{site.name}",
            "deploy_url": f"https://main--{domain}",
            "state": "current",
            "screenshot_url": "",
            "created_at": site.created_at,
            "updated_at": site.updated_at,
            "ssl_url": f"https://{domain}",
            "force_ssl": True,
            "processing_settings": {"html": {"pretty_urls": True}, "ignore_html_forms": False},
            "deploy_hook": "",
            "managed_dns": True,
            "account_id": account.id,
            "account_slug": account.slug,
            "account_name": account.name,
            "capabilities": {},
            "id_domain": f"{site.id}.netlify.app",
            "build_image": "noble",
            "build_timelimit": 900,
            "deploy_retention_in_days": 90,
            "labels": [],
            "functions_region": "us-east-2",
            # netlify-cli reads build_settings.env instead of the env API without this flag.
            "use_envelope": True,
        }
        body.update({k: v for k, v in site.extra.items() if k != "build_settings"})
        body["build_settings"] = settings
        return body

    def _build_settings_env(self, site: Site, account: Account) -> dict[str, str]:
        """Plain variables with an `all` value and every scope, site over team."""
        merged: dict[str, str] = {}
        for var in [*account.env.values(), *site.env.values()]:
            everywhere = next((v for v in var.values if v.context == "all"), None)
            if everywhere is None or var.is_secret or set(var.scopes) != set(SCOPES):
                merged.pop(var.key, None)
                continue
            merged[var.key] = everywhere.value
        return merged

    def _site_page(self, request: Request, sites: list[Site]) -> Response:
        name = (request.query_params.get("name") or "").lower()
        if name:
            sites = [site for site in sites if name in site.name.lower()]
        page = _positive_int(request.query_params.get("page"), 1, "page")
        per_page = min(
            _positive_int(request.query_params.get("per_page"), MAX_PER_PAGE, "per_page"),
            MAX_PER_PAGE,
        )

        last_page = max(1, math.ceil(len(sites) / per_page))
        chosen = sites[(page - 1) * per_page : page * per_page]
        links = []
        if page < last_page:
            links.append(_link(request, page + 1, per_page, "next"))
        links.append(_link(request, last_page, per_page, "last"))
        return self.json_response(
            [self._site_json(site) for site in chosen], headers={"Link": ", ".join(links)}
        )


def _link(request: Request, page: int, per_page: int, relation: str) -> str:
    url = request.url.include_query_params(page=page, per_page=per_page)
    return f'<{url}>; rel="{relation}"'


def _check_key(key: str) -> None:
    if not KEY_PATTERN.match(key) or len(key) > MAX_KEY_LENGTH:
        raise ApiError(
            422,
            f"Invalid key {key[:64]!r}: keys start with a letter and contain only letters, "
            f"digits and underscores, at most {MAX_KEY_LENGTH} characters",
        )
    if key.upper() in RESERVED_KEYS:
        raise ApiError(422, f"{key} is a reserved environment variable key and cannot be set")


def _parse_value(item: JSONObject, is_secret: bool) -> Value:
    context = item.get("context")
    if context not in CONTEXTS:
        raise ApiError(400, f"invalid request: context must be one of {', '.join(CONTEXTS)}")
    value = item.get("value")
    if not isinstance(value, str):
        raise ApiError(400, "invalid request: every value must be a string")

    parameter = item.get("context_parameter")
    if context == "branch":
        if not isinstance(parameter, str) or not parameter:
            raise ApiError(400, "invalid request: a branch value needs context_parameter")
        if parameter in CONTEXTS:
            raise ApiError(400, f"invalid request: {parameter} is a context name, not a branch")
    if is_secret and context == "all":
        raise ApiError(400, "invalid request: secret values need explicit contexts, not all")
    return Value(
        id=new_uuid(),
        context=context,
        value=value,
        context_parameter=parameter if context == "branch" else None,
    )


def _value_fields(body: JSONObject) -> JSONObject:
    return {name: body.get(name) for name in ("context", "context_parameter", "value")}


def _existing(variables: dict[str, EnvVar], request: Request) -> EnvVar:
    var = variables.get(request.path_params["key"])
    if var is None:
        raise ApiError(404, "Not Found")
    return var


async def _json_object(request: Request) -> JSONObject:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid request: the body must be a JSON object")
    return body


def _positive_int(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        number = int(raw)
    except ValueError:
        raise ApiError(400, f"invalid request: {name} must be a positive integer") from None
    if number < 1:
        raise ApiError(400, f"invalid request: {name} must be a positive integer")
    return number
