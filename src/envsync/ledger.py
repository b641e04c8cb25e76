"""The ownership ledger: what envsync last wrote or adopted, per target, key and context.

An entry stores an HMAC-SHA256 of the value under the ledger key, never the value. The
masked fingerprints shown in diffs are prefixes of the same keyed hash, so a short value
cannot be found by hashing guesses without the key.

The ledger lives in one of two places (ENVSYNC_LEDGER_BACKEND):

- `database` (the default): the store's ledger table.
- `target`: the target itself, in the variable ENVSYNC_OWNERSHIP, as compact JSON. CI runs
  that start with no local state still know what they own. The hashes must be checkable
  from any machine, so this backend requires ENVSYNC_LEDGER_KEY.

The ENVSYNC_OWNERSHIP document is `{"v": 1, "e": [ENTRY, ...]}`, with each entry an array
`[key, hash, written, context, updated_at]`:

- `hash` is the 32-byte HMAC in unpadded base64url (43 characters).
- `written` is the write time in whole Unix seconds.
- `context` is null on Render, and trailing nulls are left out.

A Render entry takes about 60 bytes plus its key. Entries are sorted, so the same ledger
always gives the same text and an unchanged ledger is never rewritten.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envsync.config import OWNERSHIP_KEY
from envsync.errors import ConfigError
from envsync.model import LedgerEntry, LedgerSlot, RemoteState, SecretValue, TargetRef

if TYPE_CHECKING:
    from envsync.config import Settings
    from envsync.providers.base import LedgerDocument

logger = logging.getLogger(__name__)

OWNERSHIP_FORMAT_VERSION = 1
HASH_BYTES = 32

# The context of ENVSYNC_OWNERSHIP's value, per provider. Netlify keeps a secret's
# values readable through the API only in the `dev` context (Netlify docs, "Secrets
# Controller"), so the document lives there whatever kind of variable it is. Render has no
# contexts.
OWNERSHIP_CONTEXTS: Mapping[str, str | None] = {"render": None, "netlify": "dev"}


class LedgerHasher:
    """Keyed hashes of values: what the ledger stores and what diffs show."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a ledger key needs at least 16 bytes")
        # Copying an HMAC that has taken the key in is cheaper than keying a new one, and a
        # plan hashes every owned value.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def hash(self, value: SecretValue) -> str:
        """Return the hex HMAC-SHA256 of the value's UTF-8 bytes."""
        digest = self._keyed.copy()
        digest.update(value.reveal().encode("utf-8"))
        return digest.hexdigest()

    def fingerprint(self, value: SecretValue) -> str:
        """Return the masked form shown in diffs, such as `sha:3f2a9c (5 chars)`."""
        return f"sha:{self.hash(value)[:6]} ({len(value)} chars)"

    def matches(self, value: SecretValue, value_hash: str) -> bool:
        """Check in constant time whether `value_hash` is this value's hash."""
        if not value_hash.isascii():
            return False
        return hmac.compare_digest(self.hash(value), value_hash.lower())

    def entry(
        self,
        key: str,
        context: str | None,
        value: SecretValue,
        *,
        updated_at: str | None,
        written_at: datetime | None = None,
    ) -> LedgerEntry:
        """Build the ledger entry for a value envsync wrote or adopted."""
        written = written_at or datetime.now(UTC)
        return LedgerEntry(key, context, self.hash(value), updated_at, written.isoformat())

    def __repr__(self) -> str:
        return "LedgerHasher(<key hidden>)"


def derive_ledger_key(secret: str) -> bytes:
    """Derive the 32-byte HMAC key from ENVSYNC_LEDGER_KEY, which may be any string.

    It uses HKDF-SHA256 (RFC 5869) without salt and with the info label `envsync ledger
    key`, so every machine given the same string computes the same hashes.
    """
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"envsync ledger key")
    return derived.derive(secret.encode("utf-8"))


class LedgerKeySource(Protocol):
    def get_or_create_ledger_key(self) -> bytes: ...


