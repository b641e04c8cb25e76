"""Alembic's entry point for the store's migrations.

envsync runs them itself when it opens the store (`envsync.store.open_store`), on a
connection it already holds under the migration lock, and passes that connection in
`config.attributes["connection"]`. Run by hand (`alembic -c .../alembic.ini upgrade head`,
say, to write a new revision), this file connects to ENVSYNC_DATABASE_URL instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from envsync.store.database import (
    create_store_engine,
    database_url_from_environment,
    resolve_database_url,
)
from envsync.store.schema import VERSION_TABLE, metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite alters most tables only by copying them, which Alembic's batch mode does.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_with_own_connection() -> None:
    engine = create_store_engine(resolve_database_url(database_url_from_environment()))
    try:
        with engine.connect() as connection:
            run_migrations(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("envsync's migrations run only against a live database, not with --sql")

given_connection = context.config.attributes.get("connection")
if given_connection is None:
    run_with_own_connection()
else:
    run_migrations(given_connection)
