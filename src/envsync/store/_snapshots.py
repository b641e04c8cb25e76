"""Snapshots: per run and target, the previous values of the keys the run changed, and
the values it wrote (a Netlify secret cannot be read back, so its rollback needs them).

A snapshot is stored only as a Fernet token (AES-128-CBC with an HMAC-SHA256, from the
`cryptography` package), so no plaintext value reaches the database. Without
ENVSYNC_SNAPSHOT_KEY no snapshot is taken; callers check `snapshot_key_from_settings`
first.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from envsync.errors import StoreError
from envsync.model import LedgerSlot, SecretValue
from envsync.store._base import StoreBase, upsert_insert
from envsync.store.schema import snapshots

if TYPE_CHECKING:
    from envsync.config import Settings

SNAPSHOT_FORMAT_VERSION = 1


def derive_snapshot_key(secret: str | bytes) -> bytes:
    """Return the Fernet key for ENVSYNC_SNAPSHOT_KEY, which may be any non-empty string.

    A Fernet key (32 bytes in base64url, as `Fernet.generate_key()` makes) is used as it
    is. Any other string is stretched to 32 bytes with HKDF-SHA256 (RFC 5869) without salt,
    so a passphrase works too. Either way, every machine given the same string gets the same
    key.
    """
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not raw:
        raise ValueError("the snapshot key is empty")
    if _is_fernet_key(raw):
        return raw

    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"envsync snapshot key")
    return base64.urlsafe_b64encode(derived.derive(raw))


def _is_fernet_key(raw: bytes) -> bool:
    if len(raw) != 44:
        return False
    try:
        return len(base64.urlsafe_b64decode(raw)) == 32
    except (binascii.Error, ValueError):
        return False


def snapshot_key_from_settings(settings: Settings) -> bytes | None:
    """Return the Fernet key from ENVSYNC_SNAPSHOT_KEY, or None when snapshots are off."""
    if settings.snapshot_key is None or not settings.snapshot_key.get_secret_value():
        return None
    return derive_snapshot_key(settings.snapshot_key.get_secret_value())


class SnapshotQueries(StoreBase):
    def save_snapshot(
        self,
        run_id: str,
        ledger_id: str,
        previous: Mapping[LedgerSlot, SecretValue | None],
        fernet_key: str | bytes,
        *,
        written: Mapping[LedgerSlot, SecretValue | None] | None = None,
    ) -> None:
        """Encrypt and store the previous values of one target's changed keys.

        A value of None means the key did not exist before the run (or, for a Netlify
        secret, that its value could not be read). `written` contains the values the run set
        out to write, None for a deletion. Saving again for the same run and target
        replaces the earlier snapshot. `fernet_key` is a Fernet key or the text of
        ENVSYNC_SNAPSHOT_KEY, as `derive_snapshot_key` accepts.
        """
        fernet = Fernet(derive_snapshot_key(fernet_key))
        token = fernet.encrypt(_encode_previous(previous)).decode("ascii")
        written_token = (
            None if written is None else fernet.encrypt(_encode_previous(written)).decode("ascii")
        )
        row = {
            "run_id": run_id,
            "ledger_id": ledger_id,
            "token": token,
            "created_at": datetime.now(UTC),
            "written_token": written_token,
        }
        with self._writing("save a snapshot") as connection:
            insert = upsert_insert(connection, snapshots)
            statement = insert.on_conflict_do_update(
                index_elements=[snapshots.c.run_id, snapshots.c.ledger_id],
                set_={
                    "token": insert.excluded.token,
                    "created_at": insert.excluded.created_at,
                    "written_token": insert.excluded.written_token,
                },
            )
            connection.execute(statement, row)

    def load_snapshot(
        self, run_id: str, ledger_id: str, fernet_key: str | bytes
    ) -> dict[LedgerSlot, SecretValue | None] | None:
        """Decrypt one target's snapshot of a run, or return None when the run took none.

        Raises StoreError when the snapshot was taken under another key.
        """
        query = select(snapshots.c.token).where(
            snapshots.c.run_id == run_id, snapshots.c.ledger_id == ledger_id
        )
        with self._reading("load a snapshot") as connection:
            token = connection.execute(query).scalar_one_or_none()
        if token is None:
            return None
        return _decrypt(token, run_id, ledger_id, fernet_key)

    def load_snapshot_written(
        self, run_id: str, ledger_id: str, fernet_key: str | bytes
    ) -> dict[LedgerSlot, SecretValue | None] | None:
        """Decrypt the values one run wrote to one target, or return None when unknown.

        They are unknown when the run took no snapshot, or took it before envsync kept
        written values. Raises StoreError when they were stored under another key.
        """
        query = select(snapshots.c.written_token).where(
            snapshots.c.run_id == run_id, snapshots.c.ledger_id == ledger_id
        )
        with self._reading("load a snapshot") as connection:
            token = connection.execute(query).scalar_one_or_none()
        if token is None:
            return None
        return _decrypt(token, run_id, ledger_id, fernet_key)


def _decrypt(
    token: str, run_id: str, ledger_id: str, fernet_key: str | bytes
) -> dict[LedgerSlot, SecretValue | None]:
    try:
        plaintext = Fernet(derive_snapshot_key(fernet_key)).decrypt(token.encode("ascii"))
    except InvalidToken:
        raise StoreError(
            f"the snapshot of run {run_id} for {ledger_id} cannot be decrypted",
            hint="it was taken under another ENVSYNC_SNAPSHOT_KEY; set the key it was "
            "taken with to roll it back",
            target=ledger_id,
        ) from None
    return _decode_previous(plaintext)


def _encode_previous(previous: Mapping[LedgerSlot, SecretValue | None]) -> bytes:
    entries = [
        [key, context, None if value is None else value.reveal()]
        for (key, context), value in previous.items()
    ]
    document = {"v": SNAPSHOT_FORMAT_VERSION, "entries": entries}
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def _decode_previous(plaintext: bytes) -> dict[LedgerSlot, SecretValue | None]:
    document: Any = json.loads(plaintext)
    if document.get("v") != SNAPSHOT_FORMAT_VERSION:
        raise StoreError(
            f"a snapshot has format version {document.get('v')!r}, which this envsync cannot "
            f"read (it reads version {SNAPSHOT_FORMAT_VERSION})",
            hint="roll back with the envsync version that took the snapshot",
        )
    previous: dict[LedgerSlot, SecretValue | None] = {}
    for key, context, value in document["entries"]:
        previous[(key, context)] = None if value is None else SecretValue(value)
    return previous
