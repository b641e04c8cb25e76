"""Connect to the store's database and bring its schema up to date.

`ENVSYNC_DATABASE_URL` names either a SQLite file (`sqlite:///relative/path.db` is relative
to the working directory, `sqlite:////absolute/path.db` is absolute) or a PostgreSQL
database (`postgresql://user@host/db`, reached through psycopg 3). Its value is a
credential, so no message here shows it.

SQLite runs in WAL mode with a busy timeout, so that several processes on one machine can
share one file. Every writing transaction starts with `BEGIN IMMEDIATE`: a deferred
transaction that reads first and writes later can fail at once with "database is locked"
when another connection wrote in between, and the busy timeout does not help there
(SQLite documentation, "Isolation In SQLite" and `sqlite3_busy_timeout`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from envsync.errors import ConfigError, StoreError
from envsync.store.schema import VERSION_TABLE

logger = logging.getLogger(__name__)

DATABASE_URL_SETTING = "ENVSYNC_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///.envsync/state.db"

# How long a SQLite connection waits for another connection's write lock, in seconds.
SQLITE_BUSY_TIMEOUT_S = 30.0

# The execution option that marks a transaction as read-only, so SQLite begins it without
# taking the write lock.
READ_ONLY_OPTION = "envsync_read_only"

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_ACCEPTED_FORMS = "sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE"


def resolve_database_url(database_url: str, *, cwd: Path | None = None) -> URL:
    """Parse a store URL into the form SQLAlchemy connects with.

    A relative SQLite path becomes absolute against `cwd` (the working directory by
    default), and `postgresql://` selects the psycopg 3 driver. Raises ConfigError naming
    ENVSYNC_DATABASE_URL, never showing its value.
    """
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError(
            DATABASE_URL_SETTING, f"is not a database URL; accepted forms: {_ACCEPTED_FORMS}"
        ) from None

    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite":
        return _resolve_sqlite(url, driver, cwd or Path.cwd())
    if backend in ("postgresql", "postgres"):
        return _resolve_postgresql(url, driver)
    raise ConfigError(
        DATABASE_URL_SETTING,
        f"uses the unsupported database {backend!r}; accepted forms: {_ACCEPTED_FORMS}",
    )


def _resolve_sqlite(url: URL, driver: str, cwd: Path) -> URL:
    if driver not in ("", "pysqlite"):
        raise ConfigError(
            DATABASE_URL_SETTING,
            f"names the SQLite driver {driver!r}; envsync uses Python's sqlite3, so write "
            "sqlite:///PATH",
        )
    if not url.database or url.database == ":memory:":
        raise ConfigError(
            DATABASE_URL_SETTING,
            "names an in-memory SQLite database, which each connection would see empty; "
            "give a file path such as sqlite:///.envsync/state.db",
        )

    path = Path(url.database)
    if not path.is_absolute():
        path = cwd / path
    return url.set(drivername="sqlite+pysqlite", database=str(path))


def _resolve_postgresql(url: URL, driver: str) -> URL:
    if driver not in ("", "psycopg"):
        raise ConfigError(
            DATABASE_URL_SETTING,
            f"names the PostgreSQL driver {driver!r}; envsync uses psycopg 3, so write "
            "postgresql://...",
        )
    return url.set(drivername="postgresql+psycopg")


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path:
    """Return the file of a resolved SQLite URL."""
    if not is_sqlite(url) or not url.database:
        raise ValueError("not a resolved SQLite URL")
    return Path(url.database)


def postgresql_conninfo(url: URL) -> str:
    """Return a libpq connection URI for a resolved PostgreSQL URL, for psycopg.connect()."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def advisory_key(label: str) -> int:
    """Derive a PostgreSQL advisory lock key (a signed 64-bit integer) from a label."""
    digest = hashlib.sha256(f"envsync:{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def create_store_engine(url: URL) -> Engine:
    """Create the engine for a resolved URL, and SQLite's folder when it is missing."""
    if is_sqlite(url):
        return _create_sqlite_engine(url)

    # hide_parameters keeps bound values (hashes, ciphertexts, key names) out of the text
    # of SQLAlchemy's exceptions, which may end up in logs.
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _create_sqlite_engine(url: URL) -> Engine:
    database_file = sqlite_path(url)
    try:
        database_file.parent.mkdir(parents=True, exist_ok=True)
        _enable_wal(database_file)
    except (OSError, sqlite3.Error) as error:
        raise StoreError(
            f"the envsync store failed to open the SQLite file {database_file}: {error}",
            hint="check that its folder exists or can be created, and is writable",
        ) from error

    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    # Python's sqlite3 module (before 3.12) begins transactions on its own, and only before
    # DML. Switching that off lets the "begin" listener choose the kind of BEGIN.
    dbapi_connection.isolation_level = None

    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # In WAL mode, NORMAL skips the disk flush of each commit. A commit still survives
        # the death of the process, which the run history must outlive. Only a power loss or
        # an OS crash can undo the last commits (SQLite docs, PRAGMA synchronous).
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _enable_wal(database_file: Path) -> None:
    """Switch the file to WAL mode, which SQLite then keeps in the file itself.

    The switch runs under the migration lock, because two connections that switch a new
    file at the same moment can fail at once with "database is locked", without waiting
    for the busy timeout.
    """
    if database_file.is_file() and _journal_mode(database_file) == "wal":
        # The file is already in WAL mode, as every file envsync opened before is, so no
        # lock is needed.
        return

    from filelock import FileLock

    with FileLock(_migration_lock_path(database_file)):
        if _journal_mode(database_file) != "wal":
            connection = sqlite3.connect(database_file, timeout=SQLITE_BUSY_TIMEOUT_S)
            try:
                connection.execute("PRAGMA journal_mode = WAL")
            finally:
                connection.close()


def _journal_mode(database_file: Path) -> str:
    connection = sqlite3.connect(database_file, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        connection.close()


def _migration_lock_path(database_file: Path) -> Path:
    return database_file.with_name(database_file.name + ".migrate.lock")


def _begin_sqlite_transaction(connection: Connection) -> None:
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Turn a database error inside the block into a StoreError naming the failed action."""
    try:
        yield
    except SQLAlchemyError as error:
        raise StoreError(
            f"the envsync store failed to {action}: {_describe(error)}",
            hint="check that ENVSYNC_DATABASE_URL points at a reachable, writable database",
        ) from error


def _describe(error: SQLAlchemyError) -> str:
    """Return the driver's first message line, without SQLAlchemy's statement and parameters."""
    original = getattr(error, "orig", None)
    source: BaseException = original if isinstance(original, BaseException) else error
    lines = str(source).strip().splitlines()
    first_line = lines[0] if lines else ""
    return f"{type(source).__name__}: {first_line}" if first_line else type(source).__name__


def upgrade_schema(engine: Engine) -> None:
    """Run every pending migration, safely when several processes open the store at once.

    The check without a lock keeps an up-to-date store cheap to open. The upgrade itself
    runs under a file lock beside the SQLite file, or a PostgreSQL advisory lock, and checks
    again inside it, because another process may have finished the upgrade meanwhile.
    """
    with store_errors("upgrade its schema"):
        if _schema_is_current(engine):
            return

        with _migration_lock(engine) as connection:
            current = _current_revision(connection)
            if current == _head_revision():
                connection.commit()
                return
            _check_known_revision(current)
            _run_upgrade(connection)


def _check_known_revision(current: str | None) -> None:
    """Raise StoreError when a newer envsync migrated the database past this one's head."""
    from alembic.script import ScriptDirectory

    if current is None:
        return
    known = {
        script.revision
        for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()
    }
    if current in known:
        return
    raise StoreError(
        f"the envsync store's schema is at revision {current}, which this envsync does not "
        "know, so a newer envsync has upgraded it",
        hint="run the newer envsync, or point ENVSYNC_DATABASE_URL at another database",
    )


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    from filelock import FileLock

    if is_sqlite(engine.url):
        lock_path = _migration_lock_path(sqlite_path(engine.url))
        with FileLock(lock_path), engine.connect() as connection:
            yield connection
        return

    key = advisory_key("migrations")
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()
        try:
            yield connection
        finally:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


def _run_upgrade(connection: Connection) -> None:
    from alembic import command

    logger.info("upgrading the envsync store schema to %s", _head_revision())
    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    connection.commit()


def _schema_is_current(engine: Engine) -> bool:
    """Check the stored revision against SCHEMA_HEAD with one query and without Alembic,
    whose import and script scan cost more than the rest of a short `envsync plan`.

    A SCHEMA_HEAD that a new migration left behind only makes this check return False, so
    the caller then runs Alembic's own check under the migration lock.
    """
    with engine.connect() as connection:
        connection = connection.execution_options(**{READ_ONLY_OPTION: True})
        try:
            stored = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            revisions = list(stored.scalars())
        except SQLAlchemyError:
            # No version table yet: a new database.
            revisions = []
        connection.rollback()
    return revisions == [SCHEMA_HEAD]


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


# The newest migration's revision; a test checks it against Alembic's head.
SCHEMA_HEAD = "0002"


@functools.cache
def _head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def database_url_from_environment() -> str:
    """Return ENVSYNC_DATABASE_URL from the process environment, or the default SQLite file."""
    return os.environ.get(DATABASE_URL_SETTING) or DEFAULT_DATABASE_URL
