"""Several `envsync serve` processes on one store: each due slot syncs once, and applies of
one target never interleave.

Each case starts real `envsync serve` processes (replicas, or one process with uvicorn
workers) with `ENVSYNC_SCHEDULE=@every 1s` and `ENVSYNC_MODE=enforce`, against the
emulators and a loopback canonical source whose value changes on every read, so that
every apply has a change to write. While the schedulers run, the test sends concurrent
`POST /envsync/apply/render` requests to every replica. Then it stops the processes and
checks three witnesses:

- the store: one scheduled run per slot (the run's actor names its slot), each slot
  claimed, every run succeeded;
- the emulators' request logs: one read of each target per run, so no slot was synced
  twice;
- the same logs: a target's requests never overlap in time and alternate read, write,
  read, write, so no apply read or wrote between another apply's read and write.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from envsync.emulators import EmulatorSet
from envsync.store import RunStatus, RunTrigger, Store
from envsync.store.schema import schedule_ticks
from tests.conftest import subprocess_env

SERVE_COMMAND = [sys.executable, "-c", "from envsync.cli import main; main()", "serve"]
SCHEDULE = "@every 1s"
SCHEDULE_NAME = f"sync {SCHEDULE}"
CANONICAL_KEY = "BRIDGE_COUNTER"

# Limits that guard against a hang while waiting for servers and runs. None of them is an
# assertion about how fast anything is.
START_TIMEOUT_S = 60.0
RUNS_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.1

SCHEDULED_RUNS = 4
APPLY_ROUNDS = 3


class CounterSource:
    """A loopback dashboard source that returns a new value of one key on every read."""

    def __init__(self) -> None:
        self.reads = 0
        self._lock = threading.Lock()
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({CANONICAL_KEY: str(source.next_value())}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/canonical"

    def next_value(self) -> int:
        with self._lock:
            self.reads += 1
            return self.reads

    def __enter__(self) -> CounterSource:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT_S)


@dataclass
class Replica:
    """One `envsync serve` process (with its uvicorn workers, if any) and its log file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_replica(index: int, environ: dict[str, str], folder: Path, workers: int) -> Replica:
    port = free_port()
    log = folder / f"replica-{index}.log"
    arguments = ["--host", "127.0.0.1", "--port", str(port), "--insecure-local"]
    arguments += ["--workers", str(workers)]
    with log.open("wb") as output:
        # A session of its own lets cleanup signal uvicorn's worker processes too.
        process = subprocess.Popen(
            [*SERVE_COMMAND, *arguments],
            cwd=folder,
            env=subprocess_env(environ),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Replica(process, f"http://127.0.0.1:{port}", log)


def wait_until_healthy(replica: Replica) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            raise AssertionError(f"envsync serve exited early:\n{replica.log_text()}")
        try:
            if httpx.get(f"{replica.url}/envsync/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(POLL_S)
    raise AssertionError(f"envsync serve did not become healthy:\n{replica.log_text()}")


def stop_replica(replica: Replica) -> None:
    """Stop the process group gracefully, or kill it when it does not stop in time."""
    process = replica.process
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)


@contextmanager
def serving(
    count: int, environ: dict[str, str], folder: Path, *, workers: int = 1
) -> Iterator[list[Replica]]:
    """Run `count` replicas until the block ends; every process is stopped even on failure."""
    replicas: list[Replica] = []
    try:
        for index in range(count):
            replicas.append(start_replica(index, environ, folder, workers))
        for replica in replicas:
            wait_until_healthy(replica)
        yield replicas
    finally:
        for replica in replicas:
            stop_replica(replica)


def scheduled_runs(store: Store) -> int:
    return sum(1 for run in store.list_runs(limit=1000) if run.trigger is RunTrigger.SCHEDULER)


def wait_for_scheduled_runs(store: Store, replicas: list[Replica], count: int) -> None:
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    while scheduled_runs(store) < count:
        if time.monotonic() > deadline:
            logs = "\n".join(replica.log_text() for replica in replicas)
            raise AssertionError(f"fewer than {count} scheduled runs were recorded:\n{logs}")
        time.sleep(POLL_S)


def health(replica: Replica) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{replica.url}/envsync/health", timeout=10).json()
    return body


def post_apply(url: str) -> int:
    response = httpx.post(f"{url}/envsync/apply/render", timeout=120)
    return response.status_code


def apply_concurrently(urls: list[str]) -> list[int]:
    """Send APPLY_ROUNDS rounds of simultaneous applies, one per URL, and return the statuses."""
    statuses: list[int] = []
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        for _ in range(APPLY_ROUNDS):
            statuses += pool.map(post_apply, urls)
    return statuses


def stop_all(replicas: list[Replica]) -> None:
    for replica in replicas:
        stop_replica(replica)


def target_requests(emulators: EmulatorSet, api: str) -> list[dict[str, Any]]:
    """Return the requests that read or wrote the variables of the emulator's one target."""
    marker = "/env-vars" if api == "render" else "/env"
    return [request for request in emulators.requests(api) if marker in request["path"]]


def is_read(request: dict[str, Any]) -> bool:
    return request["method"] == "GET"


def assert_serialised(requests: list[dict[str, Any]]) -> None:
    """Assert that no two requests overlap and that reads and writes alternate."""
    ordered = sorted(requests, key=lambda request: request["started"])
    for earlier, later in itertools.pairwise(ordered):
        assert earlier["ended"] <= later["started"], f"{earlier} overlaps {later}"

    kinds = ["read" if is_read(request) else "write" for request in ordered]
    assert kinds == ["read", "write"] * (len(ordered) // 2), kinds


def claimed_slots(store: Store) -> set[datetime]:
    query = select(schedule_ticks.c.slot).where(schedule_ticks.c.schedule_name == SCHEDULE_NAME)
    with store.engine.connect() as connection:
        return set(connection.execute(query).scalars())


def slot_of(actor: str | None) -> datetime:
    assert actor is not None
    assert actor.startswith("slot ")
    return datetime.fromisoformat(actor.removeprefix("slot "))


def assert_exactly_once(
    store: Store, emulators: EmulatorSet, replicas: list[Replica], schedulers: int, applies: int
) -> None:
    runs = store.list_runs(limit=1000)
    scheduled = [run for run in runs if run.trigger is RunTrigger.SCHEDULER]
    applied = [run for run in runs if run.trigger is RunTrigger.API]
    logs = "".join(replica.log_text() for replica in replicas)

    # Every process ran a scheduler, so the claims below had competitors.
    assert logs.count("the scheduler started") == schedulers

    # The store: one run per slot, each slot aligned to a whole second and claimed.
    per_slot = Counter(slot_of(run.actor) for run in scheduled)
    assert len(per_slot) >= SCHEDULED_RUNS
    assert max(per_slot.values()) == 1, per_slot
    assert all(slot.microsecond == 0 for slot in per_slot)
    assert set(per_slot) <= claimed_slots(store)
    assert len(applied) == applies
    assert {run.status for run in runs} == {RunStatus.SUCCEEDED}

    # The emulators: one read of each target per run that covered it.
    render = target_requests(emulators, "render")
    netlify = target_requests(emulators, "netlify")
    assert sum(map(is_read, render)) == len(scheduled) + len(applied)
    assert sum(map(is_read, netlify)) == len(scheduled)

    # The emulators: no apply touched a target between another apply's read and write.
    assert_serialised(render)
    assert_serialised(netlify)


def replica_environ(
    emulators: EmulatorSet, source: CounterSource, database_url: str, folder: Path
) -> dict[str, str]:
    return {
        "RENDER_API_URL": emulators.render_url,
        "NETLIFY_API_URL": emulators.netlify_url,
        "RENDER_API_TOKEN": emulators.render_token,
        "NETLIFY_API_TOKEN": emulators.netlify_token,
        "ENVSYNC_CANONICAL_SOURCE": "dashboard",
        "ENVSYNC_DASHBOARD_URL": source.url,
        "ENVSYNC_SCHEDULE": SCHEDULE,
        "ENVSYNC_MODE": "enforce",
        "ENVSYNC_DATABASE_URL": database_url,
        "ENVSYNC_CONFIG_FILE": str(folder / "envsync.toml"),
        "ENVSYNC_DISCOVERY_ORDER": "env",
        "ENVSYNC_SECRET_DIRS": str(folder / "secrets"),
        "ENVSYNC_LOG_LEVEL": "INFO",
        "ENVSYNC_SHUTDOWN_GRACE_S": "10",
    }


# (database, replicas, uvicorn workers per replica)
CASES = [
    pytest.param("postgresql", 3, 1, id="postgresql-3-replicas", marks=pytest.mark.postgres),
    pytest.param("sqlite", 1, 2, id="sqlite-2-workers"),
    pytest.param("sqlite", 3, 1, id="sqlite-3-processes"),
    pytest.param("sqlite", 1, 1, id="sqlite-1-process"),
]


@pytest.mark.parametrize(("database", "replica_count", "workers"), CASES)
def test_due_slots_sync_once_without_interleaving(
    database: str,
    replica_count: int,
    workers: int,
    emulators: EmulatorSet,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if database == "postgresql":
        database_url: str = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path / 'state.db'}"

    with CounterSource() as source, Store.open(database_url) as store:
        environ = replica_environ(emulators, source, database_url, tmp_path)
        with serving(replica_count, environ, tmp_path, workers=workers) as replicas:
            scheduler_state = health(replicas[0])["scheduler"]
            wait_for_scheduled_runs(store, replicas, 1)
            # Three simultaneous applies per round on a single process group too.
            urls = [replica.url for replica in replicas] * (3 if replica_count == 1 else 1)
            statuses = apply_concurrently(urls)
            wait_for_scheduled_runs(store, replicas, SCHEDULED_RUNS + 1)
            stop_all(replicas)

        assert scheduler_state["started"] is True
        assert scheduler_state["schedule"] == SCHEDULE
        assert scheduler_state["mode"] == "enforce"
        assert statuses == [200] * len(statuses)
        schedulers = replica_count * workers
        assert_exactly_once(store, emulators, replicas, schedulers, len(statuses))


def test_disabled_scheduler_leaves_api_up(emulators: EmulatorSet, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'state.db'}"

    with CounterSource() as source, Store.open(database_url) as store:
        environ = replica_environ(emulators, source, database_url, tmp_path)
        environ["ENVSYNC_ENABLED"] = "false"
        with serving(1, environ, tmp_path) as replicas:
            scheduler_state = health(replicas[0])["scheduler"]
            status = post_apply(replicas[0].url)
            # Two slots of the schedule pass, in which an enabled scheduler would have run.
            time.sleep(2.5)
            stop_all(replicas)

        runs = store.list_runs(limit=1000)

    assert scheduler_state["started"] is False
    assert "ENVSYNC_ENABLED" in scheduler_state["reason"]
    assert status == 200
    assert [run.trigger for run in runs] == [RunTrigger.API]
