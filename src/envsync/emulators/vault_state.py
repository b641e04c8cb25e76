"""The Vault emulator's state: KV v2 secrets with versions, per namespace and mount.

The seed form is `{"tokens": [...], "mounts": {"secret": {"envsync": {"K": "V"}}}}`: each
path's data becomes version 1 in the root namespace. Two extra fields round-trip what
that form cannot hold: `namespaces` (`{"team-a": {"mounts": {...}}}`) and `history`
(`{namespace: {mount: {path: metadata with every version}}}`, root namespace `""`), which
`GET /_emulator/state` fills so that deleted and destroyed versions survive a reload.
`mounts` shows only secrets whose current version is readable.

Every namespace has the mounts that the root namespace's seed names, empty unless seeded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envsync.emulators.common import JSONObject, SeedError
from envsync.emulators.ids import timestamp

# Vault keeps 10 versions of a secret when neither the mount nor the secret sets a limit.
DEFAULT_MAX_VERSIONS = 10
ROOT_NAMESPACE = ""


def vault_time() -> str:
    return timestamp(digits=9)


@dataclass(slots=True)
class Version:
    data: JSONObject | None
    created_time: str
    deletion_time: str = ""
    destroyed: bool = False

    @property
    def readable(self) -> bool:
        return not self.destroyed and not self.deletion_time

    def metadata(self) -> JSONObject:
        return {
            "created_time": self.created_time,
            "deletion_time": self.deletion_time,
            "destroyed": self.destroyed,
        }


@dataclass(slots=True)
class Secret:
    """One KV v2 path: its versions and metadata."""

    created_time: str
    updated_time: str
    versions: dict[int, Version] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: str = "0s"
    custom_metadata: dict[str, str] | None = None

    def write(self, data: JSONObject) -> Version:
        """Store data as a new version and drop the oldest beyond the version limit.

        As in Vault's KV v2 plugin (`AddVersion`), `oldest_version` stays 0 until the
        first version is dropped, and it then names the oldest version kept.
        """
        now = vault_time()
        self.current_version += 1
        version = Version(data=data, created_time=now)
        self.versions[self.current_version] = version
        self.updated_time = now

        limit = self.max_versions or DEFAULT_MAX_VERSIONS
        if self.current_version - self.oldest_version >= limit:
            newest_dropped = self.current_version - limit
            for number in range(self.oldest_version, newest_dropped + 1):
                self.versions.pop(number, None)
            self.oldest_version = newest_dropped + 1
        return version

    def version_metadata(self, number: int) -> JSONObject:
        version = self.versions[number]
        return {
            "created_time": version.created_time,
            "custom_metadata": self.custom_metadata,
            "deletion_time": version.deletion_time,
            "destroyed": version.destroyed,
            "version": number,
        }

    def metadata(self) -> JSONObject:
        return {
            "cas_required": self.cas_required,
            "created_time": self.created_time,
            "current_version": self.current_version,
            "custom_metadata": self.custom_metadata,
            "delete_version_after": self.delete_version_after,
            "max_versions": self.max_versions,
            "oldest_version": self.oldest_version,
            "updated_time": self.updated_time,
            "versions": {str(n): v.metadata() for n, v in sorted(self.versions.items())},
        }


Mounts = dict[str, dict[str, Secret]]


@dataclass(slots=True)
class VaultState:
    tokens: list[str] = field(default_factory=list)
    mount_names: list[str] = field(default_factory=list)
    namespaces: dict[str, Mounts] = field(default_factory=dict)

    def mounts(self, namespace: str) -> Mounts:
        """Return a namespace's mounts, creating the namespace with empty mounts when new."""
        mounts = self.namespaces.get(namespace)
        if mounts is None:
            mounts = {name: {} for name in self.mount_names}
            self.namespaces[namespace] = mounts
        return mounts


def new_secret(data: JSONObject) -> Secret:
    now = vault_time()
    secret = Secret(created_time=now, updated_time=now)
    secret.write(data)
    return secret


def load_vault_seed(document: Mapping[str, Any]) -> VaultState:
    """Build the state from the seed form; raise SeedError naming the offending field."""
    state = VaultState()
    tokens = document.get("tokens", [])
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise SeedError("vault.tokens must be a list of non-empty strings")
    state.tokens = list(tokens)

    root = _load_mounts(document.get("mounts", {}), "vault.mounts")
    state.mount_names = list(root)
    state.namespaces[ROOT_NAMESPACE] = root

    namespaces = document.get("namespaces", {})
    if not isinstance(namespaces, dict):
        raise SeedError('vault.namespaces must map namespace names to {"mounts": ...}')
    for name, part in namespaces.items():
        where = f"vault.namespaces.{name}"
        if not isinstance(part, dict):
            raise SeedError(f'{where} must be an object with "mounts"')
        mounts = state.mounts(name.strip("/"))
        mounts.update(_load_mounts(part.get("mounts", {}), f"{where}.mounts"))

    _load_history(state, document.get("history", {}))
    return state


