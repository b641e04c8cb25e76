"""The service: tracked runs, graceful shutdown, scheduler and sink wiring, cached checks."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from envsync.config import Settings, load_settings
from envsync.emulators import EmulatorSet
from envsync.engine import RunRequest
from envsync.http import call_observers
from envsync.model import RunMode
from envsync.service import CachedCheck, Service
from envsync.store import Store
from tests.api.conftest import service_environ


def _service(
    emulators: EmulatorSet, folder: Path, **options: Any
) -> tuple[Service, dict[str, str]]:
    settings_overrides = options.pop("settings", {})
    environ = {**service_environ(emulators, folder), **settings_overrides}
    settings = load_settings(environ, cwd=folder)
    options.setdefault("schedule", False)
    return Service(settings, environ=environ, cwd=folder, **options), environ


def _apply(targets: tuple[str, ...] = ("render",)) -> RunRequest:
    return RunRequest(mode=RunMode.ENFORCE, targets=targets, trigger="api")


def test_stop_waits_for_in_flight_apply(emulators: EmulatorSet, tmp_path: Path) -> None:
    emulators.configure("render", latency_ms=200)
    service, _ = _service(emulators, tmp_path)

    async def scenario() -> tuple[str, list[str]]:
        await service.start()
        run_id = await service.submit(_apply())
        abandoned = await service.stop(grace_s=60)
        return run_id, abandoned

    run_id, abandoned = asyncio.run(scenario())

    assert abandoned == []
    with Store.open(service.settings.database_url.get_secret_value()) as store:
        run = store.get_run(run_id)
    assert run is not None
    assert run.status.value == "succeeded"


def test_stop_abandons_runs_past_grace(
    emulators: EmulatorSet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulators.configure("render", latency_ms=5000)
    service, _ = _service(emulators, tmp_path)

    async def scenario() -> tuple[str, list[str]]:
        await service.start()
        run_id = await service.submit(_apply())
        await asyncio.sleep(0.05)
        abandoned = await service.stop(grace_s=0.1)
        return run_id, abandoned

    with caplog.at_level(logging.WARNING, logger="envsync.service"):
        run_id, abandoned = asyncio.run(scenario())

    assert abandoned == [run_id]
    with Store.open(service.settings.database_url.get_secret_value()) as store:
        run = store.get_run(run_id)
    assert run is not None
    assert run.status.value == "abandoned"
    assert any(run_id in record.getMessage() for record in caplog.records)


def test_run_failing_before_targets_is_recorded(emulators: EmulatorSet, tmp_path: Path) -> None:
    service, _ = _service(
        emulators, tmp_path, settings={"ENVSYNC_CANONICAL_FILE": str(tmp_path / "missing.env")}
    )

    async def scenario() -> str:
        await service.start()
        run_id = await service.submit(_apply())
        await service.stop(grace_s=30)
        return run_id

    run_id = asyncio.run(scenario())

    with Store.open(service.settings.database_url.get_secret_value()) as store:
        run = store.get_run(run_id)
    assert run is not None
    assert run.status.value == "failed"
    error = service.run_error(run_id)
    assert error is not None
    assert "missing.env" in error


class FakeScheduler:
    """Records how the service drives a scheduler."""

    def __init__(self, settings: Settings, store: Store, run_due: Any) -> None:
        self.settings = settings
        self.store = store
        self.run_due = run_due
        self.started = False
        self.stopped_with: float | None = None

    async def start(self) -> None:
        self.started = True

    async def stop(self, grace_s: float | None = None) -> None:
        self.stopped_with = grace_s

    def state(self) -> dict[str, Any]:
        return {"next_slot": "2030-01-01T00:00:00Z"}


def test_scheduler_is_started_and_stopped(emulators: EmulatorSet, tmp_path: Path) -> None:
    schedulers: list[FakeScheduler] = []

    def factory(settings: Settings, store: Store, run_due: Any) -> FakeScheduler:
        schedulers.append(FakeScheduler(settings, store, run_due))
        return schedulers[-1]

    service, _ = _service(
        emulators,
        tmp_path,
        schedule=True,
        scheduler_factory=factory,
        settings={"ENVSYNC_MODE": "enforce"},
    )

    async def scenario() -> dict[str, Any]:
        await service.start()
        state = service.scheduler_state()
        await schedulers[0].run_due(datetime(2030, 1, 1, tzinfo=UTC))
        await service.stop(grace_s=5)
        return state

    state = asyncio.run(scenario())

    assert schedulers[0].started is True
    assert state == {"started": True, "next_slot": "2030-01-01T00:00:00Z"}
    assert schedulers[0].stopped_with == 5
    with Store.open(service.settings.database_url.get_secret_value()) as store:
        runs = store.list_runs()
    assert [(run.trigger.value, run.mode.value) for run in runs] == [("scheduler", "enforce")]
    assert runs[0].actor == "slot 2030-01-01T00:00:00+00:00"


def test_scheduler_skipped_when_disabled(emulators: EmulatorSet, tmp_path: Path) -> None:
    factory_calls: list[object] = []
    service, _ = _service(
        emulators,
        tmp_path,
        schedule=True,
        scheduler_factory=lambda *args: factory_calls.append(args),
        settings={"ENVSYNC_ENABLED": "false"},
    )

    async def scenario() -> dict[str, Any]:
        await service.start()
        state = service.scheduler_state()
        await service.stop()
        return state

    state = asyncio.run(scenario())

    assert factory_calls == []
    assert state["started"] is False
    assert "ENVSYNC_ENABLED" in state["reason"]


def test_stop_removes_call_observer(emulators: EmulatorSet, tmp_path: Path) -> None:
    service, _ = _service(emulators, tmp_path)

    async def scenario() -> bool:
        await service.start()
        registered = service.metrics.observe_call in call_observers
        await service.stop()
        return registered

    assert asyncio.run(scenario()) is True
    assert service.metrics.observe_call not in call_observers


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[dict[str, Any], str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self.bodies.append((body, self.headers.get("X-Envsync-Signature", "")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, Any], str]]]]:
    _Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.bodies
    server.shutdown()
    server.server_close()


def test_webhook_sink_receives_run_events(
    emulators: EmulatorSet,
    tmp_path: Path,
    receiver: tuple[str, list[tuple[dict[str, Any], str]]],
) -> None:
    url, bodies = receiver
    service, _ = _service(
        emulators,
        tmp_path,
        settings={"ENVSYNC_WEBHOOK_URLS": url, "ENVSYNC_WEBHOOK_SECRET": "webhook-secret"},
    )

    async def scenario() -> None:
        await service.start()
        await service.run(_apply())
        await service.stop(grace_s=10)

    asyncio.run(scenario())

    types = [body["type"] for body, _ in bodies]
    assert "ENVSYNC_COMPLETE" in types
    assert all(signature.startswith("t=") for _, signature in bodies)


def test_cached_check_runs_once_per_max_age() -> None:
    now = [0.0]
    calls: list[int] = []

    def check() -> int:
        calls.append(1)
        return len(calls)

    cached = CachedCheck(check, clock=lambda: now[0], max_age_s=1.0)

    async def scenario() -> list[int]:
        values = [await cached.get() for _ in range(3)]
        now[0] = 0.99
        values.append(await cached.get())
        now[0] = 1.5
        values.append(await cached.get())
        return values

    assert asyncio.run(scenario()) == [1, 1, 1, 1, 2]
