"""Tickets: one open diagnostic record per target and cause, bumped while the cause lasts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from envsync.store._base import StoreBase, new_id, upsert_insert
from envsync.store.records import Ticket
from envsync.store.schema import tickets


class TicketQueries(StoreBase):
    def open_or_bump_ticket(
        self,
        target: str,
        cause: str,
        diagnosis: str,
        next_step: str,
        now: datetime | None = None,
    ) -> Ticket:
        """Open a ticket for the target and cause, or bump the open one, and return it.

        A bump adds one to `count`, moves `last_seen` to `now` and keeps the latest
        diagnosis and next step. It is one INSERT ... ON CONFLICT against the partial unique
        index on open tickets, so concurrent callers on several replicas still leave one
        open ticket with every bump counted.
        """
        seen = now or datetime.now(UTC)
        row = {
            "id": new_id(),
            "target": target,
            "cause": cause,
            "opened": seen,
            "last_seen": seen,
            "count": 1,
            "diagnosis": diagnosis,
            "next_step": next_step,
            "closed": None,
        }
        with self._writing("open or bump a ticket") as connection:
            insert = upsert_insert(connection, tickets)
            statement = insert.on_conflict_do_update(
                index_elements=[tickets.c.target, tickets.c.cause],
                index_where=tickets.c.closed.is_(None),
                set_={
                    "count": tickets.c.count + 1,
                    "last_seen": insert.excluded.last_seen,
                    "diagnosis": insert.excluded.diagnosis,
                    "next_step": insert.excluded.next_step,
                },
            ).returning(*tickets.c)
            saved = connection.execute(statement, row).one()
        return _ticket_from_row(saved._mapping)

    def close_tickets(
        self,
        target: str,
        causes: Iterable[str] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Close the target's open tickets and return how many were closed.

        With `causes`, only tickets of those causes are closed.
        """
        statement = (
            update(tickets)
            .where(tickets.c.target == target, tickets.c.closed.is_(None))
            .values(closed=now or datetime.now(UTC))
        )
        if causes is not None:
            statement = statement.where(tickets.c.cause.in_(list(causes)))

        with self._writing("close tickets") as connection:
            result = connection.execute(statement)
        return int(result.rowcount)

    def list_tickets(self, open_only: bool = False, target: str | None = None) -> list[Ticket]:
        """Return tickets, most recently seen first."""
        query = select(tickets).order_by(tickets.c.last_seen.desc(), tickets.c.id.desc())
        if open_only:
            query = query.where(tickets.c.closed.is_(None))
        if target is not None:
            query = query.where(tickets.c.target == target)

        with self._reading("list tickets") as connection:
            rows = connection.execute(query).all()
        return [_ticket_from_row(row._mapping) for row in rows]


def _ticket_from_row(row: Any) -> Ticket:
    return Ticket(
        id=row["id"],
        target=row["target"],
        cause=row["cause"],
        opened=row["opened"],
        last_seen=row["last_seen"],
        count=row["count"],
        diagnosis=row["diagnosis"],
        next_step=row["next_step"],
        closed=row["closed"],
    )
