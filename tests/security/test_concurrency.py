"""Applies to one target never interleave, and every change is written exactly once.

Each case starts real `envsync serve` processes: one on SQLite, or three replicas sharing
PostgreSQL. Their schedulers apply every second. The canonical source is a loopback server
that returns a new value on every read, so every apply has one change to write. While the
schedulers run, the test sends twenty simultaneous `POST /envsync/apply/render` requests,
spread over the processes. The Render emulator responds to each request after a delay. With
the default lock timeout every apply waits its turn; with a short one, some applies wait
longer than it and get 409.

The witnesses:

- every request gets a well-formed answer: 200 with the target applied, or 409 (or 502)
  with the documented body and an error naming the cause; never 500, never a dropped
  connection;
- the emulator's request log: the writes that touched the canonical key number exactly the
  applies that succeeded (API and scheduler), which is also what the run history records;
- the same log: no two requests to the target overlap in time, and reads and writes
  alternate, so no apply read or wrote between another apply's read and write.

The figures of each case are printed at the end of the test session for the docs.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from envsync.emulators import EmulatorSet
from envsync.store import RunStatus, RunTrigger, Store
from tests.security.harness import REPORT_LINES
from tests.test_replicas import (
    CANONICAL_KEY,
    CounterSource,
    Replica,
    assert_serialised,
    replica_environ,
    serving,
    target_requests,
    wait_for_scheduled_runs,
)

CONCURRENT_APPLIES = 20

# The Render emulator delays every response by this much, so that twenty applies queue for
# longer than the short lock timeout of some cases, which then take the 409 path.
EMULATOR_LATENCY_MS = 40
SHORT_LOCK_TIMEOUT_S = "1"
DEFAULT_LOCK_TIMEOUT_S = "30"

# A guard against a hang; the test asserts nothing about speed.
REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Answer:
    """One apply request's outcome: its status and body, or the transport failure."""

    status: int | None
    body: Any
    failure: str | None = None


@dataclass(frozen=True)
class Figures:
    """What one case did, for the docs."""

    case: str
    requests: int
    applies: int
    writes: int
    max_in_flight: int
    max_at_target: int
    conflicts: int
    scheduled: int

    def __str__(self) -> str:
        return (
            f"{self.case}: {self.requests} concurrent apply requests, {self.applies} applies "
            f"succeeded ({self.scheduled} scheduled), {self.writes} writes, "
            f"{self.max_in_flight} requests in flight at once, {self.max_at_target} request "
            f"at the target at once, {self.conflicts} answered 409"
        )


