"""envsync's state: runs, tickets, the ownership ledger, snapshots and schedule ticks.

SQLite (`sqlite:///.envsync/state.db` by default) serves one machine; PostgreSQL
(`ENVSYNC_DATABASE_URL=postgresql://...`) serves several replicas. The schema is created
and upgraded by Alembic migrations shipped in `migrations/`, run when the store opens.
No table contains a plaintext variable value: the ledger stores keyed hashes, and
snapshots are encrypted.
"""

from __future__ import annotations

from envsync.store._snapshots import derive_snapshot_key, snapshot_key_from_settings
from envsync.store.database import DEFAULT_DATABASE_URL, resolve_database_url
from envsync.store.records import (
    ChangeCounts,
    KeyChange,
    Run,
    RunStatus,
    RunTarget,
    RunTrigger,
    TargetSummary,
    Ticket,
)
from envsync.store.store import Store, open_store

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ChangeCounts",
    "KeyChange",
    "Run",
    "RunStatus",
    "RunTarget",
    "RunTrigger",
    "Store",
    "TargetSummary",
    "Ticket",
    "derive_snapshot_key",
    "open_store",
    "resolve_database_url",
    "snapshot_key_from_settings",
]
