"""Per-target locks: applies to one target never interleave, in one process or across
processes, on SQLite file locks and on PostgreSQL advisory locks."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from envsync.errors import LockTimeoutError
from envsync.locks import TargetLocks
from envsync.store import Store
from tests.store.processes import finish, read_line, start_together, start_worker

API = "render:service:srv-d0abc123def456ghi789"
WEB = "netlify:site:0b6a3f52-8e8e-4a55-9cf4-2d1a8c3a7d11"

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_database_url")
    return url


@pytest.fixture
def locks(database_url: str) -> TargetLocks:
    return TargetLocks(database_url)


@pytest.fixture
def holder(database_url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds the API target's lock until it is sent a line."""
    worker = start_worker("hold", database_url, API)
    assert read_line(worker) == "held"
    yield worker
    if worker.poll() is None:
        worker.kill()
        worker.wait()


def _release(worker: subprocess.Popen[str]) -> None:
    assert worker.stdin is not None
    worker.stdin.write("release\n")
    worker.stdin.flush()
    assert read_line(worker) == "released"


def test_second_hold_in_process_times_out(locks: TargetLocks) -> None:
    async def scenario() -> None:
        async with locks.hold(API, timeout_s=5), locks.hold(API, timeout_s=0.2):
            pass

    with pytest.raises(LockTimeoutError):
        asyncio.run(scenario())


def test_timeout_error_names_target(locks: TargetLocks) -> None:
    async def scenario() -> None:
        async with (
            locks.hold(API, timeout_s=5),
            locks.hold(API, timeout_s=0, target_name="render/api"),
        ):
            pass

    with pytest.raises(LockTimeoutError) as raised:
        asyncio.run(scenario())

    assert raised.value.target == "render/api"
    assert "render/api" in str(raised.value)
    assert "another apply" in str(raised.value)


def test_lock_released_after_body_fails(locks: TargetLocks) -> None:
    async def failing() -> None:
        async with locks.hold(API, timeout_s=5):
            raise RuntimeError("apply failed")

    async def again() -> bool:
        async with locks.hold(API, timeout_s=0):
            return True

    with pytest.raises(RuntimeError):
        asyncio.run(failing())

    assert asyncio.run(again()) is True


def test_other_target_not_blocked(locks: TargetLocks) -> None:
    async def scenario() -> bool:
        async with locks.hold(API, timeout_s=5), locks.hold(WEB, timeout_s=0):
            return True

    assert asyncio.run(scenario()) is True


def test_hold_excludes_other_thread(locks: TargetLocks) -> None:
    held = threading.Event()
    release = threading.Event()

    async def hold_until_released() -> None:
        async with locks.hold(API, timeout_s=5):
            held.set()
            await asyncio.to_thread(release.wait, 30)

    async def try_hold() -> None:
        async with locks.hold(API, timeout_s=0.2):
            pass

    thread = threading.Thread(target=asyncio.run, args=(hold_until_released(),))
    thread.start()
    try:
        assert held.wait(30)
        with pytest.raises(LockTimeoutError):
            asyncio.run(try_hold())
    finally:
        release.set()
        thread.join(30)
    asyncio.run(try_hold())


def test_separate_lock_objects_exclude_each_other(database_url: str) -> None:
    first = TargetLocks(database_url)
    second = TargetLocks(database_url)

    async def scenario() -> None:
        async with first.hold(API, timeout_s=5), second.hold(API, timeout_s=0.2):
            pass

    with pytest.raises(LockTimeoutError):
        asyncio.run(scenario())


def test_store_locks_exclude_url_locks(database_url: str) -> None:
    async def scenario(store: Store) -> None:
        async with (
            TargetLocks.for_store(store).hold(API, timeout_s=5),
            TargetLocks(database_url).hold(API, timeout_s=0.2),
        ):
            pass

    with Store.open(database_url, migrate=False) as store, pytest.raises(LockTimeoutError):
        asyncio.run(scenario(store))


def test_hold_times_out_while_other_process_holds(
    locks: TargetLocks, holder: subprocess.Popen[str]
) -> None:
    async def scenario() -> None:
        async with locks.hold(API, timeout_s=0.3):
            pass

    with pytest.raises(LockTimeoutError):
        asyncio.run(scenario())


def test_hold_succeeds_after_other_process_releases(
    locks: TargetLocks, holder: subprocess.Popen[str]
) -> None:
    async def scenario() -> bool:
        async with locks.hold(API, timeout_s=30):
            return True

    _release(holder)

    assert asyncio.run(scenario()) is True


def test_hold_without_timeout_waits_for_release(
    locks: TargetLocks, holder: subprocess.Popen[str]
) -> None:
    async def scenario() -> None:
        entered = asyncio.Event()

        async def wait_for_lock() -> None:
            async with locks.hold(API, timeout_s=None):
                entered.set()

        waiting = asyncio.create_task(wait_for_lock())
        await asyncio.sleep(0.2)
        assert not entered.is_set()

        await asyncio.to_thread(_release, holder)
        await asyncio.wait_for(waiting, timeout=30)
        assert entered.is_set()

    asyncio.run(scenario())


def test_holds_never_interleave_across_processes(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "holds.log"
    rounds = 25
    workers = [
        start_worker("lock-loop", database_url, API, str(log), str(rounds)) for _ in range(2)
    ]

    start_together(workers)
    for worker in workers:
        assert finish(worker).strip() == "done"

    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 * 2 * rounds
    for enter, leave in zip(lines[0::2], lines[1::2], strict=True):
        assert enter.startswith("enter ")
        assert leave == enter.replace("enter", "exit")


def test_sqlite_lock_file_beside_database(tmp_path: Path) -> None:
    locks = TargetLocks(f"sqlite:///{tmp_path / 'state.db'}")

    async def scenario() -> None:
        async with locks.hold(API, timeout_s=1):
            pass

    asyncio.run(scenario())

    lock_files = list((tmp_path / "locks").iterdir())
    assert len(lock_files) == 1
    assert lock_files[0].name.startswith("render-service-srv-d0abc123def456ghi789.")


def test_lock_dir_can_be_given(tmp_path: Path) -> None:
    locks = TargetLocks(f"sqlite:///{tmp_path / 'state.db'}", lock_dir=tmp_path / "elsewhere")

    async def scenario() -> None:
        async with locks.hold(API, timeout_s=1):
            pass

    asyncio.run(scenario())

    assert len(list((tmp_path / "elsewhere").iterdir())) == 1