class InFlight:
    """Counts the apply requests in flight and keeps the highest count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = 0
        self.maximum = 0

    def __enter__(self) -> None:
        with self._lock:
            self._now += 1
            self.maximum = max(self.maximum, self._now)

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._now -= 1


def post_apply(url: str, in_flight: InFlight, start: threading.Barrier) -> Answer:
    start.wait()
    with in_flight:
        try:
            response = httpx.post(f"{url}/envsync/apply/render", timeout=REQUEST_TIMEOUT_S)
        except httpx.TransportError as error:
            return Answer(None, None, type(error).__name__)
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Answer(response.status_code, body)


def apply_all_at_once(replicas: list[Replica]) -> tuple[list[Answer], int]:
    """Send the concurrent applies round-robin over the replicas, released together."""
    spread = itertools.islice(itertools.cycle(replicas), CONCURRENT_APPLIES)
    urls = [replica.url for replica in spread]
    in_flight = InFlight()
    start = threading.Barrier(len(urls))
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        answers = list(pool.map(lambda url: post_apply(url, in_flight, start), urls))
    return answers, in_flight.maximum


def assert_well_formed(answer: Answer) -> None:
    assert answer.failure is None, f"connection failed: {answer.failure}"
    assert answer.status in (200, 409, 502), answer.status
    body = answer.body
    assert isinstance(body, dict), body
    assert body["provider"] == "render"
    assert body["target"].startswith("render/")
    if answer.status == 200:
        assert body["applied"] is True
        assert body["errors"] == []
        assert body["written"] == 1
        return
    assert body["applied"] is False
    assert body["errors"], body
    if answer.status == 409:
        assert "another apply of this target is running" in body["errors"][0]


def max_overlap(requests: list[dict[str, Any]]) -> int:
    """Return the maximum number of requests the emulator served for the target at once."""
    edges = [(request["started"], 1) for request in requests]
    edges += [(request["ended"], -1) for request in requests]
    current = maximum = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        maximum = max(maximum, current)
    return maximum


def writes_of_key(requests: list[dict[str, Any]]) -> int:
    return sum(1 for request in requests if CANONICAL_KEY in (request.get("keys") or []))


def succeeded_applies(store: Store) -> list[Any]:
    return [run for run in store.list_runs(limit=1000) if run.status is RunStatus.SUCCEEDED]


def recorded_writes(store: Store) -> int:
    return sum(len(target.written) for run in store.list_runs(limit=1000) for target in run.targets)


# (database, replicas, ENVSYNC_LOCK_TIMEOUT_S)
CASES = [
    pytest.param("sqlite", 1, DEFAULT_LOCK_TIMEOUT_S, id="one-process-sqlite"),
    pytest.param("sqlite", 1, SHORT_LOCK_TIMEOUT_S, id="one-process-sqlite-short-lock"),
    pytest.param(
        "postgresql",
        3,
        DEFAULT_LOCK_TIMEOUT_S,
        id="three-replicas-postgresql",
        marks=pytest.mark.postgres,
    ),
    pytest.param(
        "postgresql",
        3,
        SHORT_LOCK_TIMEOUT_S,
        id="three-replicas-postgresql-short-lock",
        marks=pytest.mark.postgres,
    ),
]


@pytest.fixture
def slow_render(emulators: EmulatorSet) -> Iterator[EmulatorSet]:
    emulators.configure("render", latency_ms=EMULATOR_LATENCY_MS)
    yield emulators
    emulators.reset()


@pytest.mark.parametrize(("database", "replica_count", "lock_timeout_s"), CASES)
def test_concurrent_applies_write_once_in_turn(
    database: str,
    replica_count: int,
    lock_timeout_s: str,
    slow_render: EmulatorSet,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    emulators = slow_render
    if database == "postgresql":
        database_url: str = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path / 'state.db'}"

    with CounterSource() as source, Store.open(database_url) as store:
        environ = replica_environ(emulators, source, database_url, tmp_path)
        environ.update(ENVSYNC_TARGETS="render", ENVSYNC_LOCK_TIMEOUT_S=lock_timeout_s)
        with serving(replica_count, environ, tmp_path) as replicas:
            wait_for_scheduled_runs(store, replicas, 1)
            answers, max_in_flight = apply_all_at_once(replicas)
            scheduled_before = _scheduled(store)
            wait_for_scheduled_runs(store, replicas, scheduled_before + 1)

        succeeded = succeeded_applies(store)
        written_in_history = recorded_writes(store)
        requests = target_requests(emulators, "render")

    for answer in answers:
        assert_well_formed(answer)
    api_successes = sum(1 for answer in answers if answer.status == 200)
    scheduled_successes = sum(1 for run in succeeded if run.trigger is RunTrigger.SCHEDULER)
    assert api_successes == sum(1 for run in succeeded if run.trigger is RunTrigger.API)
    assert writes_of_key(requests) == api_successes + scheduled_successes
    assert written_in_history == writes_of_key(requests)
    assert_serialised(requests)

    figures = Figures(
        case=request.node.callspec.id,
        requests=len(answers),
        applies=len(succeeded),
        writes=writes_of_key(requests),
        max_in_flight=max_in_flight,
        max_at_target=max_overlap(requests),
        conflicts=sum(1 for answer in answers if answer.status == 409),
        scheduled=scheduled_successes,
    )
    REPORT_LINES.append(str(figures))
    print(figures)
    assert figures.max_at_target == 1
    if lock_timeout_s == DEFAULT_LOCK_TIMEOUT_S:
        assert figures.conflicts == 0


def _scheduled(store: Store) -> int:
    return sum(1 for run in store.list_runs(limit=1000) if run.trigger is RunTrigger.SCHEDULER)
