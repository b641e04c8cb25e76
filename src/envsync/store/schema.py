"""The store's tables, as SQLAlchemy Core metadata.

The migrations under `migrations/versions/` create these tables; a test checks that the
migrated database and this metadata agree. Every name starts with `envsync_`, so the store
can share a PostgreSQL database with other applications.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

# Alembic's own table, renamed so that it does not clash with another application's.
VERSION_TABLE = "envsync_schema_version"

# The context column of a Render entry. The primary key includes the context, and a
# primary key column cannot hold NULL, so "no context" is stored as the empty string,
# which is never a Netlify context name.
NO_CONTEXT = ""


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both databases.

    PostgreSQL stores `timestamptz`. SQLite has no time zone type, so the value is stored
    as naive UTC text and comes back with UTC attached.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store accepts only aware datetimes; pass datetime.now(UTC)")

        utc = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

meta = Table(
    "envsync_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

ledger = Table(
    "envsync_ledger",
    metadata,
    Column("ledger_id", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("context", Text, primary_key=True),
    Column("value_hash", String(64), nullable=False),
    Column("updated_at", Text, nullable=True),
    Column("written_at", Text, nullable=False),
)

runs = Table(
    "envsync_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("trigger", String(16), nullable=False),
    Column("actor", Text, nullable=True),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("host", Text, nullable=True),
    Column("pid", Integer, nullable=True),
    Index("ix_envsync_runs_started_at", "started_at"),
    Index("ix_envsync_runs_status", "status"),
)

run_targets = Table(
    "envsync_run_targets",
    metadata,
    Column(
        "run_id", String(32), ForeignKey("envsync_runs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("ledger_id", Text, primary_key=True),
    Column("target", Text, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("create_count", Integer, nullable=False),
    Column("update_count", Integer, nullable=False),
    Column("delete_count", Integer, nullable=False),
    Column("noop_count", Integer, nullable=False),
    Column("rejected_count", Integer, nullable=False),
    Column("conflict_count", Integer, nullable=False),
    Column("changes", Text, nullable=False),
    Column("errors", Text, nullable=False),
    Column("error_causes", Text, nullable=False),
    Column("duration_s", Float, nullable=True),
    Column("applied", Boolean, nullable=False),
    Column("finished", Boolean, nullable=False),
)

run_writes = Table(
    "envsync_run_writes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("envsync_runs.id", ondelete="CASCADE"), nullable=False),
    Column("ledger_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("context", Text, nullable=True),
    Column("op", String(16), nullable=False),
    Column("written_at", UtcDateTime, nullable=False),
    Index("ix_envsync_run_writes_run_id", "run_id"),
)

tickets = Table(
    "envsync_tickets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("target", Text, nullable=False),
    Column("cause", String(64), nullable=False),
    Column("opened", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("count", Integer, nullable=False),
    Column("diagnosis", Text, nullable=False),
    Column("next_step", Text, nullable=False),
    Column("closed", UtcDateTime, nullable=True),
)

# One open ticket per target and cause: concurrent bumps from several replicas meet in
# this index, and an upsert on it turns the second insert into a bump.
Index(
    "ux_envsync_tickets_open",
    tickets.c.target,
    tickets.c.cause,
    unique=True,
    sqlite_where=tickets.c.closed.is_(None),
    postgresql_where=tickets.c.closed.is_(None),
)

snapshots = Table(
    "envsync_snapshots",
    metadata,
    Column(
        "run_id", String(32), ForeignKey("envsync_runs.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("ledger_id", Text, primary_key=True),
    Column("token", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # The values the run wrote, encrypted like `token`. It is NULL in snapshots taken
    # before this column existed.
    Column("written_token", Text, nullable=True),
)

schedule_ticks = Table(
    "envsync_schedule_ticks",
    metadata,
    Column("schedule_name", Text, primary_key=True),
    Column("slot", UtcDateTime, primary_key=True),
    Column("claimed_at", UtcDateTime, nullable=False),
    Column("claimed_by", Text, nullable=True),
)
