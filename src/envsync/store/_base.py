"""The engine, short transactions and error mapping that every part of the store shares."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table

from envsync.store.database import READ_ONLY_OPTION, store_errors


def new_id() -> str:
    """Return a unique id that sorts by creation time to the millisecond.

    It is 12 hex digits of Unix milliseconds, then 12 random hex digits.
    """
    milliseconds = time.time_ns() // 1_000_000
    return f"{milliseconds:012x}{secrets.token_hex(6)}"


def upsert_insert(connection: Connection, table: Table) -> Any:
    """Build an INSERT that supports ON CONFLICT on SQLite and PostgreSQL alike.

    Both dialects offer `on_conflict_do_nothing` and `on_conflict_do_update`, but on
    different classes.
    """
    # Each dialect is imported on use, so a SQLite store never loads PostgreSQL's.
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)

    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


class StoreBase:
    """The engine and the transaction helpers that the store's parts use."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._read_engine = engine.execution_options(**{READ_ONLY_OPTION: True})

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def _writing(self, action: str) -> Iterator[Connection]:
        """Open one short writing transaction, turning a database error into a StoreError."""
        with store_errors(action), self._engine.begin() as connection:
            yield connection

    @contextmanager
    def _reading(self, action: str) -> Iterator[Connection]:
        """Open one short read-only transaction, turning a database error into a StoreError."""
        with store_errors(action), self._read_engine.begin() as connection:
            yield connection
