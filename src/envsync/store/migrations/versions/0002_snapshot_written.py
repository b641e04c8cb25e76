"""Keep the values each run wrote beside its snapshot of previous values.

A Netlify secret cannot be read back, so rolling back a run restores the value an earlier
run wrote; this column holds those written values, encrypted like the snapshot itself.

Revision ID: 0002
Revises: 0001
Created: rollback of Netlify secrets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("envsync_snapshots", sa.Column("written_token", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("envsync_snapshots") as batch:
        batch.drop_column("written_token")
