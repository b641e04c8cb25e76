"""After a Render bulk PUT whose outcome is unknown, the engine never sends a second bulk PUT.

The unfinished PUT may land on Render while the engine reads the service again. A read
that races it can come back short without looking incomplete (the cursor it follows is
gone), and a whole-set PUT built from that read would delete every variable it missed.
Writing the rest key by key cannot delete anything it did not mean to.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from envsync.config import load_settings
from envsync.engine import Engine, RunRequest
from envsync.model import RunMode

SERVICE_ID = "srv-race0service00000000"
UNMANAGED = {f"APP_{index:03d}": f"app-{index}" for index in range(120)}


class RacingRender:
    """A scripted Render API: the first bulk PUT times out, and the read after it races
    that PUT, returning only the first page as if the list had ended there."""

    def __init__(self) -> None:
        self.variables = {**UNMANAGED, "BRIDGE_A": "old"}
        self.requests: list[tuple[str, str]] = []
        self.reads = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        path = request.url.path
        if request.method == "GET" and path.endswith("/env-vars"):
            return self._list(request)
        if request.method == "PUT" and path.endswith("/env-vars"):
            raise httpx.ReadTimeout("the bulk PUT timed out", request=request)
        if request.method == "PUT":
            key = path.rsplit("/", 1)[1]
            self.variables[key] = json.loads(request.content)["value"]
            return httpx.Response(200, json={"key": key, "value": self.variables[key]})
        return httpx.Response(404, json={"message": "not found"})

    def _list(self, request: httpx.Request) -> httpx.Response:
        items = list(self.variables.items())
        if "cursor" in request.url.params:
            self.reads += 1
            start = int(request.url.params["cursor"]) + 1
            # The second read after the timeout raced the PUT: its second page is empty.
            page = [] if self.reads == 2 else items[start : start + 100]
        else:
            start = 0
            page = items[:100]
        body = [
            {"envVar": {"key": key, "value": value}, "cursor": str(start + offset)}
            for offset, (key, value) in enumerate(page)
        ]
        return httpx.Response(200, json=body)


def test_unknown_bulk_outcome_finishes_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "canonical.env").write_text("BRIDGE_A=new\nBRIDGE_B=2\n", encoding="utf-8")
    environ = {
        "RENDER_API_URL": "http://127.0.0.1:9/v1",
        "RENDER_API_TOKEN": "rnd_race_token",
        "RENDER_SERVICE_ID": SERVICE_ID,
        "ENVSYNC_TARGETS": "render",
        "ENVSYNC_CANONICAL_FILE": str(tmp_path / "canonical.env"),
        "ENVSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "ENVSYNC_DISCOVERY_ORDER": "env",
        "ENVSYNC_INCLUDE_PREFIXES": "BRIDGE_",
        "ENVSYNC_RETRY_BASE_S": "0",
    }
    render = RacingRender()
    engine = Engine(
        load_settings(environ, cwd=tmp_path),
        environ=environ,
        cwd=tmp_path,
        transports={"render": httpx.MockTransport(render.handle)},
    )

    report = asyncio.run(engine.run(RunRequest(mode=RunMode.ENFORCE)))

    bulk_puts = [r for r in render.requests if r == ("PUT", f"/v1/services/{SERVICE_ID}/env-vars")]
    assert len(bulk_puts) == 1
    assert report.ok, report.results[0].errors
    assert render.variables == {**UNMANAGED, "BRIDGE_A": "new", "BRIDGE_B": "2"}
