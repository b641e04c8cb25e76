"""Create the store: meta, ledger, runs, tickets, snapshots and schedule ticks.

Revision ID: 0001
Revises:
Created: the first release of the store
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "envsync_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "envsync_ledger",
        sa.Column("ledger_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("context", sa.Text, primary_key=True),
        sa.Column("value_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.Text, nullable=True),
        sa.Column("written_at", sa.Text, nullable=False),
    )
    _create_run_tables()
    _create_ticket_table()
    op.create_table(
        "envsync_snapshots",
        sa.Column(
            "run_id",
            sa.String(32),
            sa.ForeignKey("envsync_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("ledger_id", sa.Text, primary_key=True),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "envsync_schedule_ticks",
        sa.Column("schedule_name", sa.Text, primary_key=True),
        sa.Column("slot", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.Text, nullable=True),
    )


def _create_run_tables() -> None:
    op.create_table(
        "envsync_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text, nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("host", sa.Text, nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
    )
    op.create_index("ix_envsync_runs_started_at", "envsync_runs", ["started_at"])
    op.create_index("ix_envsync_runs_status", "envsync_runs", ["status"])

    op.create_table(
        "envsync_run_targets",
        sa.Column(
            "run_id",
            sa.String(32),
            sa.ForeignKey("envsync_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("ledger_id", sa.Text, primary_key=True),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("create_count", sa.Integer, nullable=False),
        sa.Column("update_count", sa.Integer, nullable=False),
        sa.Column("delete_count", sa.Integer, nullable=False),
        sa.Column("noop_count", sa.Integer, nullable=False),
        sa.Column("rejected_count", sa.Integer, nullable=False),
        sa.Column("conflict_count", sa.Integer, nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("errors", sa.Text, nullable=False),
        sa.Column("error_causes", sa.Text, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.Column("finished", sa.Boolean, nullable=False),
    )

    op.create_table(
        "envsync_run_writes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.String(32),
            sa.ForeignKey("envsync_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ledger_id", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=True),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_envsync_run_writes_run_id", "envsync_run_writes", ["run_id"])


def _create_ticket_table() -> None:
    op.create_table(
        "envsync_tickets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("cause", sa.String(64), nullable=False),
        sa.Column("opened", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("diagnosis", sa.Text, nullable=False),
        sa.Column("next_step", sa.Text, nullable=False),
        sa.Column("closed", sa.DateTime(timezone=True), nullable=True),
    )
    # A partial unique index: at most one open ticket per target and cause.
    op.create_index(
        "ux_envsync_tickets_open",
        "envsync_tickets",
        ["target", "cause"],
        unique=True,
        sqlite_where=sa.text("closed IS NULL"),
        postgresql_where=sa.text("closed IS NULL"),
    )


def downgrade() -> None:
    for table in (
        "envsync_schedule_ticks",
        "envsync_snapshots",
        "envsync_tickets",
        "envsync_run_writes",
        "envsync_run_targets",
        "envsync_runs",
        "envsync_ledger",
        "envsync_meta",
    ):
        op.drop_table(table)
