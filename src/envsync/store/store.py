"""The store: one object for runs, tickets, the ledger, snapshots and schedule ticks."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from envsync.store._ledger import LedgerQueries
from envsync.store._meta import MetaQueries
from envsync.store._runs import RunQueries
from envsync.store._snapshots import SnapshotQueries
from envsync.store._tickets import TicketQueries
from envsync.store.database import create_store_engine, resolve_database_url, upgrade_schema

if TYPE_CHECKING:
    from envsync.config import Settings


class Store(LedgerQueries, RunQueries, TicketQueries, SnapshotQueries, MetaQueries):
    """envsync's state in SQLite or PostgreSQL.

    Every method is synchronous and runs one short transaction, so async code calls it
    through `asyncio.to_thread`. One Store may be shared by threads: each call takes its own
    connection from the engine's pool.
    """

    @classmethod
    def open(cls, database_url: str, *, cwd: Path | None = None, migrate: bool = True) -> Store:
        """Connect to the database and run any pending migration first."""
        engine = create_store_engine(resolve_database_url(database_url, cwd=cwd))
        if migrate:
            try:
                upgrade_schema(engine)
            except BaseException:
                engine.dispose()
                raise
        return cls(engine)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # The URL may carry a password, so only the kind of database is shown.
        return f"Store({self._engine.dialect.name})"


def open_store(database_url: str | Settings, *, cwd: Path | None = None) -> Store:
    """Open the store at a database URL, or at the one the settings' ENVSYNC_DATABASE_URL
    names."""
    if not isinstance(database_url, str):
        database_url = database_url.database_url.get_secret_value()
    return Store.open(database_url, cwd=cwd)


__all__ = ["Store", "open_store"]