def ledger_key_from_settings(settings: Settings, store: LedgerKeySource | None) -> bytes:
    """Return the ledger key: derived from ENVSYNC_LEDGER_KEY, else the store's generated key.

    Raises ConfigError when the target backend is chosen without ENVSYNC_LEDGER_KEY, and
    when there is neither a key nor a store to keep a generated one.
    """
    secret = settings.ledger_key.get_secret_value() if settings.ledger_key is not None else ""
    if secret:
        return derive_ledger_key(secret)

    if settings.ledger_backend == "target":
        raise ConfigError(
            "ENVSYNC_LEDGER_KEY",
            "is required when ENVSYNC_LEDGER_BACKEND=target, because the hashes stored on "
            "the target must be checkable from every machine that runs envsync",
            hint="set ENVSYNC_LEDGER_KEY to the same long random string everywhere",
        )
    if store is None:
        raise ConfigError(
            "ENVSYNC_LEDGER_KEY",
            "is not set and no store is open to keep a generated key",
            hint="set ENVSYNC_LEDGER_KEY, or open the store first",
        )
    return store.get_or_create_ledger_key()


# The ENVSYNC_OWNERSHIP document.


@dataclass(frozen=True, slots=True)
class OwnershipRead:
    """The entries of an ENVSYNC_OWNERSHIP document, and what was wrong with it."""

    entries: dict[LedgerSlot, LedgerEntry] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def encode_ownership(entries: Iterable[LedgerEntry]) -> str:
    """Encode ledger entries as the compact ENVSYNC_OWNERSHIP document.

    `written_at` keeps whole seconds only. A later entry for the same slot wins.
    """
    by_slot = {(entry.key, entry.context): entry for entry in entries}
    ordered = sorted(by_slot.values(), key=lambda entry: (entry.key, entry.context or ""))
    document = {"v": OWNERSHIP_FORMAT_VERSION, "e": [_encode_entry(entry) for entry in ordered]}
    return json.dumps(document, separators=(",", ":"))


def _encode_entry(entry: LedgerEntry) -> list[Any]:
    digest = bytes.fromhex(entry.value_hash)
    if len(digest) != HASH_BYTES:
        raise ValueError(f"the ledger hash of {entry.key} is not {HASH_BYTES} bytes")

    encoded_hash = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    fields: list[Any] = [
        entry.key,
        encoded_hash,
        _epoch_seconds(entry.written_at),
        entry.context,
        entry.updated_at,
    ]
    while fields[-1] is None:
        fields.pop()
    return fields


def _epoch_seconds(iso_time: str) -> int:
    moment = datetime.fromisoformat(iso_time)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def read_ownership(text: str | None) -> OwnershipRead:
    """Decode an ENVSYNC_OWNERSHIP document without ever raising.

    A document that is not valid JSON, or has an unknown version, counts as empty, and a
    malformed entry is skipped. Either way the result carries a warning, and the keys
    involved count as not owned, so envsync never deletes them (the safe direction).
    """
    if text is None or not text.strip():
        return OwnershipRead()

    try:
        document = json.loads(text)
    except ValueError:
        return _unreadable("is not valid JSON")
    if not isinstance(document, dict) or not isinstance(document.get("e"), list):
        return _unreadable("is not an object with an entry list")
    if document.get("v") != OWNERSHIP_FORMAT_VERSION:
        return _unreadable(
            f"has format version {document.get('v')!r}; this envsync reads version "
            f"{OWNERSHIP_FORMAT_VERSION}"
        )

    entries: dict[LedgerSlot, LedgerEntry] = {}
    skipped = 0
    for item in document["e"]:
        entry = _decode_entry(item)
        if entry is None:
            skipped += 1
            continue
        entries[(entry.key, entry.context)] = entry

    if not skipped:
        return OwnershipRead(entries)
    warning = (
        f"{OWNERSHIP_KEY}: {skipped} malformed entries were ignored, so their keys count as "
        "not owned by envsync"
    )
    logger.warning("%s", warning)
    return OwnershipRead(entries, (warning,))


