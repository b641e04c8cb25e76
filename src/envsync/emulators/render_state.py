"""The Render emulator's state: owners, services, environment groups and their variables.

Lists are kept in `Listing`s: items keyed by name and listed newest first, each with a
cursor derived from a sequence number shared by the whole state. The newest-first order
follows Render's recordings: a bulk PUT of `[baz, foo]` is listed back as `[foo, baz]`,
and a variable added to an environment group comes first in the group's `envVars`.
"""

from __future__ import annotations

import base64
import bisect
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from envsync.emulators.common import JSONObject, SeedError
from envsync.emulators.ids import render_id, timestamp

T = TypeVar("T")

# Render's service types and the short names used in an environment group's serviceLinks.
SERVICE_TYPES: Mapping[str, str] = {
    "web_service": "web",
    "private_service": "pserv",
    "background_worker": "worker",
    "static_site": "static",
    "cron_job": "cron",
}

_CURSOR_MAGIC = b"envsync-emulator"


def encode_cursor(sequence: int) -> str:
    """Return the opaque cursor of an item: 32 URL-safe characters, like Render's."""
    raw = _CURSOR_MAGIC + sequence.to_bytes(8, "big")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str) -> int:
    """Return the sequence number inside a cursor; raise ValueError when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("invalid cursor") from None
    if len(raw) != len(_CURSOR_MAGIC) + 8 or not raw.startswith(_CURSOR_MAGIC):
        raise ValueError("invalid cursor")
    return int.from_bytes(raw[len(_CURSOR_MAGIC) :], "big")


class Listing(Generic[T]):
    """Items keyed by name, listed newest first, with a cursor for each item.

    Updating an item keeps its place; adding one puts it first. Paging costs a binary
    search plus the page, after an O(n) index rebuild once per change of membership.
    """

    def __init__(self, sequence: Iterator[int]) -> None:
        self._sequence = sequence
        self._items: dict[str, tuple[int, T]] = {}
        self._index: tuple[list[int], list[str]] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: str) -> T | None:
        entry = self._items.get(key)
        return entry[1] if entry is not None else None

    def put(self, key: str, item: T) -> bool:
        """Store the item under key; return True when the key is new."""
        entry = self._items.get(key)
        if entry is not None:
            self._items[key] = (entry[0], item)
            return False
        self._items[key] = (next(self._sequence), item)
        self._index = None
        return True

    def remove(self, key: str) -> T | None:
        entry = self._items.pop(key, None)
        if entry is None:
            return None
        self._index = None
        return entry[1]

    def clear(self) -> None:
        self._items.clear()
        self._index = None

    def oldest_first(self) -> list[tuple[str, T]]:
        return [(key, item) for key, (_, item) in self._items.items()]

    def newest_first(self) -> list[tuple[str, T]]:
        return [(key, item) for key, (_, item) in reversed(self._items.items())]

    def cursor_of(self, key: str) -> str:
        return encode_cursor(self._items[key][0])

    def sequence_of(self, key: str) -> int | None:
        entry = self._items.get(key)
        return entry[0] if entry is not None else None

    def page(
        self,
        after: int | None,
        limit: int,
        keep: Callable[[T], bool] | None = None,
    ) -> list[tuple[str, str, T]]:
        """Return up to `limit` (cursor, key, item) triples that come after sequence `after`."""
        negated, keys = self._ordered()
        start = 0 if after is None else bisect.bisect_right(negated, -after)
        page: list[tuple[str, str, T]] = []
        for position in range(start, len(keys)):
            if len(page) >= limit:
                break
            key = keys[position]
            item = self._items[key][1]
            if keep is None or keep(item):
                page.append((encode_cursor(-negated[position]), key, item))
        return page

    def _ordered(self) -> tuple[list[int], list[str]]:
        # Negated sequence numbers ascend from the newest item, so bisect finds a cursor.
        if self._index is None:
            entries = sorted(((-seq, key) for key, (seq, _) in self._items.items()))
            self._index = ([seq for seq, _ in entries], [key for _, key in entries])
        return self._index


@dataclass(slots=True)
class Owner:
    id: str
    name: str
    type: str
    email: str
    extra: JSONObject = field(default_factory=dict)


@dataclass(slots=True)
class Service:
    id: str
    name: str
    owner_id: str
    type: str
    created_at: str
    updated_at: str
    env_vars: Listing[str]
    secret_files: Listing[str]
    deploys: Listing[JSONObject]
    extra: JSONObject = field(default_factory=dict)


@dataclass(slots=True)
class EnvGroup:
    id: str
    name: str
    owner_id: str
    created_at: str
    updated_at: str
    env_vars: Listing[str]
    secret_files: Listing[str]
    service_ids: list[str] = field(default_factory=list)
    environment_id: str | None = None


class RenderState:
    """The Render emulator's whole state, built from and dumped to the seed form."""

    def __init__(self) -> None:
        self.sequence = itertools.count(1)
        self.tokens: list[str] = []
        self.owners: Listing[Owner] = self.new_listing()
        self.services: Listing[Service] = self.new_listing()
        self.env_groups: Listing[EnvGroup] = self.new_listing()

    def new_listing(self) -> Listing[Any]:
        return Listing(self.sequence)

    def new_service(self, name: str, owner_id: str, service_type: str) -> Service:
        now = timestamp()
        prefix = "crn" if service_type == "cron_job" else "srv"
        return Service(
            id=render_id(prefix),
            name=name,
            owner_id=owner_id,
            type=service_type,
            created_at=now,
            updated_at=now,
            env_vars=self.new_listing(),
            secret_files=self.new_listing(),
            deploys=self.new_listing(),
        )

    def new_env_group(self, name: str, owner_id: str) -> EnvGroup:
        now = timestamp()
        return EnvGroup(
            id=render_id("evg"),
            name=name,
            owner_id=owner_id,
            created_at=now,
            updated_at=now,
            env_vars=self.new_listing(),
            secret_files=self.new_listing(),
        )


