"""Shared parts of the canonical sources: the request a loader gets and checks on its result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from pydantic import SecretStr

from envsync.config import RESERVED_CANONICAL_KEYS, Settings
from envsync.errors import SourceError
from envsync.model import CanonicalSet, SecretValue


@dataclass(frozen=True, slots=True)
class SourceRequest:
    """The input of a loader: the settings, the canonical file (`-` for `stdin`) and the
    process environment."""

    settings: Settings
    file: str
    stdin: BinaryIO | None
    environ: Mapping[str, str]


SourceLoader = Callable[[SourceRequest], Awaitable[CanonicalSet]]


def drop_keys(canonical: CanonicalSet, names: Collection[str], why: str) -> CanonicalSet:
    """Remove `names` from the set, adding a warning that counts and names them (never values)."""
    dropped = sorted(key for key in canonical.values if key in names)
    if not dropped:
        return canonical

    kept = {key: value for key, value in canonical.values.items() if key not in names}
    warning = f"{canonical.origin}: left out {len(dropped)} keys {why}: {', '.join(dropped)}"
    return CanonicalSet(canonical.origin, kept, (*canonical.warnings, warning))


def drop_reserved(canonical: CanonicalSet) -> CanonicalSet:
    """Remove envsync's own credentials and ledger variable, whatever the filters include."""
    return drop_keys(
        canonical,
        RESERVED_CANONICAL_KEYS,
        "that hold envsync's own credentials or its ledger, which are never synced",
    )


def string_object(body: Any, where: str) -> dict[str, SecretValue]:
    """Check that a JSON body is an object of strings and wrap each value.

    Raises SourceError naming `where` and the first offending key, never a value.
    """
    if not isinstance(body, dict):
        raise SourceError(
            f"{where}: returned a JSON {_json_kind(body)}, not an object of names and values",
            hint='the endpoint must return a JSON object such as {"NAME": "value"}',
        )

    values: dict[str, SecretValue] = {}
    for key, value in body.items():
        if not isinstance(value, str):
            raise SourceError(
                f"{where}: the value of {key} is a JSON {_json_kind(value)}, not a string",
                hint="the endpoint must return every value as a JSON string",
            )
        values[key] = SecretValue(value)
    return values


def _json_kind(value: Any) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "boolean"),
        ((int, float), "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ]
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    return "null"


def setting_secret(value: SecretStr | None) -> SecretValue | None:
    """Wrap a credential from the settings in a SecretValue."""
    if value is None:
        return None
    return SecretValue(value.get_secret_value())
