"""Settings from ENVSYNC_*, RENDER_*, NETLIFY_* and VAULT_* variables, and targets from them
or from an optional envsync.toml.

Settings come from the process environment, then from `.env` in the working directory;
the process environment wins. Every setting keeps the name it has in the environment, so
an error names exactly what the user typed. An invalid value stops envsync before any
provider call, with a message naming the setting, the value (unless it is a credential)
and the accepted values; nothing is silently defaulted.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from envsync.errors import ConfigError
from envsync.filters import KeyFilter

logger = logging.getLogger(__name__)

RENDER_DEFAULT_URL = "https://api.render.com/v1"
NETLIFY_DEFAULT_URL = "https://api.netlify.com/api/v1"
NETLIFY_ALL_SCOPES = ("builds", "functions", "runtime", "post_processing")
NETLIFY_PLAIN_CONTEXTS = ("all", "production", "deploy-preview", "branch-deploy", "dev")
PROVIDER_NAMES = ("render", "netlify")

# The variable that contains the ownership ledger on a target; it is never part of a sync.
OWNERSHIP_KEY = "ENVSYNC_OWNERSHIP"


def _split_list(value: Any) -> Any:
    """Turn "a, b,,c" into ["a", "b", "c"]; lists pass through (from envsync.toml or tests)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], BeforeValidator(_split_list)]