# Fields of the seed form that are state of their own, not service fields to echo.
_SERVICE_STATE_FIELDS = {"id", "name", "ownerId", "type", "createdAt", "updatedAt"}
_SERVICE_LIST_FIELDS = {"envVars", "secretFiles", "deploys"}


def load_render_seed(document: Mapping[str, Any]) -> RenderState:
    """Build the state from the seed form; raise SeedError naming the offending field."""
    state = RenderState()
    state.tokens = _string_list(document.get("tokens", []), "render.tokens")

    for position, raw in enumerate(_object_list(document.get("owners", []), "render.owners")):
        owner = _load_owner(raw, f"render.owners[{position}]")
        state.owners.put(owner.id, owner)

    for position, raw in enumerate(_object_list(document.get("services", []), "render.services")):
        service = _load_service(state, raw, f"render.services[{position}]")
        state.services.put(service.id, service)

    for position, raw in enumerate(_object_list(document.get("envGroups", []), "render.envGroups")):
        group = _load_env_group(state, raw, f"render.envGroups[{position}]")
        state.env_groups.put(group.id, group)
    return state


def dump_render_state(state: RenderState) -> JSONObject:
    """Return the state in the seed form; lists run oldest first, so a reload keeps order."""
    return {
        "tokens": list(state.tokens),
        "owners": [
            {"id": o.id, "name": o.name, "type": o.type, "email": o.email, **o.extra}
            for _, o in state.owners.oldest_first()
        ],
        "services": [_dump_service(service) for _, service in state.services.oldest_first()],
        "envGroups": [_dump_env_group(group) for _, group in state.env_groups.oldest_first()],
    }


def _dump_service(service: Service) -> JSONObject:
    return {
        "id": service.id,
        "name": service.name,
        "ownerId": service.owner_id,
        "type": service.type,
        "createdAt": service.created_at,
        "updatedAt": service.updated_at,
        **service.extra,
        "envVars": _dump_pairs(service.env_vars, "key", "value"),
        "secretFiles": _dump_pairs(service.secret_files, "name", "content"),
        "deploys": [deploy for _, deploy in service.deploys.oldest_first()],
    }


def _dump_env_group(group: EnvGroup) -> JSONObject:
    dumped: JSONObject = {
        "id": group.id,
        "name": group.name,
        "ownerId": group.owner_id,
        "createdAt": group.created_at,
        "updatedAt": group.updated_at,
        "envVars": _dump_pairs(group.env_vars, "key", "value"),
        "secretFiles": _dump_pairs(group.secret_files, "name", "content"),
        "serviceIds": list(group.service_ids),
    }
    if group.environment_id is not None:
        dumped["environmentId"] = group.environment_id
    return dumped


