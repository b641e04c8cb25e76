"""Opening the store: URLs, SQLite settings and migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from envsync.config import Settings
from envsync.errors import ConfigError, StoreError
from envsync.store import Store, open_store, resolve_database_url
from envsync.store.schema import VERSION_TABLE, metadata
from tests.store.processes import finish, read_line, start_together, start_worker


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://envsync@127.0.0.1:5432/state", "postgresql+psycopg"),
        ("postgres://envsync@127.0.0.1/state", "postgresql+psycopg"),
        ("postgresql+psycopg://envsync@127.0.0.1/state", "postgresql+psycopg"),
        ("sqlite:///state.db", "sqlite+pysqlite"),
        ("sqlite+pysqlite:///state.db", "sqlite+pysqlite"),
    ],
)
def test_database_url_driver(given: str, driver: str) -> None:
    assert resolve_database_url(given, cwd=Path("/srv")).drivername == driver


def test_relative_sqlite_path_resolves_against_cwd(tmp_path: Path) -> None:
    url = resolve_database_url("sqlite:///.envsync/state.db", cwd=tmp_path)

    assert url.database == str(tmp_path / ".envsync" / "state.db")


def test_absolute_sqlite_path_is_kept(tmp_path: Path) -> None:
    url = resolve_database_url(f"sqlite:///{tmp_path}/x.db", cwd=Path("/elsewhere"))

    assert url.database == f"{tmp_path}/x.db"


@pytest.mark.parametrize(
    "given",
    [
        "mysql://envsync:hunter2-password@db/state",
        "postgresql+psycopg2://envsync:hunter2-password@db/state",
        "sqlite://",
        "sqlite:///:memory:",
        "not a url hunter2-password",
    ],
)
def test_unsupported_database_url_is_config_error(given: str) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve_database_url(given)

    assert raised.value.setting == "ENVSYNC_DATABASE_URL"
    assert "hunter2-password" not in str(raised.value)


def test_default_url_creates_envsync_folder(tmp_path: Path) -> None:
    with Store.open("sqlite:///.envsync/state.db", cwd=tmp_path):
        pass

    assert (tmp_path / ".envsync" / "state.db").is_file()


def test_open_store_from_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'from-settings.db'}"
    settings = Settings(ENVSYNC_DATABASE_URL=url)  # type: ignore[call-arg]

    with open_store(settings) as store:
        assert store.ping()

    assert (tmp_path / "from-settings.db").is_file()


def test_unwritable_sqlite_folder_is_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be", encoding="utf-8")

    with pytest.raises(StoreError) as raised:
        Store.open(f"sqlite:///{blocker / 'state.db'}")

    assert "not-a-folder" in str(raised.value)


def test_sqlite_store_uses_wal_and_busy_timeout(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as store, store.engine.connect() as c:
        journal_mode = c.execute(text("PRAGMA journal_mode")).scalar()
        busy_timeout = c.execute(text("PRAGMA busy_timeout")).scalar()

    assert journal_mode == "wal"
    assert busy_timeout is not None and busy_timeout > 0


def test_store_repr_hides_url() -> None:
    url = "postgresql://envsync:hunter2-password@127.0.0.1:1/state"

    store = Store.open(url, migrate=False)

    assert "hunter2-password" not in repr(store)
    store.close()


def _schema_revision(store: Store) -> str | None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def test_migration_from_scratch_creates_every_table(database_url: str) -> None:
    with Store.open(database_url) as store:
        tables = set(inspect(store.engine).get_table_names())

    assert set(metadata.tables) <= tables
    assert VERSION_TABLE in tables


def test_migrated_schema_matches_metadata(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        differences = compare_metadata(context, metadata)

    assert differences == []


def test_second_open_keeps_schema_and_data(database_url: str) -> None:
    with Store.open(database_url) as store:
        first_revision = _schema_revision(store)
        key = store.get_or_create_ledger_key()

    with Store.open(database_url) as store:
        assert _schema_revision(store) == first_revision
        assert store.get_or_create_ledger_key() == key


def test_concurrent_migration_from_processes(database_url: str) -> None:
    workers = [start_worker("migrate", database_url) for _ in range(3)]

    start_together(workers)

    for worker in workers:
        assert read_line(worker) == "opened"
        finish(worker)
    with Store.open(database_url, migrate=False) as store:
        assert _schema_revision(store) is not None
        assert set(metadata.tables) <= set(inspect(store.engine).get_table_names())


def test_newer_schema_revision_is_store_error(database_url: str) -> None:
    with Store.open(database_url) as store, store.engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))

    with pytest.raises(StoreError) as raised:
        Store.open(database_url)

    assert "9999" in str(raised.value)
    assert "newer envsync" in str(raised.value)


def test_unreachable_database_open_is_store_error() -> None:
    with pytest.raises(StoreError) as raised:
        Store.open("postgresql://envsync:hunter2-password@127.0.0.1:1/state")

    assert "hunter2-password" not in str(raised.value)
    assert "ENVSYNC_DATABASE_URL" in str(raised.value)


def test_sqlite_read_not_blocked_by_open_write(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Store.open(f"sqlite:///{path}") as store:
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO envsync_meta (name, value) VALUES ('other', x'00')")
        try:
            # A read that took the write lock would wait for the busy timeout, then fail.
            runs = store.list_runs()
        finally:
            writer.execute("ROLLBACK")
            writer.close()

    assert runs == []


def test_ping_true_for_open_store(store: Store) -> None:
    assert store.ping() is True


def test_ping_false_when_database_unreachable(tmp_path: Path) -> None:
    # Port 1 on loopback refuses connections at once.
    store = Store.open("postgresql://envsync@127.0.0.1:1/state", migrate=False)

    assert store.ping() is False
    store.close()