def _unreadable(problem: str) -> OwnershipRead:
    warning = (
        f"{OWNERSHIP_KEY} {problem}, so it is read as empty and no key counts as owned by "
        "envsync; the next apply writes it again"
    )
    logger.warning("%s", warning)
    return OwnershipRead(warnings=(warning,))


def _decode_entry(item: Any) -> LedgerEntry | None:
    if not isinstance(item, list) or not 3 <= len(item) <= 5:
        return None

    key, encoded_hash, written, *rest = item
    context = rest[0] if rest else None
    updated_at = rest[1] if len(rest) > 1 else None
    if not isinstance(key, str) or not key:
        return None
    if not (context is None or (isinstance(context, str) and context)):
        return None
    if not (updated_at is None or isinstance(updated_at, str)):
        return None
    if isinstance(written, bool) or not isinstance(written, int) or written < 0:
        return None

    value_hash = _decode_hash(encoded_hash)
    if value_hash is None:
        return None
    written_at = datetime.fromtimestamp(written, UTC).isoformat()
    return LedgerEntry(key, context, value_hash, updated_at, written_at)


def _decode_hash(encoded: Any) -> str | None:
    if not isinstance(encoded, str) or not encoded.isascii():
        return None
    try:
        digest = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(digest) != HASH_BYTES:
        return None
    return digest.hex()


def decode_ownership(text: str | None) -> dict[LedgerSlot, LedgerEntry]:
    """Decode an ENVSYNC_OWNERSHIP document, logging a warning for a malformed one, which
    counts as empty."""
    return read_ownership(text).entries


def merge_ownership(
    existing_text: str | None,
    upserts: Iterable[LedgerEntry],
    removals: Iterable[LedgerSlot],
) -> str:
    """Apply one run's ledger changes to the document found on the target.

    Entries this run does not touch stay, such as those of Netlify contexts that another
    target manages on the same site. Removals apply first, so a slot in both is kept with
    its upserted entry.
    """
    entries = dict(read_ownership(existing_text).entries)
    for slot in removals:
        entries.pop(slot, None)
    for entry in upserts:
        entries[(entry.key, entry.context)] = entry
    return encode_ownership(entries.values())


def ownership_text(remote: RemoteState) -> tuple[str | None, tuple[str, ...]]:
    """Return the ENVSYNC_OWNERSHIP text that a complete read of a target found, with warnings.

    The text is None when the target has no such variable or its value cannot be read.
    """
    variable = remote.variables.get(OWNERSHIP_KEY)
    if variable is None:
        return None, ()

    context = OWNERSHIP_CONTEXTS.get(remote.target.provider)
    found = variable.value_for(context)
    if found is not None and found.value is not None:
        return found.value.reveal(), ()

    where = f"in the {context} context" if context else "readable"
    warning = (
        f"{OWNERSHIP_KEY} exists on {remote.target.name} but has no value {where}, so no key "
        "counts as owned by envsync; the next apply writes it again"
    )
    logger.warning("%s", warning)
    return None, (warning,)


# Backends.


class LedgerStore(Protocol):
    def load_ledger(self, ledger_id: str) -> dict[LedgerSlot, LedgerEntry]: ...

    def save_ledger(
        self,
        ledger_id: str,
        upserts: Iterable[LedgerEntry],
        removals: Iterable[LedgerSlot],
    ) -> None: ...


class LedgerBackend(Protocol):
    """The storage of a target's ledger. Methods are synchronous, and the database backend
    does I/O, so async callers use `asyncio.to_thread`.

    The engine calls `load` after a complete read of the target, `record` after each write
    the platform confirmed, and passes `ledger_document(target)` to the provider's writer,
    which writes ENVSYNC_OWNERSHIP when it is not None.
    """

    def load(self, target: TargetRef, remote: RemoteState) -> dict[LedgerSlot, LedgerEntry]: ...

    def warnings(self, target: TargetRef) -> tuple[str, ...]: ...

    def record(
        self,
        target: TargetRef,
        upserts: Iterable[LedgerEntry],
        removals: Iterable[LedgerSlot],
    ) -> None: ...

    def ledger_document(self, target: TargetRef) -> LedgerDocument | None: ...

    def needs_write(self, target: TargetRef) -> bool: ...