def _dump_pairs(listing: Listing[str], name: str, content: str) -> list[JSONObject]:
    return [{name: key, content: value} for key, value in listing.oldest_first()]


def _load_owner(raw: JSONObject, where: str) -> Owner:
    name = _text(raw, "name", where)
    owner_type = raw.get("type", "team")
    if owner_type not in ("team", "user"):
        raise SeedError(f'{where}.type must be "team" or "user"')
    extra = {k: v for k, v in raw.items() if k not in {"id", "name", "type", "email"}}
    return Owner(
        id=_optional_text(raw, "id", where) or render_id("tea" if owner_type == "team" else "usr"),
        name=name,
        type=owner_type,
        email=_optional_text(raw, "email", where)
        or f"{name.lower().replace(' ', '-')}@example.com",
        extra=extra,
    )


def _load_service(state: RenderState, raw: JSONObject, where: str) -> Service:
    owner_id = _text(raw, "ownerId", where)
    if owner_id not in state.owners:
        raise SeedError(f"{where}.ownerId {owner_id!r} is not one of render.owners")

    service_type = raw.get("type", "web_service")
    if service_type not in SERVICE_TYPES:
        raise SeedError(f"{where}.type must be one of {sorted(SERVICE_TYPES)}")

    service = state.new_service(_text(raw, "name", where), owner_id, service_type)
    service.id = _optional_text(raw, "id", where) or service.id
    service.created_at = _optional_text(raw, "createdAt", where) or service.created_at
    service.updated_at = _optional_text(raw, "updatedAt", where) or service.updated_at
    service.extra = {
        k: v for k, v in raw.items() if k not in _SERVICE_STATE_FIELDS | _SERVICE_LIST_FIELDS
    }
    _load_pairs(service.env_vars, raw.get("envVars", []), "key", "value", f"{where}.envVars")
    _load_pairs(
        service.secret_files, raw.get("secretFiles", []), "name", "content", f"{where}.secretFiles"
    )
    for position, deploy in enumerate(_object_list(raw.get("deploys", []), f"{where}.deploys")):
        service.deploys.put(_text(deploy, "id", f"{where}.deploys[{position}]"), dict(deploy))
    return service


def _load_env_group(state: RenderState, raw: JSONObject, where: str) -> EnvGroup:
    owner_id = _text(raw, "ownerId", where)
    if owner_id not in state.owners:
        raise SeedError(f"{where}.ownerId {owner_id!r} is not one of render.owners")

    group = state.new_env_group(_text(raw, "name", where), owner_id)
    group.id = _optional_text(raw, "id", where) or group.id
    group.created_at = _optional_text(raw, "createdAt", where) or group.created_at
    group.updated_at = _optional_text(raw, "updatedAt", where) or group.updated_at
    group.environment_id = _optional_text(raw, "environmentId", where)
    _load_pairs(group.env_vars, raw.get("envVars", []), "key", "value", f"{where}.envVars")
    _load_pairs(
        group.secret_files, raw.get("secretFiles", []), "name", "content", f"{where}.secretFiles"
    )

    for service_id in _string_list(raw.get("serviceIds", []), f"{where}.serviceIds"):
        if service_id not in state.services:
            raise SeedError(f"{where}.serviceIds names {service_id!r}, which is not a service")
        group.service_ids.append(service_id)
    return group


def _load_pairs(listing: Listing[str], raw: Any, name: str, content: str, where: str) -> None:
    for position, pair in enumerate(_object_list(raw, where)):
        key = _text(pair, name, f"{where}[{position}]")
        value = pair.get(content)
        if not isinstance(value, str):
            raise SeedError(f"{where}[{position}].{content} must be a string")
        listing.put(key, value)


def _object_list(raw: Any, where: str) -> list[JSONObject]:
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise SeedError(f"{where} must be a list of objects")
    return raw


def _string_list(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
        raise SeedError(f"{where} must be a list of non-empty strings")
    return list(raw)


def _text(raw: JSONObject, name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise SeedError(f"{where}.{name} must be a non-empty string")
    return value


def _optional_text(raw: JSONObject, name: str, where: str) -> str | None:
    if raw.get(name) is None:
        return None
    return _text(raw, name, where)
