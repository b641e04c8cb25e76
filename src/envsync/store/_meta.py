"""The generated ledger key, scheduler ticks and the health check."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from envsync.store._base import StoreBase, upsert_insert
from envsync.store.schema import meta, schedule_ticks

logger = logging.getLogger(__name__)

LEDGER_KEY_NAME = "ledger_key"
LEDGER_KEY_BYTES = 32


class MetaQueries(StoreBase):
    def get_or_create_ledger_key(self) -> bytes:
        """Return the store's ledger key, creating 32 random bytes the first time.

        Used when ENVSYNC_LEDGER_KEY is not set. Concurrent first calls agree on one key:
        the insert does nothing when another process inserted first, and both read back
        the stored key.
        """
        query = select(meta.c.value).where(meta.c.name == LEDGER_KEY_NAME)
        with self._reading("read the ledger key") as connection:
            stored = connection.execute(query).scalar_one_or_none()
        if stored is not None:
            return bytes(stored)

        row = {"name": LEDGER_KEY_NAME, "value": secrets.token_bytes(LEDGER_KEY_BYTES)}
        with self._writing("create the ledger key") as connection:
            insert = upsert_insert(connection, meta)
            connection.execute(insert.on_conflict_do_nothing(index_elements=[meta.c.name]), row)
            created = connection.execute(query).scalar_one()
        logger.info("created a ledger key in the store, because ENVSYNC_LEDGER_KEY is not set")
        return bytes(created)

    def claim_tick(self, schedule_name: str, slot: datetime) -> bool:
        """Claim one due run of a schedule, returning true for exactly one caller per slot.

        Every process and replica that finds the slot due calls this, and only the one
        whose insert lands runs the sync.
        """
        row = {
            "schedule_name": schedule_name,
            "slot": slot,
            "claimed_at": datetime.now(UTC),
            "claimed_by": f"{socket.gethostname()}:{os.getpid()}",
        }
        with self._writing("claim a schedule tick") as connection:
            insert = upsert_insert(connection, schedule_ticks)
            # RETURNING yields a row only when the insert happened; rowcount is not reliable
            # for ON CONFLICT DO NOTHING across drivers.
            statement = insert.on_conflict_do_nothing(
                index_elements=[schedule_ticks.c.schedule_name, schedule_ticks.c.slot]
            ).returning(schedule_ticks.c.schedule_name)
            claimed = connection.execute(statement, row).first()
        return claimed is not None

    def last_tick(self, schedule_name: str) -> datetime | None:
        """Return the latest claimed slot of a schedule, or None when none was claimed."""
        query = select(func.max(schedule_ticks.c.slot)).where(
            schedule_ticks.c.schedule_name == schedule_name
        )
        with self._reading("read the last schedule tick") as connection:
            latest: datetime | None = connection.execute(query).scalar_one_or_none()
        return latest

    def prune_ticks(self, before: datetime) -> int:
        """Delete claims of slots before `before`; return how many were deleted."""
        statement = delete(schedule_ticks).where(schedule_ticks.c.slot < before)
        with self._writing("prune schedule ticks") as connection:
            result = connection.execute(statement)
        return int(result.rowcount)

    def ping(self) -> bool:
        """Check that the database responds to a query."""
        try:
            with self._read_engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                connection.rollback()
        except SQLAlchemyError as error:
            logger.warning("the envsync store failed its health check: %s", type(error).__name__)
            return False
        return True
