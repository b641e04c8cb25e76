"""Scriptable HTTP servers on loopback that stand in for bridge-style vaults and dashboards.

Each server is a Starlette app under uvicorn in a background thread. A test scripts the
replies per path (a list is consumed in order, and its last reply repeats) and reads back
every request received, headers included, to check what envsync sent and to whom.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from envsync.config import Settings

# Settings every test starts from: quick retries and no real secret directories.
FAST_SETTINGS = {
    "ENVSYNC_MAX_RETRIES": "2",
    "ENVSYNC_RETRY_BASE_S": "0.01",
    "ENVSYNC_RETRY_MAX_S": "0.05",
    "ENVSYNC_HTTP_TIMEOUT_S": "2",
    "ENVSYNC_SECRET_DIRS": "/nonexistent/envsync-test-secrets",
    "ENVSYNC_DASHBOARD_TOKEN_URLS": "",
}

NO_JSON = object()


def make_settings(**values: str) -> Settings:
    """Settings from environment-style names, over FAST_SETTINGS."""
    return Settings(**{**FAST_SETTINGS, **values})


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a JSON body, or raw bytes, after an optional delay."""

    status: int = 200
    json_body: Any = NO_JSON
    raw: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    def render(self) -> Response:
        if self.raw is not None:
            content = self.raw
            media_type = "text/plain"
        elif self.json_body is not NO_JSON:
            content = json.dumps(self.json_body).encode()
            media_type = "application/json"
        else:
            content = b""
            media_type = None
        return Response(content, self.status, dict(self.headers), media_type)


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]


class LoopbackServer:
    """An HTTP server on 127.0.0.1 with scripted replies and a log of requests."""

    def __init__(self) -> None:
        self._replies: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self.received: list[Received] = []
        app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "LIST"])]
        )
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the loopback test server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._replies[path] = list(replies)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.received.clear()

    def requests_to(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]

    async def _handle(self, request: Request) -> Response:
        with self._lock:
            self.received.append(
                Received(
                    request.method,
                    request.url.path,
                    request.url.query,
                    {key.lower(): value for key, value in request.headers.items()},
                )
            )
            replies = self._replies.get(request.url.path)
            reply = None
            if replies:
                reply = replies.pop(0) if len(replies) > 1 else replies[0]

        if reply is None:
            return Response(b"no reply scripted", 404, media_type="text/plain")
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        return reply.render()


@pytest.fixture(scope="session")
def loopback_pair() -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    """Two servers on different ports, so two origins, for the whole session."""
    first, second = LoopbackServer(), LoopbackServer()
    first.start()
    second.start()
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def server(loopback_pair: tuple[LoopbackServer, LoopbackServer]) -> LoopbackServer:
    """The server a test points envsync at, with no replies scripted and no requests logged."""
    loopback_pair[0].reset()
    return loopback_pair[0]


@pytest.fixture
def other_origin(loopback_pair: tuple[LoopbackServer, LoopbackServer]) -> LoopbackServer:
    """A second server on another port: another origin, where no credential may go."""
    loopback_pair[1].reset()
    return loopback_pair[1]
