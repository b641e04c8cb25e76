"""A scripted Netlify API on httpx.MockTransport, for unit tests of request and response shapes.

Tests register a response per method and path. Every request is recorded with its query and
JSON body, so that a test can assert exactly what was sent. Tests that need the platform's
rules run against the Netlify emulator instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from envsync.config import Settings
from envsync.model import SecretValue
from envsync.providers.netlify import NetlifyProvider

BASE_URL = "http://127.0.0.1:9/api/v1"
SITE_ID = "5b4e6a8c-0d1f-4a2b-9c3d-4e5f60718293"
ACCOUNT_ID = "64f0c2a9e1b3d4c5f6a7b8c9"
TOKEN = SecretValue("nfp_unit_test_token_0001")

Result = TypeVar("Result")
Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


@dataclass(frozen=True)
class SentRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    raw_path: str


@dataclass
class MockNetlify:
    """Replies registered per (method, path under /api/v1); unknown routes get 404."""

    replies: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    sent: list[SentRequest] = field(default_factory=list)

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        """Queue replies for a route; the last one repeats once the others are used."""
        self.replies[(method, path)] = list(replies)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        body = json.loads(request.content) if request.content else None
        raw_path = request.url.raw_path.decode().split("?", 1)[0].removeprefix("/api/v1")
        query = dict(request.url.params)
        self.sent.append(SentRequest(request.method, path, query, body, raw_path))

        queued = self.replies.get((request.method, path))
        if not queued:
            return httpx.Response(404, text="Not Found")
        reply = queued.pop(0) if len(queued) > 1 else queued[0]
        return reply(request) if callable(reply) else reply

    def provider(self, **settings: Any) -> NetlifyProvider:
        values: dict[str, Any] = {
            "NETLIFY_API_URL": BASE_URL,
            "ENVSYNC_MAX_RETRIES": 2,
            "ENVSYNC_RETRY_BASE_S": 0,
            "ENVSYNC_RETRY_MAX_S": 0,
        }
        values.update(settings)
        return NetlifyProvider(
            Settings(**values),
            TOKEN,
            transport=httpx.MockTransport(self.handle),
            sleep=_no_sleep,
        )

    def calls(self, method: str | None = None) -> list[SentRequest]:
        return [sent for sent in self.sent if method is None or sent.method == method]


async def _no_sleep(seconds: float) -> None:
    return None


def run(coroutine: Coroutine[Any, Any, Result]) -> Result:
    return asyncio.run(coroutine)


def variable(
    key: str,
    *values: dict[str, Any],
    is_secret: bool = False,
    scopes: list[str] | None = None,
    updated_at: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    """An envVar object in the platform's response shape."""
    document: dict[str, Any] = {
        "key": key,
        "values": list(values),
        "is_secret": is_secret,
        "updated_at": updated_at,
        "updated_by": {"id": "u1", "full_name": "Test", "email": "t@example.com"},
    }
    if scopes is not None:
        document["scopes"] = scopes
    return document


def value(
    context: str, text: str | None, value_id: str, branch: str | None = None
) -> dict[str, Any]:
    """One value object; `text=None` leaves the `value` field out, as for a hidden secret."""
    document: dict[str, Any] = {"id": value_id, "context": context}
    if branch is not None:
        document["context_parameter"] = branch
    if text is not None:
        document["value"] = text
    return document
