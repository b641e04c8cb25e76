"""The ownership ledger's table: per target, key and context, what envsync last wrote."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, delete, select

from envsync.model import LedgerEntry, LedgerSlot
from envsync.store._base import StoreBase, upsert_insert
from envsync.store.schema import NO_CONTEXT, ledger


class LedgerQueries(StoreBase):
    def load_ledger(self, ledger_id: str) -> dict[LedgerSlot, LedgerEntry]:
        """Return every ledger entry of one target, keyed by (key, context)."""
        query = select(ledger).where(ledger.c.ledger_id == ledger_id)
        with self._reading("load the ledger") as connection:
            rows = connection.execute(query).all()

        entries = (_entry_from_row(row._mapping) for row in rows)
        return {(entry.key, entry.context): entry for entry in entries}

    def save_ledger(
        self,
        ledger_id: str,
        upserts: Iterable[LedgerEntry],
        removals: Iterable[LedgerSlot],
    ) -> None:
        """Remove `removals`, then insert or replace `upserts`, in one transaction.

        A slot in both ends up with the upserted entry.
        """
        rows = [_row_from_entry(ledger_id, entry) for entry in upserts]
        slots = list(removals)
        if not rows and not slots:
            return

        with self._writing("save the ledger") as connection:
            if slots:
                removal = delete(ledger).where(
                    ledger.c.ledger_id == ledger_id,
                    ledger.c.key == bindparam("slot_key"),
                    ledger.c.context == bindparam("slot_context"),
                )
                connection.execute(
                    removal,
                    [
                        {"slot_key": key, "slot_context": _stored_context(context)}
                        for key, context in slots
                    ],
                )
            if rows:
                insert = upsert_insert(connection, ledger)
                statement = insert.on_conflict_do_update(
                    index_elements=[ledger.c.ledger_id, ledger.c.key, ledger.c.context],
                    set_={
                        "value_hash": insert.excluded.value_hash,
                        "updated_at": insert.excluded.updated_at,
                        "written_at": insert.excluded.written_at,
                    },
                )
                connection.execute(statement, rows)


def _stored_context(context: str | None) -> str:
    return NO_CONTEXT if context is None else context


def _row_from_entry(ledger_id: str, entry: LedgerEntry) -> dict[str, Any]:
    return {
        "ledger_id": ledger_id,
        "key": entry.key,
        "context": _stored_context(entry.context),
        "value_hash": entry.value_hash,
        "updated_at": entry.updated_at,
        "written_at": entry.written_at,
    }


def _entry_from_row(row: Any) -> LedgerEntry:
    context = None if row["context"] == NO_CONTEXT else row["context"]
    return LedgerEntry(
        key=row["key"],
        context=context,
        value_hash=row["value_hash"],
        updated_at=row["updated_at"],
        written_at=row["written_at"],
    )
