"""The ownership ledger: keyed hashes, the ENVSYNC_OWNERSHIP document and the backends."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from envsync.config import OWNERSHIP_KEY, Settings
from envsync.errors import ConfigError
from envsync.ledger import (
    DatabaseLedger,
    LedgerHasher,
    TargetLedger,
    decode_ownership,
    derive_ledger_key,
    encode_ownership,
    ledger_backend_from_settings,
    ledger_key_from_settings,
    merge_ownership,
    ownership_text,
    read_ownership,
)
from envsync.model import (
    LedgerEntry,
    LedgerSlot,
    RemoteState,
    RemoteValue,
    RemoteVariable,
    SecretValue,
    TargetRef,
)
from envsync.store import Store
from envsync.store.schema import metadata

KEY = b"k" * 32
SERVICE = TargetRef("render", "service", "srv-d0abc123def456ghi789", "api")
SITE = TargetRef("netlify", "site", "0b6a3f52-8e8e-4a55-9cf4-2d1a8c3a7d11", "web")
WRITTEN = "2024-05-01T12:00:00+00:00"


def _entry(key: str, context: str | None = None, value: str = "v", **fields: str) -> LedgerEntry:
    hasher = LedgerHasher(KEY)
    return LedgerEntry(
        key,
        context,
        hasher.hash(SecretValue(value)),
        fields.get("updated_at"),
        fields.get("written_at", WRITTEN),
    )


def _by_slot(entries: Iterable[LedgerEntry]) -> dict[LedgerSlot, LedgerEntry]:
    return {(entry.key, entry.context): entry for entry in entries}


# The hasher.


def test_hash_is_hex_hmac_sha256_of_utf8() -> None:
    value = "grüße"

    expected = hmac.new(KEY, value.encode("utf-8"), hashlib.sha256).hexdigest()

    assert LedgerHasher(KEY).hash(SecretValue(value)) == expected


@given(st.lists(st.text(), min_size=2, max_size=5))
def test_hasher_reuse_keeps_each_hash(values: list[str]) -> None:
    # One hasher hashes many values in turn; no value may leave state for the next.
    hasher = LedgerHasher(KEY)

    hashes = [hasher.hash(SecretValue(value)) for value in values]

    expected = [hmac.new(KEY, v.encode("utf-8"), hashlib.sha256).hexdigest() for v in values]
    assert hashes == expected


def test_fingerprint_form() -> None:
    hasher = LedgerHasher(KEY)
    value = SecretValue("hello")

    fingerprint = hasher.fingerprint(value)

    assert re.fullmatch(r"sha:[0-9a-f]{6} \(5 chars\)", fingerprint)
    assert fingerprint.startswith(f"sha:{hasher.hash(value)[:6]}")


def test_fingerprint_depends_on_key() -> None:
    value = SecretValue("1")

    first = LedgerHasher(b"a" * 32).fingerprint(value)
    second = LedgerHasher(b"b" * 32).fingerprint(value)

    assert first != second


def test_fingerprint_is_not_plain_sha256() -> None:
    value = SecretValue("1")

    unkeyed = hashlib.sha256(b"1").hexdigest()[:6]

    assert not LedgerHasher(KEY).fingerprint(value).startswith(f"sha:{unkeyed}")


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("right", True),
        ("wrong", False),
        ("", False),
    ],
)
def test_matches_compares_value_with_hash(candidate: str, expected: bool) -> None:
    hasher = LedgerHasher(KEY)
    stored = hasher.hash(SecretValue("right"))

    assert hasher.matches(SecretValue(candidate), stored) is expected


@pytest.mark.parametrize("stored", ["", "abc", "é" * 64, "z" * 64])
def test_matches_false_for_malformed_hash(stored: str) -> None:
    assert LedgerHasher(KEY).matches(SecretValue("v"), stored) is False


def test_matches_accepts_upper_case_hex() -> None:
    hasher = LedgerHasher(KEY)

    stored = hasher.hash(SecretValue("v")).upper()

    assert hasher.matches(SecretValue("v"), stored) is True


def test_hasher_repr_hides_key() -> None:
    assert "k" * 8 not in repr(LedgerHasher(KEY))


def test_short_ledger_key_is_rejected() -> None:
    with pytest.raises(ValueError):
        LedgerHasher(b"short")


def test_hasher_entry_records_hash_and_times() -> None:
    hasher = LedgerHasher(KEY)

    entry = hasher.entry("K", "dev", SecretValue("v"), updated_at="2024-01-01T00:00:00Z")

    assert entry.value_hash == hasher.hash(SecretValue("v"))
    assert entry.updated_at == "2024-01-01T00:00:00Z"
    assert entry.written_at.endswith("+00:00")


# The ledger key.


def test_derived_ledger_key_is_stable_32_bytes() -> None:
    first = derive_ledger_key("any string at all")

    assert len(first) == 32
    assert derive_ledger_key("any string at all") == first
    assert derive_ledger_key("another string") != first


class _KeyStore:
    def __init__(self) -> None:
        self.calls = 0

    def get_or_create_ledger_key(self) -> bytes:
        self.calls += 1
        return b"s" * 32


def _settings(**values: str) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_ledger_key_from_setting() -> None:
    settings = _settings(ENVSYNC_LEDGER_KEY="team secret")

    key = ledger_key_from_settings(settings, _KeyStore())

    assert key == derive_ledger_key("team secret")


def test_ledger_key_from_store_when_unset() -> None:
    store = _KeyStore()

    key = ledger_key_from_settings(_settings(), store)

    assert key == b"s" * 32
    assert store.calls == 1


def test_target_backend_requires_ledger_key() -> None:
    settings = _settings(ENVSYNC_LEDGER_BACKEND="target")

    with pytest.raises(ConfigError) as raised:
        ledger_key_from_settings(settings, _KeyStore())

    assert raised.value.setting == "ENVSYNC_LEDGER_KEY"
    assert "checkable from every machine" in str(raised.value)


def test_ledger_key_without_store_is_config_error() -> None:
    with pytest.raises(ConfigError):
        ledger_key_from_settings(_settings(), None)


# The ENVSYNC_OWNERSHIP document.


def test_ownership_round_trip_with_none_contexts() -> None:
    entries = [
        _entry("BRIDGE_VERSION", None, "1.2"),
        _entry("SR_MODE", None, "fast"),
    ]

    assert decode_ownership(encode_ownership(entries)) == _by_slot(entries)


def test_ownership_round_trip_keeps_contexts_and_updated_at() -> None:
    entries = [
        _entry("BRIDGE_VERSION", "production", "1", updated_at="2024-01-01T00:00:00.123Z"),
        _entry("BRIDGE_VERSION", "branch:staging", "2", updated_at="2024-01-01T00:00:00.123Z"),
        _entry("BRIDGE_VERSION", "dev", "3"),
    ]

    assert decode_ownership(encode_ownership(entries)) == _by_slot(entries)


def test_ownership_keeps_empty_updated_at() -> None:
    entry = _entry("K", "production", updated_at="")

    assert decode_ownership(encode_ownership([entry])) == {("K", "production"): entry}


def test_ownership_keeps_whole_seconds_of_written_at() -> None:
    entry = _entry("K", written_at="2024-05-01T12:00:00.987654+00:00")

    decoded = decode_ownership(encode_ownership([entry]))

    assert decoded[("K", None)].written_at == "2024-05-01T12:00:00+00:00"


def test_ownership_document_has_version() -> None:
    document = json.loads(encode_ownership([_entry("K")]))

    assert document["v"] == 1


def test_ownership_document_is_compact() -> None:
    entries = [_entry(f"BRIDGE_KEY_{index:04d}", None, str(index)) for index in range(100)]
    key_length = len("BRIDGE_KEY_0000")

    text = encode_ownership(entries)

    assert len(text) <= 100 * (key_length + 64)


def test_ownership_document_is_deterministic() -> None:
    entries = [
        _entry(f"K{index}", context, str(index))
        for index in range(20)
        for context in ("dev", "production")
    ]
    shuffled = entries[:]
    random.Random(7).shuffle(shuffled)

    assert encode_ownership(shuffled) == encode_ownership(entries)


def test_ownership_document_holds_no_value() -> None:
    canary = "canary-ownership-3c9e"

    text = encode_ownership([_entry("K", None, canary)])

    assert canary not in text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "not json",
        "[]",
        '{"v": 1}',
        '{"v": 1, "e": {}}',
        '{"v": 2, "e": []}',
        '{"e": []}',
        "null",
        '{"v": 1, "e": [["K"]]}',
    ],
)
def test_malformed_ownership_reads_as_empty(text: str) -> None:
    assert decode_ownership(text) == {}


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"v": 2, "e": []}', '{"v": 1, "e": [["K"]]}'],
)
def test_malformed_ownership_gives_warning(text: str) -> None:
    read = read_ownership(text)

    assert len(read.warnings) == 1
    assert OWNERSHIP_KEY in read.warnings[0]


def test_malformed_ownership_logs_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="envsync.ledger"):
        decode_ownership("{broken")

    assert any(OWNERSHIP_KEY in record.getMessage() for record in caplog.records)


def test_empty_ownership_has_no_warning() -> None:
    assert read_ownership(None).warnings == ()


def _good_item() -> list[object]:
    return json.loads(encode_ownership([_entry("GOOD")]))["e"][0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "bad_item",
    [
        "not a list",
        ["K"],
        ["", "A" * 43, 0],
        [5, "A" * 43, 0],
        ["K", "too short", 0],
        ["K", "!" * 43, 0],
        ["K", "A" * 43, -1],
        ["K", "A" * 43, True],
        ["K", "A" * 43, "0"],
        ["K", "A" * 43, 0, 5],
        ["K", "A" * 43, 0, ""],
        ["K", "A" * 43, 0, None, 7],
        ["K", "A" * 43, 0, None, None, "extra"],
    ],
)
def test_malformed_entry_skipped_others_kept(bad_item: object) -> None:
    text = json.dumps({"v": 1, "e": [_good_item(), bad_item]})

    read = read_ownership(text)

    assert set(read.entries) == {("GOOD", None)}
    assert len(read.warnings) == 1


def _iso_time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


entry_strategy = st.builds(
    LedgerEntry,
    key=st.text(min_size=1, max_size=40),
    context=st.one_of(st.none(), st.sampled_from(["production", "dev", "branch:staging"])),
    value_hash=st.binary(min_size=32, max_size=32).map(bytes.hex),
    updated_at=st.one_of(st.none(), st.text(max_size=30)),
    written_at=st.integers(min_value=0, max_value=4_102_444_800).map(_iso_time),
)


@given(st.lists(entry_strategy, max_size=20))
def test_ownership_round_trip_property(entries: list[LedgerEntry]) -> None:
    assert decode_ownership(encode_ownership(entries)) == _by_slot(entries)


@given(st.text())
def test_decode_never_raises(text: str) -> None:
    decode_ownership(text)


def test_merge_keeps_unmanaged_contexts() -> None:
    existing = encode_ownership([_entry("K", "production", "p"), _entry("K", "branch-deploy", "b")])

    merged = merge_ownership(existing, [_entry("K", "production", "new")], [])

    decoded = decode_ownership(merged)
    assert decoded[("K", "branch-deploy")] == _entry("K", "branch-deploy", "b")
    assert decoded[("K", "production")] == _entry("K", "production", "new")


def test_merge_applies_removals() -> None:
    existing = encode_ownership([_entry("A"), _entry("B")])

    merged = merge_ownership(existing, [], [("A", None)])

    assert set(decode_ownership(merged)) == {("B", None)}


def test_merge_upsert_wins_over_removal() -> None:
    merged = merge_ownership(None, [_entry("A", None, "x")], [("A", None)])

    assert decode_ownership(merged) == {("A", None): _entry("A", None, "x")}


def test_merge_over_malformed_document_keeps_upserts() -> None:
    merged = merge_ownership("{broken", [_entry("A")], [])

    assert decode_ownership(merged) == {("A", None): _entry("A")}


def test_merge_without_changes_keeps_text() -> None:
    existing = encode_ownership([_entry("A"), _entry("B", "dev")])

    assert merge_ownership(existing, [], []) == existing


# Reading the document from a target.


def _remote(target: TargetRef, *variables: RemoteVariable) -> RemoteState:
    return RemoteState(target, {variable.key: variable for variable in variables})


def _ownership_variable(*values: RemoteValue) -> RemoteVariable:
    return RemoteVariable(OWNERSHIP_KEY, values)


def test_ownership_text_from_render_variable() -> None:
    document = encode_ownership([_entry("A")])
    remote = _remote(SERVICE, _ownership_variable(RemoteValue(None, SecretValue(document))))

    assert ownership_text(remote) == (document, ())


def test_ownership_text_from_netlify_dev_context() -> None:
    document = encode_ownership([_entry("A", "production")])
    remote = _remote(
        SITE,
        _ownership_variable(
            RemoteValue("production", None),
            RemoteValue("dev", SecretValue(document)),
        ),
    )

    assert ownership_text(remote) == (document, ())


def test_ownership_text_without_variable() -> None:
    assert ownership_text(_remote(SITE)) == (None, ())


def test_ownership_text_without_dev_value_warns() -> None:
    remote = _remote(SITE, _ownership_variable(RemoteValue("production", None)))

    text, warnings = ownership_text(remote)

    assert text is None
    assert len(warnings) == 1


# The backends.


def test_target_ledger_loads_document_from_remote() -> None:
    entries = [_entry("A", "production"), _entry("B", "dev")]
    document = encode_ownership(entries)
    remote = _remote(SITE, _ownership_variable(RemoteValue("dev", SecretValue(document))))

    loaded = TargetLedger().load(SITE, remote)

    assert loaded == _by_slot(entries)


def test_target_ledger_document_merges_records() -> None:
    document = encode_ownership([_entry("KEEP", "branch-deploy"), _entry("GONE", "production")])
    remote = _remote(SITE, _ownership_variable(RemoteValue("dev", SecretValue(document))))
    ledger = TargetLedger()
    ledger.load(SITE, remote)

    ledger.record(SITE, [_entry("NEW", "production")], [("GONE", "production")])

    produce = ledger.ledger_document(SITE)
    assert produce is not None
    assert set(decode_ownership(produce())) == {("KEEP", "branch-deploy"), ("NEW", "production")}


def test_target_ledger_unchanged_needs_no_write() -> None:
    document = encode_ownership([_entry("A")])
    remote = _remote(SERVICE, _ownership_variable(RemoteValue(None, SecretValue(document))))
    ledger = TargetLedger()
    ledger.load(SERVICE, remote)

    assert ledger.needs_write(SERVICE) is False


def test_target_ledger_with_record_needs_write() -> None:
    ledger = TargetLedger()
    ledger.load(SERVICE, _remote(SERVICE))

    ledger.record(SERVICE, [_entry("A")], [])

    assert ledger.needs_write(SERVICE) is True


def test_target_ledger_warnings_from_malformed_document() -> None:
    remote = _remote(SERVICE, _ownership_variable(RemoteValue(None, SecretValue("{broken"))))
    ledger = TargetLedger()

    assert ledger.load(SERVICE, remote) == {}
    assert len(ledger.warnings(SERVICE)) == 1


def test_target_ledger_use_before_load_fails() -> None:
    with pytest.raises(RuntimeError):
        TargetLedger().document(SERVICE)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        yield store


def test_database_ledger_saves_each_record(sqlite_store: Store) -> None:
    ledger = DatabaseLedger(sqlite_store)
    ledger.record(SERVICE, [_entry("A"), _entry("B")], [])

    ledger.record(SERVICE, [], [("A", None)])

    assert ledger.load(SERVICE, _remote(SERVICE)) == {("B", None): _entry("B")}
    assert ledger.ledger_document(SERVICE) is None


def test_database_ledger_stores_no_value(sqlite_store: Store) -> None:
    canary = "canary-ledger-51d0"
    hasher = LedgerHasher(sqlite_store.get_or_create_ledger_key())
    entry = hasher.entry("BRIDGE_TOKEN", None, SecretValue(canary), updated_at=None)

    DatabaseLedger(sqlite_store).record(SERVICE, [entry], [])

    with sqlite_store.engine.connect() as connection:
        rows = [
            repr(tuple(row))
            for table in metadata.sorted_tables
            for row in connection.execute(select(table))
        ]
    assert rows
    assert not any(canary in row for row in rows)


def test_backend_from_settings_target() -> None:
    settings = _settings(ENVSYNC_LEDGER_BACKEND="target", ENVSYNC_LEDGER_KEY="x")

    assert isinstance(ledger_backend_from_settings(settings, None), TargetLedger)


def test_backend_from_settings_database(sqlite_store: Store) -> None:
    assert isinstance(ledger_backend_from_settings(_settings(), sqlite_store), DatabaseLedger)


def test_database_backend_without_store_is_config_error() -> None:
    with pytest.raises(ConfigError):
        ledger_backend_from_settings(_settings(), None)
