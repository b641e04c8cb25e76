"""Snapshots: encrypted previous values, unreadable without their key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from envsync.errors import StoreError
from envsync.model import RunMode, SecretValue
from envsync.store import RunTrigger, Store, derive_snapshot_key
from envsync.store.schema import metadata

CANARY = "canary-9f1c2e7d-value-that-must-never-be-stored"
SERVICE = "render:service:srv-d0abc123def456ghi789"


def _previous() -> dict[tuple[str, str | None], SecretValue | None]:
    return {
        ("BRIDGE_TOKEN", None): SecretValue(CANARY),
        ("BRIDGE_NEW", None): None,
        ("BRIDGE_QUOTE", "production"): SecretValue('line one\nline "two"'),
    }


def test_snapshot_round_trip(store: Store) -> None:
    key = Fernet.generate_key()
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)

    store.save_snapshot(run_id, SERVICE, _previous(), key)

    assert store.load_snapshot(run_id, SERVICE, key) == _previous()


def test_snapshot_saved_again_replaces_earlier(store: Store) -> None:
    key = Fernet.generate_key()
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)
    store.save_snapshot(run_id, SERVICE, _previous(), key)

    store.save_snapshot(run_id, SERVICE, {("ONLY", None): SecretValue("x")}, key)

    assert store.load_snapshot(run_id, SERVICE, key) == {("ONLY", None): SecretValue("x")}


def test_missing_snapshot_is_none(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)

    assert store.load_snapshot(run_id, SERVICE, Fernet.generate_key()) is None


def test_snapshot_unreadable_under_another_key(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)
    store.save_snapshot(run_id, SERVICE, _previous(), derive_snapshot_key("first"))

    with pytest.raises(StoreError) as raised:
        store.load_snapshot(run_id, SERVICE, derive_snapshot_key("second"))

    assert "ENVSYNC_SNAPSHOT_KEY" in str(raised.value)
    assert CANARY not in str(raised.value)


def _every_row_as_text(store: Store) -> str:
    dumped: list[str] = []
    with store.engine.connect() as connection:
        for table in metadata.sorted_tables:
            dumped.extend(repr(tuple(row)) for row in connection.execute(select(table)))
    return "\n".join(dumped)


def test_snapshot_plaintext_in_no_table(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)

    store.save_snapshot(run_id, SERVICE, _previous(), Fernet.generate_key())

    rows = _every_row_as_text(store)
    assert "envsync_snapshots" in metadata.tables
    assert CANARY not in rows
    assert "canary" not in rows


def test_snapshot_plaintext_not_in_sqlite_files(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)
        store.save_snapshot(run_id, SERVICE, _previous(), Fernet.generate_key())
        # Read the files while the store is open, so the write-ahead log is still there.
        contents = b"".join(path.read_bytes() for path in tmp_path.iterdir() if path.is_file())

    assert len(contents) > 0
    assert CANARY.encode() not in contents


@pytest.mark.parametrize("secret", ["a passphrase", Fernet.generate_key().decode()])
def test_derived_snapshot_key_is_a_fernet_key(secret: str) -> None:
    key = derive_snapshot_key(secret)

    assert Fernet(key).decrypt(Fernet(key).encrypt(b"x")) == b"x"


def test_fernet_key_is_used_as_is() -> None:
    key = Fernet.generate_key()

    assert derive_snapshot_key(key) == key
    assert derive_snapshot_key(key.decode()) == key


def test_snapshot_under_setting_text(store: Store) -> None:
    run_id = store.start_run(RunTrigger.CLI, RunMode.ENFORCE)

    store.save_snapshot(run_id, SERVICE, _previous(), "the ENVSYNC_SNAPSHOT_KEY text")

    loaded = store.load_snapshot(
        run_id, SERVICE, derive_snapshot_key("the ENVSYNC_SNAPSHOT_KEY text")
    )
    assert loaded == _previous()


def test_derived_snapshot_key_is_stable() -> None:
    assert derive_snapshot_key("shared secret") == derive_snapshot_key("shared secret")


def test_empty_snapshot_key_is_rejected() -> None:
    with pytest.raises(ValueError):
        derive_snapshot_key("")