class DatabaseLedger:
    """The ledger in the store's table, where every record is saved at once."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store

    def load(self, target: TargetRef, remote: RemoteState) -> dict[LedgerSlot, LedgerEntry]:
        return self._store.load_ledger(target.ledger_id)

    def warnings(self, target: TargetRef) -> tuple[str, ...]:
        return ()

    def record(
        self,
        target: TargetRef,
        upserts: Iterable[LedgerEntry],
        removals: Iterable[LedgerSlot],
    ) -> None:
        self._store.save_ledger(target.ledger_id, upserts, removals)

    def ledger_document(self, target: TargetRef) -> LedgerDocument | None:
        return None

    def needs_write(self, target: TargetRef) -> bool:
        return False


@dataclass(slots=True)
class _TargetDraft:
    """One target's document as read, and the changes recorded since."""

    existing_text: str | None
    warnings: tuple[str, ...]
    upserts: dict[LedgerSlot, LedgerEntry] = field(default_factory=dict)
    removals: set[LedgerSlot] = field(default_factory=set)


class TargetLedger:
    """The ledger in each target's ENVSYNC_OWNERSHIP variable.

    `load` keeps the document it read, `record` collects changes, and `document` merges
    them into the text to write. One instance may serve several targets at once, because
    the per-target lock lets only one apply of a target run at a time.
    """

    def __init__(self) -> None:
        self._drafts: dict[str, _TargetDraft] = {}

    def load(self, target: TargetRef, remote: RemoteState) -> dict[LedgerSlot, LedgerEntry]:
        text, read_warnings = ownership_text(remote)
        decoded = read_ownership(text)
        warnings = read_warnings + decoded.warnings
        self._drafts[target.ledger_id] = _TargetDraft(text, warnings)
        return dict(decoded.entries)

    def warnings(self, target: TargetRef) -> tuple[str, ...]:
        return self._draft(target).warnings

    def record(
        self,
        target: TargetRef,
        upserts: Iterable[LedgerEntry],
        removals: Iterable[LedgerSlot],
    ) -> None:
        draft = self._draft(target)
        for slot in removals:
            draft.upserts.pop(slot, None)
            draft.removals.add(slot)
        for entry in upserts:
            slot = (entry.key, entry.context)
            draft.removals.discard(slot)
            draft.upserts[slot] = entry

    def document(self, target: TargetRef) -> str:
        """Build the ENVSYNC_OWNERSHIP text: the document read at `load` with every record since."""
        draft = self._draft(target)
        return merge_ownership(draft.existing_text, draft.upserts.values(), draft.removals)

    def needs_write(self, target: TargetRef) -> bool:
        """Check whether `document` differs from the text on the target, so a write is due."""
        return self.document(target) != self._draft(target).existing_text

    def ledger_document(self, target: TargetRef) -> LedgerDocument | None:
        return lambda: self.document(target)

    def _draft(self, target: TargetRef) -> _TargetDraft:
        draft = self._drafts.get(target.ledger_id)
        if draft is None:
            raise RuntimeError(f"the ledger of {target.name} was not loaded before use")
        return draft


def ledger_backend_from_settings(settings: Settings, store: LedgerStore | None) -> LedgerBackend:
    """Create the backend that ENVSYNC_LEDGER_BACKEND names."""
    if settings.ledger_backend == "target":
        return TargetLedger()
    if store is None:
        raise ConfigError(
            "ENVSYNC_LEDGER_BACKEND",
            "is database, but no store is open",
            hint="open the store first, or set ENVSYNC_LEDGER_BACKEND=target",
        )
    return DatabaseLedger(store)
