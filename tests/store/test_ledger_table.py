"""The store's ledger table and its generated ledger key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from envsync.model import LedgerEntry
from envsync.store import Store

SERVICE = "render:service:srv-d0abc123def456ghi789"
SITE = "netlify:site:0b6a3f52-8e8e-4a55-9cf4-2d1a8c3a7d11"


def _entry(
    key: str, context: str | None, fill: str = "a", updated_at: str | None = None
) -> LedgerEntry:
    return LedgerEntry(key, context, fill * 64, updated_at, "2024-05-01T12:00:00+00:00")


def test_ledger_round_trip_with_none_context(store: Store) -> None:
    entries = [_entry("BRIDGE_VERSION", None), _entry("SR_MODE", None, "b")]

    store.save_ledger(SERVICE, entries, [])

    assert store.load_ledger(SERVICE) == {(entry.key, None): entry for entry in entries}


def test_ledger_round_trip_with_contexts(store: Store) -> None:
    entries = [
        _entry("BRIDGE_VERSION", "production", "a", "2024-01-01T00:00:00Z"),
        _entry("BRIDGE_VERSION", "branch:staging", "b", "2024-01-01T00:00:00Z"),
        _entry("BRIDGE_VERSION", "dev", "c"),
    ]

    store.save_ledger(SITE, entries, [])

    assert store.load_ledger(SITE) == {(entry.key, entry.context): entry for entry in entries}


def test_ledger_upsert_replaces_entry(store: Store) -> None:
    store.save_ledger(SERVICE, [_entry("BRIDGE_VERSION", None, "a")], [])

    store.save_ledger(SERVICE, [_entry("BRIDGE_VERSION", None, "b")], [])

    assert store.load_ledger(SERVICE)[("BRIDGE_VERSION", None)].value_hash == "b" * 64


def test_ledger_removal_of_none_context_slot(store: Store) -> None:
    store.save_ledger(SERVICE, [_entry("A_KEY", None), _entry("B_KEY", None)], [])

    store.save_ledger(SERVICE, [], [("A_KEY", None)])

    assert set(store.load_ledger(SERVICE)) == {("B_KEY", None)}


def test_ledger_removal_keeps_other_contexts(store: Store) -> None:
    store.save_ledger(SITE, [_entry("K", "production"), _entry("K", "deploy-preview")], [])

    store.save_ledger(SITE, [], [("K", "production")])

    assert set(store.load_ledger(SITE)) == {("K", "deploy-preview")}


def test_ledger_slot_in_upserts_and_removals_is_kept(store: Store) -> None:
    store.save_ledger(SERVICE, [_entry("K", None, "a")], [])

    store.save_ledger(SERVICE, [_entry("K", None, "b")], [("K", None)])

    assert store.load_ledger(SERVICE)[("K", None)].value_hash == "b" * 64


def test_ledger_is_separate_per_target(store: Store) -> None:
    store.save_ledger(SERVICE, [_entry("K", None)], [])

    assert store.load_ledger("render:service:srv-other") == {}


def test_generated_ledger_key_is_32_bytes(store: Store) -> None:
    assert len(store.get_or_create_ledger_key()) == 32


def test_generated_ledger_key_stable_across_opens(database_url: str) -> None:
    with Store.open(database_url) as store:
        first = store.get_or_create_ledger_key()

    with Store.open(database_url) as store:
        assert store.get_or_create_ledger_key() == first


def test_concurrent_first_ledger_key_calls_agree(store: Store) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(lambda _: store.get_or_create_ledger_key(), range(16)))

    assert len(keys) == 1