class Settings(BaseSettings):
    """Every setting envsync reads, under its environment name."""

    # allow_inf_nan=False: "inf" or "nan" as a timeout, a wait or a count is a mistake, and an
    # infinite wait would hang a run instead of failing it.
    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", frozen=True, allow_inf_nan=False
    )

    # Core, with the names and meaning of the original EnvSync engine.
    enabled: bool = Field(True, validation_alias="ENVSYNC_ENABLED")
    mode: Literal["dry-run", "enforce"] = Field("dry-run", validation_alias="ENVSYNC_MODE")
    schedule: str = Field("@hourly", validation_alias="ENVSYNC_SCHEDULE")
    canonical_source: Literal["file", "env", "vault", "dashboard"] = Field(
        "file", validation_alias="ENVSYNC_CANONICAL_SOURCE"
    )
    targets: CommaList = Field(["render", "netlify"], validation_alias="ENVSYNC_TARGETS")
    discovery_order: CommaList = Field(
        ["env", "secret_files", "vault", "dashboard"], validation_alias="ENVSYNC_DISCOVERY_ORDER"
    )
    secret_filenames: CommaList = Field(
        ["render.token", "netlify.token"], validation_alias="ENVSYNC_SECRET_FILENAMES"
    )
    secret_dirs: CommaList = Field(
        ["/etc/secrets", "./secrets"], validation_alias="ENVSYNC_SECRET_DIRS"
    )
    vault_token_keys: CommaList = Field(
        ["RENDER_API_TOKEN", "NETLIFY_API_TOKEN"], validation_alias="ENVSYNC_VAULT_TOKEN_KEYS"
    )
    dashboard_token_urls: CommaList = Field([], validation_alias="ENVSYNC_DASHBOARD_TOKEN_URLS")
    include_prefixes: CommaList = Field(
        ["BRIDGE_", "SR_", "HEART_", "ENVSYNC_"], validation_alias="ENVSYNC_INCLUDE_PREFIXES"
    )
    exclude_prefixes: CommaList = Field(
        ["SECRET_", "INTERNAL_", "DEBUG_"], validation_alias="ENVSYNC_EXCLUDE_PREFIXES"
    )
    allow_deletions: bool = Field(False, validation_alias="ENVSYNC_ALLOW_DELETIONS")
    max_deletions: int = Field(10, ge=0, validation_alias="ENVSYNC_MAX_DELETIONS")

    # Canonical sources.
    canonical_file: str = Field(".env", validation_alias="ENVSYNC_CANONICAL_FILE")
    interpolate: bool = Field(True, validation_alias="ENVSYNC_INTERPOLATE")
    vault_kind: Literal["hashicorp", "bridge"] | None = Field(
        None, validation_alias="ENVSYNC_VAULT_KIND"
    )
    vault_addr: str | None = Field(None, validation_alias="VAULT_ADDR")
    vault_token: SecretStr | None = Field(None, validation_alias="VAULT_TOKEN")
    vault_namespace: str | None = Field(None, validation_alias="VAULT_NAMESPACE")
    vault_mount: str = Field("secret", validation_alias="ENVSYNC_VAULT_MOUNT")
    vault_path: str = Field("envsync", validation_alias="ENVSYNC_VAULT_PATH")
    vault_token_path: str | None = Field(None, validation_alias="ENVSYNC_VAULT_TOKEN_PATH")
    vault_url: str | None = Field(None, validation_alias="ENVSYNC_VAULT_URL")
    vault_auth_token: SecretStr | None = Field(None, validation_alias="ENVSYNC_VAULT_AUTH_TOKEN")
    dashboard_url: str | None = Field(None, validation_alias="ENVSYNC_DASHBOARD_URL")
    dashboard_auth_token: SecretStr | None = Field(
        None, validation_alias="ENVSYNC_DASHBOARD_AUTH_TOKEN"
    )

    # Render.
    render_api_url: str = Field(RENDER_DEFAULT_URL, validation_alias="RENDER_API_URL")
    render_account_id: str = Field("auto", validation_alias="RENDER_ACCOUNT_ID")
    render_region: str | None = Field(None, validation_alias="RENDER_REGION")
    render_service_ids: CommaList = Field([], validation_alias="RENDER_SERVICE_ID")
    render_service_names: CommaList = Field([], validation_alias="RENDER_SERVICE_NAME")
    render_env_group_ids: CommaList = Field([], validation_alias="RENDER_ENV_GROUP_ID")
    render_write_mode: Literal["bulk", "per-key"] = Field(
        "bulk", validation_alias="RENDER_WRITE_MODE"
    )

    # Netlify.
    netlify_api_url: str = Field(NETLIFY_DEFAULT_URL, validation_alias="NETLIFY_API_URL")
    netlify_site_id: str = Field("auto", validation_alias="NETLIFY_SITE_ID")
    netlify_team_id: str = Field("auto", validation_alias="NETLIFY_TEAM_ID")
    netlify_contexts: CommaList = Field(["all"], validation_alias="NETLIFY_CONTEXT")
    netlify_scopes: CommaList = Field(list(NETLIFY_ALL_SCOPES), validation_alias="NETLIFY_SCOPES")
    netlify_secret_keys: CommaList = Field([], validation_alias="NETLIFY_SECRET_KEYS")

    # After a change.
    redeploy: bool = Field(False, validation_alias="ENVSYNC_REDEPLOY")

    # Service and store.
    api_token: SecretStr | None = Field(None, validation_alias="ENVSYNC_API_TOKEN")
    database_url: SecretStr = Field(
        SecretStr("sqlite:///.envsync/state.db"), validation_alias="ENVSYNC_DATABASE_URL"
    )
    ledger_backend: Literal["database", "target"] = Field(
        "database", validation_alias="ENVSYNC_LEDGER_BACKEND"
    )
    ledger_key: SecretStr | None = Field(None, validation_alias="ENVSYNC_LEDGER_KEY")
    snapshot_key: SecretStr | None = Field(None, validation_alias="ENVSYNC_SNAPSHOT_KEY")
    webhook_urls: Annotated[list[SecretStr], BeforeValidator(_split_list)] = Field(
        [], validation_alias="ENVSYNC_WEBHOOK_URLS"
    )
    webhook_secret: SecretStr | None = Field(None, validation_alias="ENVSYNC_WEBHOOK_SECRET")
    # Webhook deliveries: the timeout of one POST, how often one delivery is tried, and how
    # many deliveries per URL may wait before new ones are dropped.
    webhook_timeout_s: float = Field(10.0, gt=0, validation_alias="ENVSYNC_WEBHOOK_TIMEOUT_S")
    webhook_max_attempts: int = Field(
        6, ge=1, le=20, validation_alias="ENVSYNC_WEBHOOK_MAX_ATTEMPTS"
    )
    webhook_queue_size: int = Field(1000, ge=1, validation_alias="ENVSYNC_WEBHOOK_QUEUE_SIZE")
    timezone: str = Field("UTC", validation_alias="ENVSYNC_TIMEZONE")
    schedule_jitter_s: float = Field(0.0, ge=0, validation_alias="ENVSYNC_SCHEDULE_JITTER_S")
    config_file: str = Field("envsync.toml", validation_alias="ENVSYNC_CONFIG_FILE")

    # The HTTP service (`envsync serve`).
    lock_timeout_s: float = Field(30.0, ge=0, validation_alias="ENVSYNC_LOCK_TIMEOUT_S")
    # Render waits 30 s by default between SIGTERM and SIGKILL (Render's Blueprint YAML
    # reference, maxShutdownDelaySeconds), so the default grace ends before that.
    shutdown_grace_s: float = Field(25.0, ge=0, validation_alias="ENVSYNC_SHUTDOWN_GRACE_S")
    max_body_bytes: int = Field(65536, ge=1, validation_alias="ENVSYNC_MAX_BODY_BYTES")
    cors_origins: CommaList = Field([], validation_alias="ENVSYNC_CORS_ORIGINS")

    # HTTP behaviour towards providers and token sources.
    http_timeout_s: float = Field(30.0, gt=0, validation_alias="ENVSYNC_HTTP_TIMEOUT_S")
    max_retries: int = Field(6, ge=0, le=20, validation_alias="ENVSYNC_MAX_RETRIES")
    retry_base_s: float = Field(0.5, ge=0, validation_alias="ENVSYNC_RETRY_BASE_S")
    retry_max_s: float = Field(60.0, ge=0, validation_alias="ENVSYNC_RETRY_MAX_S")
    # Requests in flight per provider. The pacer keeps them within the platform's window,
    # so this only sets how fast a window's budget is spent: 4 left a sync of 100 targets
    # at 30 ms latency waiting on the slots twice as long as on the platform. The slots go
    # to targets in the order they started (envsync.slots).
    provider_concurrency: int = Field(16, ge=1, le=64, validation_alias="ENVSYNC_CONCURRENCY")

    # Logs.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="ENVSYNC_LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field("text", validation_alias="ENVSYNC_LOG_FORMAT")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() merges the process environment over .env itself, with envsync's
        # own .env reader, and passes the result in; no other source is consulted.
        return (init_settings,)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("targets")
    @classmethod
    def _check_targets(cls, value: list[str]) -> list[str]:
        return _check_choices(value, PROVIDER_NAMES)

    @field_validator("discovery_order")
    @classmethod
    def _check_discovery_order(cls, value: list[str]) -> list[str]:
        return _check_choices(value, ("env", "secret_files", "vault", "dashboard"))

    @field_validator("netlify_scopes")
    @classmethod
    def _check_scopes(cls, value: list[str]) -> list[str]:
        normalised = [scope.replace("-", "_") for scope in value]
        return _check_choices(normalised, NETLIFY_ALL_SCOPES)

    @field_validator("netlify_contexts")
    @classmethod
    def _check_contexts(cls, value: list[str]) -> list[str]:
        return validate_contexts(value)

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        from envsync.schedule import parse_schedule

        parse_schedule(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError("not a known IANA time zone, such as UTC or Europe/Berlin") from error
        return value

    @field_validator("render_api_url", "netlify_api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return validate_http_url(value)

    @field_validator("vault_addr", "vault_url", "dashboard_url")
    @classmethod
    def _check_credential_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return validate_http_url(value, show=False)

    @field_validator("dashboard_token_urls")
    @classmethod
    def _check_urls(cls, value: list[str]) -> list[str]:
        return [validate_http_url(url, show=False) for url in value]

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, value: list[str]) -> list[str]:
        return [validate_origin(origin) for origin in value]

    @field_validator("webhook_urls")
    @classmethod
    def _check_webhook_urls(cls, value: list[SecretStr]) -> list[SecretStr]:
        for url in value:
            validate_http_url(url.get_secret_value(), show=False)
        return value

    @model_validator(mode="after")
    def _check_vault_choice(self) -> Settings:
        if self.vault_addr and self.vault_url and self.vault_kind is None:
            raise ValueError(
                "VAULT_ADDR and ENVSYNC_VAULT_URL are both set; set ENVSYNC_VAULT_KIND to "
                "hashicorp or bridge to choose one"
            )
        return self

    @property
    def key_filter(self) -> KeyFilter:
        return KeyFilter(tuple(self.include_prefixes), tuple(self.exclude_prefixes))

    @property
    def effective_vault_kind(self) -> Literal["hashicorp", "bridge"] | None:
        if self.vault_kind is not None:
            return self.vault_kind
        if self.vault_addr:
            return "hashicorp"
        if self.vault_url:
            return "bridge"
        return None


def _check_choices(values: list[str], accepted: tuple[str, ...]) -> list[str]:
    unknown = [value for value in values if value not in accepted]
    if unknown:
        raise ValueError(f"unknown {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    return values


def validate_contexts(contexts: list[str]) -> list[str]:
    """Check Netlify context names: the plain ones, or `branch:NAME` for one branch."""
    if not contexts:
        raise ValueError("needs at least one context")
    for context in contexts:
        if context.startswith("branch:"):
            branch = context.removeprefix("branch:")
            if not branch or branch in NETLIFY_PLAIN_CONTEXTS:
                raise ValueError(
                    f"{context!r} needs a branch name that is not itself a context name"
                )
            continue
        if context not in NETLIFY_PLAIN_CONTEXTS:
            raise ValueError(
                f"unknown context {context!r}; accepted: "
                f"{', '.join(NETLIFY_PLAIN_CONTEXTS)}, branch:NAME"
            )
    if "all" in contexts and len(contexts) > 1:
        raise ValueError("'all' cannot be combined with specific contexts")
    return contexts


def validate_http_url(url: str, *, show: bool = True) -> str:
    """Accept an absolute http(s) URL; the message shows it only when `show` is true."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        return url.rstrip("/")
    shown = f"{url!r} " if show else ""
    raise ValueError(f"{shown}is not an absolute http:// or https:// URL")


def validate_origin(origin: str) -> str:
    """Accept `*` or a browser origin: scheme, host and optional port, with no path."""
    if origin == "*":
        return origin
    parts = urlsplit(origin)
    is_origin = parts.scheme in ("http", "https") and parts.hostname and parts.path in ("", "/")
    if is_origin and not (parts.query or parts.fragment or parts.username):
        return f"{parts.scheme}://{parts.netloc}"
    raise ValueError(f"{origin!r} is not an origin such as https://admin.example.com, or *")


# Settings whose values are credentials: their values never appear in a message. The
# vault and dashboard URLs count, because a dashboard URL may be signed in its path and a
# vault's URL points at where the secrets are kept.
CREDENTIAL_SETTINGS = (
    "ENVSYNC_API_TOKEN",
    "ENVSYNC_DATABASE_URL",
    "ENVSYNC_LEDGER_KEY",
    "ENVSYNC_SNAPSHOT_KEY",
    "ENVSYNC_WEBHOOK_SECRET",
    "ENVSYNC_WEBHOOK_URLS",
    "VAULT_TOKEN",
    "ENVSYNC_VAULT_AUTH_TOKEN",
    "ENVSYNC_DASHBOARD_AUTH_TOKEN",
    "VAULT_ADDR",
    "ENVSYNC_VAULT_URL",
    "ENVSYNC_DASHBOARD_URL",
    "ENVSYNC_DASHBOARD_TOKEN_URLS",
)

# Names that never enter the canonical set, whatever the filters say: envsync's own
# credentials, the places it fetches credentials from, and its ledger variable.
RESERVED_CANONICAL_KEYS = frozenset(
    {
        *CREDENTIAL_SETTINGS,
        "RENDER_API_TOKEN",
        "NETLIFY_API_TOKEN",
        OWNERSHIP_KEY,
    }
)


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read settings: `.env` in `cwd`, then `environ` (the process environment by default),
    then `overrides` (from command-line options); later ones win.

    Raises ConfigError naming every invalid setting.
    """
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = dict(_read_settings_dotenv(cwd or Path.cwd()))
    merged.update(environ)
    merged.update(overrides or {})

    try:
        return Settings(**merged)
    except ValidationError as error:
        raise _config_error(error, merged) from None


def settings_environ(cwd: Path | None = None) -> dict[str, str]:
    """The environment envsync's settings come from: `.env` in `cwd`, then the process
    environment over it. The `env` step of token discovery reads tokens from it too, so a
    RENDER_API_TOKEN kept in that `.env` is found like any other setting there."""
    merged = _read_settings_dotenv(cwd or Path.cwd())
    merged.update(os.environ)
    return merged


def _read_settings_dotenv(cwd: Path) -> dict[str, str]:
    """Read envsync's own settings from `.env` in the working directory, if there is one."""
    from envsync import dotenv

    path = cwd / ".env"
    if not path.is_file():
        return {}
    parsed = dotenv.read_file(path, environ=os.environ)
    return {key: value.reveal() for key, value in parsed.values.items()}


def _config_error(error: ValidationError, given: Mapping[str, Any]) -> ConfigError:
    """Turn pydantic's report into one ConfigError that names every invalid setting."""
    problems = []
    for detail in error.errors():
        location = [str(part) for part in detail["loc"] if isinstance(part, str)]
        setting = location[0] if location else "settings"
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "bool_parsing":
            message = "not a boolean; accepted: true, false, 1, 0, yes, no, on, off"
        if setting in given and setting not in CREDENTIAL_SETTINGS:
            message = f"invalid value {str(given[setting])!r}: {message}"
        problems.append((setting, message))

    first_setting, first_message = problems[0]
    rest = "; ".join(f"{setting}: {message}" for setting, message in problems[1:])
    text = f"{first_message}; also {rest}" if rest else first_message
    return ConfigError(first_setting, text, hint="fix the setting and run envsync again")


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A target as configured, before `auto` and names are resolved against the platform.

    `selector` is an id, a name or `auto`, as `selector_kind` says. `name` is the display
    name from envsync.toml, or None to name the target after the platform's name for it.
    """

    provider: str
    kind: str
    selector: str
    selector_kind: Literal["id", "name", "auto"]
    name: str | None = None
    key_filter: KeyFilter = field(default_factory=KeyFilter)
    contexts: tuple[str, ...] = ("all",)
    secret_keys: tuple[str, ...] = ()
    scopes: tuple[str, ...] = NETLIFY_ALL_SCOPES
    write_mode: Literal["bulk", "per-key"] = "bulk"
    account_id: str | None = None

    @property
    def unresolved_name(self) -> str:
        """The target's name before the platform resolves it, such as `netlify/auto`."""
        prefix = "render-group" if self.kind == "env_group" else self.provider
        return self.name or f"{prefix}/{self.selector}"

    def matches(self, wanted: str) -> bool:
        """Check whether a `--target` value selects this target: its provider, its name, its
        selector or its name before resolution."""
        return wanted in (self.provider, self.name, self.selector, self.unresolved_name)


def load_targets(settings: Settings, *, cwd: Path | None = None) -> list[TargetSpec]:
    """Build the target list from envsync.toml when it exists, else from the settings.

    A path that exists but is not a file is an error. A path set explicitly in
    ENVSYNC_CONFIG_FILE that does not exist is logged as a warning, because a typo there
    would otherwise sync the targets of the settings without a word.
    """
    path = Path(settings.config_file)
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if path.exists() and not path.is_file():
        raise ConfigError("ENVSYNC_CONFIG_FILE", f"{path} is not a file", hint="name a TOML file")
    if path.is_file():
        specs = _targets_from_file(path, settings)
    else:
        if "config_file" in settings.model_fields_set:
            logger.warning(
                "ENVSYNC_CONFIG_FILE names %s, which does not exist; the targets come from "
                "the settings",
                path,
            )
        specs = _targets_from_settings(settings)
    return [spec for spec in specs if spec.provider in settings.targets]


def _targets_from_settings(settings: Settings) -> list[TargetSpec]:
    base_filter = settings.key_filter
    account = None if settings.render_account_id == "auto" else settings.render_account_id
    render_common: dict[str, Any] = {
        "key_filter": base_filter,
        "write_mode": settings.render_write_mode,
        "account_id": account,
    }
    specs: list[TargetSpec] = []

    for service_id in settings.render_service_ids:
        kind: Literal["id", "auto"] = "auto" if service_id == "auto" else "id"
        specs.append(TargetSpec("render", "service", service_id, kind, **render_common))
    for service_name in settings.render_service_names:
        specs.append(TargetSpec("render", "service", service_name, "name", **render_common))
    for group_id in settings.render_env_group_ids:
        specs.append(TargetSpec("render", "env_group", group_id, "id", **render_common))
    if not settings.render_service_ids and not settings.render_service_names:
        specs.insert(0, TargetSpec("render", "service", "auto", "auto", **render_common))

    site_kind: Literal["id", "auto"] = "auto" if settings.netlify_site_id == "auto" else "id"
    team = None if settings.netlify_team_id == "auto" else settings.netlify_team_id
    specs.append(
        TargetSpec(
            "netlify",
            "site",
            settings.netlify_site_id,
            site_kind,
            key_filter=base_filter,
            contexts=tuple(settings.netlify_contexts),
            secret_keys=tuple(settings.netlify_secret_keys),
            scopes=tuple(settings.netlify_scopes),
            account_id=team,
        )
    )
    return specs


_TARGET_FIELDS = {
    "name",
    "provider",
    "service_id",
    "service_name",
    "env_group_id",
    "site_id",
    "include_prefixes",
    "exclude_prefixes",
    "contexts",
    "secret_keys",
    "scopes",
    "write_mode",
    "account_id",
}


def _targets_from_file(path: Path, settings: Settings) -> list[TargetSpec]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(str(path), f"cannot be read as TOML: {error}") from None

    tables = document.get("target", [])
    if not isinstance(tables, list) or not tables:
        raise ConfigError(str(path), "needs at least one [[target]] table")
    specs = [_target_from_table(path, index, table, settings) for index, table in enumerate(tables)]
    names = [spec.name for spec in specs if spec.name]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(
            str(path),
            f"target name {', '.join(repeated)} is used more than once",
            hint="give every [[target]] its own name",
        )
    return specs


def _target_from_table(path: Path, index: int, table: Any, settings: Settings) -> TargetSpec:
    where = f"{path} [[target]] #{index + 1}"
    if not isinstance(table, dict):
        raise ConfigError(where, "must be a table")
    unknown = sorted(set(table) - _TARGET_FIELDS)
    if unknown:
        raise ConfigError(
            where,
            f"unknown field {', '.join(unknown)}; accepted: {', '.join(sorted(_TARGET_FIELDS))}",
        )

    provider = table.get("provider")
    if provider not in PROVIDER_NAMES:
        raise ConfigError(f"{where} provider", f"must be one of {', '.join(PROVIDER_NAMES)}")

    key_filter = KeyFilter(
        tuple(table.get("include_prefixes", settings.include_prefixes)),
        tuple(table.get("exclude_prefixes", settings.exclude_prefixes)),
    )
    name = table.get("name")
    if provider == "render":
        spec = _render_spec_from_table(where, table, key_filter, settings)
    else:
        spec = _netlify_spec_from_table(where, table, key_filter, settings)
    return replace(spec, name=name)


def _render_spec_from_table(
    where: str, table: dict[str, Any], key_filter: KeyFilter, settings: Settings
) -> TargetSpec:
    account = table.get("account_id", settings.render_account_id)
    common: dict[str, Any] = {
        "key_filter": key_filter,
        "write_mode": _env_override(settings, "render_write_mode", table.get("write_mode")),
        "account_id": None if account == "auto" else account,
    }
    if common["write_mode"] not in ("bulk", "per-key"):
        raise ConfigError(f"{where} write_mode", "must be bulk or per-key")
    if "env_group_id" in table:
        return TargetSpec("render", "env_group", str(table["env_group_id"]), "id", **common)
    if "service_name" in table:
        return TargetSpec("render", "service", str(table["service_name"]), "name", **common)
    service_id = str(table.get("service_id", "auto"))
    kind: Literal["id", "auto"] = "auto" if service_id == "auto" else "id"
    return TargetSpec("render", "service", service_id, kind, **common)


def _netlify_spec_from_table(
    where: str, table: dict[str, Any], key_filter: KeyFilter, settings: Settings
) -> TargetSpec:
    contexts = _env_override(settings, "netlify_contexts", table.get("contexts"))
    try:
        validate_contexts(list(contexts))
    except ValueError as error:
        raise ConfigError(f"{where} contexts", str(error)) from None

    site_id = str(table.get("site_id", "auto"))
    kind: Literal["id", "auto"] = "auto" if site_id == "auto" else "id"
    team = table.get("account_id", settings.netlify_team_id)
    secret_keys = _env_override(settings, "netlify_secret_keys", table.get("secret_keys"))
    scopes = _env_override(settings, "netlify_scopes", table.get("scopes"))
    return TargetSpec(
        "netlify",
        "site",
        site_id,
        kind,
        key_filter=key_filter,
        contexts=tuple(contexts),
        secret_keys=tuple(secret_keys),
        scopes=tuple(scope.replace("-", "_") for scope in scopes),
        account_id=None if team == "auto" else team,
    )


def _env_override(settings: Settings, field_name: str, from_file: Any) -> Any:
    """Pick a target field from envsync.toml, unless the environment sets it for every target."""
    from_settings = getattr(settings, field_name)
    if from_file is None or field_name in settings.model_fields_set:
        return from_settings
    return from_file
