"""Rotate one key: write a new value to the canonical source, then apply it to every target.

`rotate(engine, key, value=..., generate=...)` first checks the key against envsync's own
names, the filters of every target and each platform's key rules. It then writes the new
value (given, or `secrets.token_urlsafe(32)`) to the canonical source. Last, it runs an
apply with trigger `rotate` that plans only that key, so other pending changes of the
source wait for a normal apply. The run records the rotation and publishes its events like
any other.

Only two sources can be written:

- `file`: the one definition of the key changes in place, atomically, and every other byte
  of the file stays as it was (`envsync.dotenv.set_value_in_file`).
- `vault` on HashiCorp Vault KV v2: a read of the latest version, then a write of every
  field with the key changed, with check-and-set on the version read, so a concurrent
  writer is never overwritten; a check-and-set mismatch reads again and retries.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envsync.config import RESERVED_CANONICAL_KEYS, Settings, TargetSpec, load_targets
from envsync.errors import ConfigError, RotationError, SourceFetchError
from envsync.model import Conflict, Plan, RunMode, SecretValue
from envsync.planner import PlanInput, plan_target

if TYPE_CHECKING:
    from envsync.engine import RunReport
    from envsync.rollback import Runner

logger = logging.getLogger(__name__)

# Bytes of randomness in a generated value: 32 bytes give 43 URL-safe characters.
GENERATED_BYTES = 32

# How often a Vault write is tried when another writer changes the secret in between.
VAULT_CAS_ATTEMPTS = 3

_PROVIDER_TITLES = {"render": "Render", "netlify": "Netlify"}


@dataclass(frozen=True, slots=True)
class RotateReport:
    """The outcome of a rotation: where the new value went, and the apply run. No value."""

    key: str
    origin: str
    generated: bool
    report: RunReport

    @property
    def ok(self) -> bool:
        return self.report.ok

    @property
    def run_id(self) -> str:
        return self.report.run_id


async def rotate(
    engine: Runner,
    key: str,
    *,
    value: SecretValue | None,
    generate: bool,
    actor: str | None = None,
) -> RotateReport:
    """Write a new value of `key` to the canonical source and apply it to every target.

    Raises RotationError when the key or value cannot be rotated, ConfigError when the
    source cannot be written, and SourceError when writing it fails.
    """
    from envsync.engine import RunRequest

    settings = engine.settings
    new_value = _new_value(value, generate)
    check_key(settings, key, load_targets(settings))

    origin = await write_to_source(settings, key, new_value)
    logger.info("rotated %s in %s; applying it to every target", key, origin)

    request = RunRequest(
        mode=RunMode.ENFORCE,
        trigger="rotate",
        actor=actor,
        planner=key_planner(key, new_value),
    )
    report = await engine.run(request)
    return RotateReport(key, origin, generate, report)


def _new_value(value: SecretValue | None, generate: bool) -> SecretValue:
    if generate and value is not None:
        raise RotationError("give a new value or ask for a generated one, not both")
    if generate:
        return SecretValue(secrets.token_urlsafe(GENERATED_BYTES))
    if value is None:
        raise RotationError(
            "no new value given", hint="pass the value on standard input or generate one"
        )
    if not value:
        raise RotationError(
            "the new value is empty", hint="Render does not store empty values; give a value"
        )
    return value


def check_key(settings: Settings, key: str, specs: list[TargetSpec]) -> None:
    """Raise RotationError unless the key is one envsync syncs to at least one target and
    every platform of those targets accepts its name."""
    if key in RESERVED_CANONICAL_KEYS or key in settings.vault_token_keys:
        raise RotationError(
            f"{key} is one of envsync's own credentials or its ledger variable, which are "
            "never synced, so envsync does not rotate it"
        )

    managing = [spec for spec in specs if spec.key_filter.manages(key)]
    if not managing:
        raise RotationError(
            f"{key} is left out by the filters of every target ({_filter_text(settings)}), so "
            "no target would receive it",
            hint="add its prefix to ENVSYNC_INCLUDE_PREFIXES or remove it from "
            "ENVSYNC_EXCLUDE_PREFIXES",
        )

    from envsync.providers.base import load_rules

    for provider in sorted({spec.provider for spec in managing}):
        reason = load_rules(provider).reject_key(key)
        if reason:
            title = _PROVIDER_TITLES.get(provider, provider)
            raise RotationError(f"{title} rejects the key {key}: {reason}")


def _filter_text(settings: Settings) -> str:
    include = ",".join(settings.include_prefixes) or "(empty)"
    exclude = ",".join(settings.exclude_prefixes) or "(empty)"
    return f"ENVSYNC_INCLUDE_PREFIXES={include}, ENVSYNC_EXCLUDE_PREFIXES={exclude}"


# Writing the source.


async def write_to_source(settings: Settings, key: str, value: SecretValue) -> str:
    """Write the key's new value to the canonical source; return the source's name."""
    source = settings.canonical_source
    if source == "file":
        return await _write_file(settings.canonical_file, key, value)
    if source == "vault" and settings.effective_vault_kind == "hashicorp":
        return await write_vault_field(settings, key, value)

    kind = "vault (a bridge-style vault)" if source == "vault" else source
    raise ConfigError(
        "ENVSYNC_CANONICAL_SOURCE",
        f"is {kind}, which envsync cannot write; rotation needs the canonical source file or "
        "vault (HashiCorp Vault KV v2)",
        hint="change the value in the source yourself and run `envsync apply`",
    )


async def _write_file(file: str, key: str, value: SecretValue) -> str:
    from envsync import dotenv

    if file == "-":
        raise ConfigError(
            "ENVSYNC_CANONICAL_FILE",
            "is - (standard input), which cannot be written; rotation needs a file",
        )
    path = Path(file)
    if not path.is_file():
        raise ConfigError(
            "ENVSYNC_CANONICAL_FILE", f"{path} does not exist, so the new value cannot be written"
        )
    try:
        dotenv.format_line(key, "")
    except ValueError as error:
        raise RotationError(f"a .env file cannot hold the key: {error}") from None

    try:
        await asyncio.to_thread(dotenv.set_value_in_file, path, key, value.reveal())
    except ValueError as error:
        # format_value's message names what is wrong with the value without showing it.
        raise RotationError(f"{key} cannot be written to {path}: {error}") from None
    return f"file {path}"


async def write_vault_field(settings: Settings, key: str, value: SecretValue) -> str:
    """Set one field of the canonical KV v2 secret, keeping every other field as it is."""
    from envsync.sources.hashicorp import read_kv2

    mount, path = settings.vault_mount, settings.vault_path
    where = f"vault {mount}/{path}"
    for attempt in range(1, VAULT_CAS_ATTEMPTS + 1):
        current = await read_kv2(settings, mount, path)
        fields = {**current.data, key: value.reveal()}
        written = await asyncio.to_thread(
            _write_kv2, settings, mount, path, fields, current.version
        )
        if written:
            return where
        logger.warning(
            "%s changed while %s was rotated (attempt %d of %d); reading it again",
            where,
            key,
            attempt,
            VAULT_CAS_ATTEMPTS,
        )
    raise SourceFetchError(
        where,
        f"the secret changed during each of {VAULT_CAS_ATTEMPTS} attempts to write it",
        hint="retry when the other writer has finished",
    )


def _write_kv2(
    settings: Settings, mount: str, path: str, fields: Mapping[str, Any], version: int | None
) -> bool:
    """Write a new version with check-and-set on `version`; False on a version mismatch."""
    import hvac  # type: ignore[import-untyped]  # hvac ships no type information
    import requests
    from hvac.exceptions import InvalidRequest, VaultError  # type: ignore[import-untyped]

    from envsync.sources.hashicorp import HVAC_STATUS, SameOriginSession

    token = settings.vault_token.get_secret_value() if settings.vault_token else ""
    client = hvac.Client(
        url=settings.vault_addr,
        token=token,
        namespace=settings.vault_namespace or None,
        timeout=settings.http_timeout_s,
        session=SameOriginSession(),
    )
    where = f"vault {mount}/{path}"
    try:
        client.secrets.kv.v2.create_or_update_secret(
            path=path, secret=dict(fields), cas=version, mount_point=mount
        )
    except InvalidRequest as error:
        # Vault's message for a stale version (KV v2 docs, "cas" option).
        if "check-and-set" in str(error.errors or ""):
            return False
        raise SourceFetchError(where, "HTTP 400: Vault rejected the write", status=400) from None
    except VaultError as error:
        status = HVAC_STATUS.get(type(error).__name__)
        raise SourceFetchError(
            where,
            f"HTTP {status or 'error'}: the write failed",
            status=status,
            hint=f"check that VAULT_TOKEN's policy allows update on {mount}/data/{path}",
        ) from None
    except requests.RequestException as error:
        # The exception text contains the request URL, so only its kind is kept.
        raise SourceFetchError(where, f"the write failed ({type(error).__name__})") from None
    finally:
        client.adapter.close()
    return True


# Planning only the rotated key.


def key_planner(key: str, value: SecretValue) -> Callable[[PlanInput], Plan]:
    """Return a planner that plans the canonical set as usual and keeps only `key`."""

    def plan(given: PlanInput) -> Plan:
        if given.canonical.get(key) != value:
            return Plan(
                target=given.target,
                changes=(),
                conflicts=(
                    Conflict(
                        key,
                        "the canonical source did not return the new value after it was "
                        "written (is the key defined twice, or interpolated?)",
                    ),
                ),
            )
        return only_key(plan_target(given), key)

    return plan


def only_key(plan: Plan, key: str) -> Plan:
    """Keep the parts of a plan that concern one key."""
    return replace(
        plan,
        changes=tuple(change for change in plan.changes if change.key == key),
        rejected=tuple(rejection for rejection in plan.rejected if rejection.key == key),
        conflicts=tuple(conflict for conflict in plan.conflicts if conflict.key == key),
        warnings=tuple(warning for warning in plan.warnings if warning.key == key),
        adopted=tuple(slot for slot in plan.adopted if slot[0] == key),
        ledger_stale=(),
    )
