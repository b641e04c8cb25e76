"""A scripted Render API on httpx.MockTransport, for unit tests of request and response shapes.

Tests register responses per method and path, or serve a service's variables as cursor
pages the way Render does. Every request is recorded with its query and JSON body, so a
test can assert exactly what was sent. Tests of the platform's behaviour as a whole run
against the Render emulator over loopback instead.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx

from envsync.config import Settings, TargetSpec
from envsync.model import Change, Op, SecretValue, TargetRef
from envsync.providers.render import RenderProvider

BASE_URL = "http://127.0.0.1:9/v1"
SERVICE_ID = "srv-d0unittest00000000a"
GROUP_ID = "evg-d0unittest00000000a"
OWNER_ID = "tea-d0unittest00000000a"
TOKEN = SecretValue("rnd_unitTestToken0000000000001")

Result = TypeVar("Result")
Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """A clock that only `sleep` moves, so waits are recorded instead of spent."""

    def __init__(self) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass(frozen=True)
class SentRequest:
    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    body: Any


@dataclass
class MockRender:
    """Replies registered per (method, path under /v1); unknown routes get Render's 404."""

    replies: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    sent: list[SentRequest] = field(default_factory=list)
    clock: FakeClock = field(default_factory=lambda: FakeClock())

    @property
    def sleeps(self) -> list[float]:
        return self.clock.sleeps

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        """Queue replies for a route; the last one repeats once the others are used."""
        self.replies[(method, path)] = list(replies)

    def serve_env_vars(
        self, env_vars: Sequence[tuple[str, str]], service_id: str = SERVICE_ID
    ) -> None:
        """Serve a service's variables as Render's cursor pages, honouring `limit`."""
        self.reply("GET", f"/services/{service_id}/env-vars", pages_of(env_vars))

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1")
        raw_path = request.url.raw_path.decode().split("?")[0].removeprefix("/v1")
        body = json.loads(request.content) if request.content else None
        self.sent.append(
            SentRequest(request.method, path, raw_path, dict(request.url.params), body)
        )

        queued = self.replies.get((request.method, path))
        if not queued:
            return httpx.Response(404, json={"message": f"not found: {path}"})
        reply = queued.pop(0) if len(queued) > 1 else queued[0]
        return reply(request) if callable(reply) else reply

    def provider(self, **settings: Any) -> RenderProvider:
        values: dict[str, Any] = {
            "RENDER_API_URL": BASE_URL,
            "ENVSYNC_MAX_RETRIES": 2,
            "ENVSYNC_RETRY_BASE_S": 0,
            "ENVSYNC_RETRY_MAX_S": 0,
        }
        values.update(settings)
        return RenderProvider(
            Settings(**values),
            TOKEN,
            transport=httpx.MockTransport(self.handle),
            sleep=self.clock.sleep,
            clock=self.clock.time,
        )

    def calls(self, method: str | None = None) -> list[SentRequest]:
        return [sent for sent in self.sent if method is None or sent.method == method]


def pages_of(env_vars: Sequence[tuple[str, str]]) -> Callable[[httpx.Request], httpx.Response]:
    """A handler that lists `env_vars` in pages of the requested limit, cursor after cursor."""
    items = [
        {"envVar": {"key": key, "value": value}, "cursor": f"cur{index:05d}"}
        for index, (key, value) in enumerate(env_vars)
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params.get("limit", "20"))
        cursor = request.url.params.get("cursor")
        start = 0 if cursor is None else int(cursor.removeprefix("cur")) + 1
        return httpx.Response(200, json=items[start : start + limit])

    return handle


def numbered(count: int, prefix: str = "KEY_") -> list[tuple[str, str]]:
    return [(f"{prefix}{index:03d}", f"value-{index:03d}") for index in range(count)]


def bulk_echo(request: httpx.Request) -> httpx.Response:
    """Render's bulk PUT response: the stored set, in request order, with cursors."""
    body = json.loads(request.content)
    return httpx.Response(
        200,
        json=[{"envVar": item, "cursor": f"cur{index:05d}"} for index, item in enumerate(body)],
    )


def key_echo(request: httpx.Request) -> httpx.Response:
    """Render's per-key PUT response: the stored variable."""
    key = request.url.path.rsplit("/", 1)[-1]
    return httpx.Response(200, json={"key": key, "value": json.loads(request.content)["value"]})


def group_document(
    env_vars: Sequence[tuple[str, str]],
    *,
    name: str = "shared",
    service_ids: Sequence[str] = (),
    group_id: str = GROUP_ID,
) -> dict[str, Any]:
    """An environment group in Render's response shape."""
    return {
        "id": group_id,
        "name": name,
        "ownerId": OWNER_ID,
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
        "envVars": [{"key": key, "value": value} for key, value in env_vars],
        "secretFiles": [],
        "serviceLinks": [{"id": sid, "name": sid, "type": "web"} for sid in service_ids],
    }


def service_item(service_id: str, name: str, owner_id: str = OWNER_ID) -> dict[str, Any]:
    """One item of `GET /services`: the service beside its cursor."""
    return {
        "cursor": f"c-{service_id}",
        "service": {
            "id": service_id,
            "name": name,
            "ownerId": owner_id,
            "type": "web_service",
            "slug": name,
            "suspended": "not_suspended",
        },
    }


def change(key: str, op: Op, new: str | None = None, old: str | None = None) -> Change:
    return Change(
        key=key,
        op=op,
        old=SecretValue(old) if old is not None else None,
        new=SecretValue(new) if new is not None else None,
    )


class ProgressLog:
    """A WriteProgress callback that records the keys confirmed, in order."""

    def __init__(self) -> None:
        self.confirmed: list[tuple[str, Op, str | None]] = []

    async def __call__(self, done: Change, updated_at: str | None) -> None:
        self.confirmed.append((done.key, done.op, updated_at))

    @property
    def keys(self) -> list[str]:
        return [key for key, _, _ in self.confirmed]


def run(coroutine: Coroutine[Any, Any, Result]) -> Result:
    return asyncio.run(coroutine)


def run_with(
    mock: MockRender, action: Callable[[RenderProvider], Awaitable[Result]], **settings: Any
) -> Result:
    """Build a provider on the mock, run `action` with it and close it."""

    async def go() -> Result:
        provider = mock.provider(**settings)
        try:
            return await action(provider)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def service_target(service_id: str = SERVICE_ID) -> TargetRef:
    return TargetRef(provider="render", kind="service", id=service_id, name=f"render/{service_id}")


def group_target(group_id: str = GROUP_ID, name: str | None = None) -> TargetRef:
    return TargetRef(
        provider="render", kind="env_group", id=group_id, name=name or f"render-group/{group_id}"
    )


def service_spec(
    selector: str = SERVICE_ID,
    selector_kind: Literal["id", "name", "auto"] = "id",
    **fields: Any,
) -> TargetSpec:
    return TargetSpec("render", "service", selector, selector_kind, **fields)


def group_spec(group_id: str = GROUP_ID, **fields: Any) -> TargetSpec:
    return TargetSpec("render", "env_group", group_id, "id", **fields)