def dump_vault_state(state: VaultState) -> JSONObject:
    dumped: JSONObject = {
        "tokens": list(state.tokens),
        "mounts": _dump_mounts(state.namespaces.get(ROOT_NAMESPACE, {})),
        "namespaces": {
            name: {"mounts": _dump_mounts(mounts)}
            for name, mounts in state.namespaces.items()
            if name != ROOT_NAMESPACE
        },
        "history": {
            name: {
                mount: {path: _dump_history(secret) for path, secret in secrets.items()}
                for mount, secrets in mounts.items()
            }
            for name, mounts in state.namespaces.items()
        },
    }
    return dumped


def _dump_mounts(mounts: Mounts) -> JSONObject:
    shown: JSONObject = {}
    for mount, secrets in mounts.items():
        shown[mount] = {}
        for path, secret in secrets.items():
            current = secret.versions.get(secret.current_version)
            if current is not None and current.readable:
                shown[mount][path] = current.data
    return shown


def _dump_history(secret: Secret) -> JSONObject:
    metadata = secret.metadata()
    metadata["versions"] = {
        str(number): {**version.metadata(), "data": version.data}
        for number, version in sorted(secret.versions.items())
    }
    return metadata


def _load_mounts(raw: Any, where: str) -> Mounts:
    if not isinstance(raw, dict):
        raise SeedError(f"{where} must map mount names to {{path: data}} objects")
    mounts: Mounts = {}
    for mount, secrets in raw.items():
        if not isinstance(secrets, dict):
            raise SeedError(f"{where}.{mount} must map secret paths to data objects")
        mounts[mount] = {}
        for path, data in secrets.items():
            if not isinstance(data, dict):
                raise SeedError(f"{where}.{mount}.{path} must be a JSON object of fields")
            mounts[mount][path.strip("/")] = new_secret(data)
    return mounts


def _load_history(state: VaultState, raw: Any) -> None:
    if not isinstance(raw, dict):
        raise SeedError("vault.history must map namespaces to mounts to paths")
    for namespace, mounts in raw.items():
        if not isinstance(mounts, dict):
            raise SeedError(f"vault.history.{namespace!r} must map mounts to paths")
        target = state.mounts(namespace.strip("/"))
        for mount, secrets in mounts.items():
            if not isinstance(secrets, dict):
                raise SeedError(f"vault.history.{namespace!r}.{mount} must map paths")
            for path, history in secrets.items():
                where = f"vault.history.{namespace!r}.{mount}.{path}"
                target.setdefault(mount, {})[path.strip("/")] = _load_secret_history(history, where)
        for mount in mounts:
            if mount not in state.mount_names:
                state.mount_names.append(mount)


def _load_secret_history(raw: Any, where: str) -> Secret:
    if not isinstance(raw, dict) or not isinstance(raw.get("versions"), dict):
        raise SeedError(f'{where} must be metadata with a "versions" object')
    try:
        versions = {
            int(number): Version(
                data=entry.get("data"),
                created_time=str(entry["created_time"]),
                deletion_time=str(entry.get("deletion_time") or ""),
                destroyed=bool(entry.get("destroyed", False)),
            )
            for number, entry in raw["versions"].items()
        }
        secret = Secret(
            created_time=str(raw["created_time"]),
            updated_time=str(raw.get("updated_time") or raw["created_time"]),
            versions=versions,
            current_version=int(raw["current_version"]),
            oldest_version=int(raw.get("oldest_version", _oldest_kept(versions))),
            max_versions=int(raw.get("max_versions") or 0),
            cas_required=bool(raw.get("cas_required", False)),
            delete_version_after=str(raw.get("delete_version_after") or "0s"),
            custom_metadata=raw.get("custom_metadata"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SeedError(f"{where} is not valid secret metadata: {error}") from None
    return secret


def _oldest_kept(versions: Mapping[int, Version]) -> int:
    """Return Vault's `oldest_version` for a history that leaves it out: 0 unless pruned."""
    if not versions or 1 in versions:
        return 0
    return min(versions)
