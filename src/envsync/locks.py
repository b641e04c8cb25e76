"""Per-target locks, so that applies to one target never interleave.

A hold takes two locks, in this order:

1. An in-process lock per target. It is a `threading.Lock` polled from async code, not an
   `asyncio.Lock`, because an `asyncio.Lock` belongs to one event loop and envsync may run
   applies on several loops and threads in one process.
2. A cross-process lock per target. With SQLite it is a file lock (the `filelock` package)
   in `locks/` beside the database file, which covers every process on the machine. With
   PostgreSQL it is a session-level advisory lock on a dedicated connection, which covers
   every replica that shares the database. `pg_try_advisory_lock` is polled, so the hold
   can give up after its timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from filelock import FileLock, Timeout

from envsync.errors import LockTimeoutError, StoreError
from envsync.store.database import (
    advisory_key,
    is_sqlite,
    postgresql_conninfo,
    resolve_database_url,
    sqlite_path,
)

if TYPE_CHECKING:
    import psycopg

    from envsync.store import Store

logger = logging.getLogger(__name__)

# Polling starts fast, so an uncontended hold costs nothing, and backs off to a few polls a
# second while another apply runs.
FIRST_POLL_S = 0.01
MAX_POLL_S = 0.25


class _Deadline:
    """The time left of an optional timeout, on the monotonic clock."""

    def __init__(self, timeout_s: float | None) -> None:
        self._end = None if timeout_s is None else time.monotonic() + max(timeout_s, 0.0)

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def wait_s(self, poll_s: float) -> float:
        if self._end is None:
            return poll_s
        return max(0.0, min(poll_s, self._end - time.monotonic()))


class _ProcessLock(Protocol):
    async def acquire(self, deadline: _Deadline) -> bool: ...

    async def release(self) -> None: ...


class TargetLocks:
    """Locks that let one apply per target run at a time, across threads, processes and
    replicas.

    `database_url` is ENVSYNC_DATABASE_URL: SQLite gives file locks in `lock_dir` (by
    default `locks/` beside the database file), PostgreSQL gives advisory locks.
    """

    def __init__(
        self,
        database_url: str,
        lock_dir: Path | None = None,
        *,
        cwd: Path | None = None,
    ) -> None:
        # The lock folder follows the resolved database file, so processes that open the
        # same file share their locks whatever their working directories.
        self._url = resolve_database_url(database_url, cwd=cwd)
        self._lock_dir: Path | None = None
        if is_sqlite(self._url):
            self._lock_dir = lock_dir or sqlite_path(self._url).parent / "locks"
        self._local_locks: dict[str, threading.Lock] = {}
        self._local_guard = threading.Lock()

    @classmethod
    def for_store(cls, store: Store, lock_dir: Path | None = None) -> TargetLocks:
        """Locks for the database an open store uses."""
        return cls(store.engine.url.render_as_string(hide_password=False), lock_dir)

    @asynccontextmanager
    async def hold(
        self,
        ledger_id: str,
        timeout_s: float | None = None,
        *,
        target_name: str | None = None,
    ) -> AsyncIterator[None]:
        """Hold the target's lock for the body of an `async with`.

        Waits at most `timeout_s` seconds (forever when None), then raises
        LockTimeoutError. That error names the target by `target_name`, or by the ledger
        id when it is not given.
        """
        deadline = _Deadline(timeout_s)
        name = target_name or ledger_id
        local = self._local_lock(ledger_id)
        if not await _acquire_local(local, deadline):
            raise _timeout_error(name, timeout_s)

        try:
            process_lock = self._process_lock(ledger_id)
            if not await process_lock.acquire(deadline):
                raise _timeout_error(name, timeout_s)
            try:
                yield
            finally:
                await process_lock.release()
        finally:
            local.release()

    def _local_lock(self, ledger_id: str) -> threading.Lock:
        with self._local_guard:
            return self._local_locks.setdefault(ledger_id, threading.Lock())

    def _process_lock(self, ledger_id: str) -> _ProcessLock:
        if self._lock_dir is not None:
            return _FileTargetLock(self._lock_dir / _lock_file_name(ledger_id))
        return _AdvisoryTargetLock(
            postgresql_conninfo(self._url), advisory_key(f"target:{ledger_id}")
        )


async def _acquire_local(lock: threading.Lock, deadline: _Deadline) -> bool:
    poll_s = FIRST_POLL_S
    while not lock.acquire(blocking=False):
        if deadline.expired():
            return False
        await asyncio.sleep(deadline.wait_s(poll_s))
        poll_s = min(poll_s * 2, MAX_POLL_S)
    return True


def _timeout_error(name: str, timeout_s: float | None) -> LockTimeoutError:
    waited = f"{timeout_s:g}" if timeout_s is not None else "the allowed"
    return LockTimeoutError(
        f"{name}: another apply of this target is running, and its lock was not released "
        f"within {waited} s",
        hint="wait for that apply to finish, then run this one again",
        target=name,
    )


_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]+")


def _lock_file_name(ledger_id: str) -> str:
    """Build a portable file name from the readable part of the ledger id and a hash of it.

    The hash keeps apart two ids that differ only in replaced characters.
    """
    readable = _UNSAFE_FILE_CHARACTERS.sub("-", ledger_id)[:80]
    digest = hashlib.sha256(ledger_id.encode("utf-8")).hexdigest()[:16]
    return f"{readable}.{digest}.lock"


class _FileTargetLock:
    """A file lock that excludes every other holder of the same file, in this process too,
    because each hold opens the file anew."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(path, thread_local=False)

    async def acquire(self, deadline: _Deadline) -> bool:
        poll_s = FIRST_POLL_S
        while True:
            try:
                self._lock.acquire(blocking=False)
            except Timeout:
                if deadline.expired():
                    return False
                await asyncio.sleep(deadline.wait_s(poll_s))
                poll_s = min(poll_s * 2, MAX_POLL_S)
                continue
            return True

    async def release(self) -> None:
        self._lock.release()


class _AdvisoryTargetLock:
    """A session-level PostgreSQL advisory lock held on a connection of its own.

    NOTE: PostgreSQL releases the lock when the connection drops, and the hold cannot
    notice that while the body runs. `release` logs an error when it finds the lock gone.
    """

    def __init__(self, conninfo: str, key: int) -> None:
        self._conninfo = conninfo
        self._key = key
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def acquire(self, deadline: _Deadline) -> bool:
        # Imported on use, so a SQLite store or a plan never loads the PostgreSQL driver.
        import psycopg

        try:
            self._connection = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True
            )
            acquired = await self._poll(self._connection, deadline)
        except psycopg.Error as error:
            await self._close()
            raise StoreError(
                f"the target lock could not be taken in PostgreSQL: {type(error).__name__}",
                hint="check that ENVSYNC_DATABASE_URL points at a reachable database",
            ) from None
        except BaseException:
            # Cancelled while waiting: closing the connection drops any lock it took.
            await self._close()
            raise

        if not acquired:
            await self._close()
        return acquired

    async def _poll(
        self, connection: psycopg.AsyncConnection[tuple[object, ...]], deadline: _Deadline
    ) -> bool:
        poll_s = FIRST_POLL_S
        while True:
            cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
            row = await cursor.fetchone()
            if row is not None and row[0] is True:
                return True
            if deadline.expired():
                return False
            await asyncio.sleep(deadline.wait_s(poll_s))
            poll_s = min(poll_s * 2, MAX_POLL_S)

    async def release(self) -> None:
        import psycopg

        connection = self._connection
        if connection is None:
            return
        try:
            cursor = await connection.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            row = await cursor.fetchone()
            if row is None or row[0] is not True:
                logger.error(
                    "a target lock was already released when the apply ended, because its "
                    "connection to PostgreSQL dropped"
                )
        except psycopg.Error as error:
            logger.error(
                "a target lock's connection failed during the apply: %s", type(error).__name__
            )
        finally:
            await self._close()

    async def _close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
