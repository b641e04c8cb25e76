"""Fixtures that serve the API with uvicorn on a loopback port, against the emulators.

`start_api(**settings)` builds a Service from settings that point at the emulators, a
canonical .env file and a SQLite store in the test's folder, serves its app from a
background thread, and returns a `RunningApi`. A setting given as None is removed. The
scheduler is off unless a test passes one in, so no scheduled run can start in the middle
of a test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from envsync.api import create_app
from envsync.config import load_settings
from envsync.emulators import EmulatorSet
from envsync.service import Service

API_TOKEN = "envsync-test-api-token-0001"
RENDER_SERVICE_ID = "srv-d0emu0api00000000000"
RENDER_LEDGER_ID = f"render:service:{RENDER_SERVICE_ID}"

CANONICAL_ENV = "BRIDGE_VERSION=1.9.8\nBRIDGE_API_URL=https://api.example.com\n"


class ServerThread:
    """One ASGI app served by uvicorn on 127.0.0.1 from a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, lifespan="on", ws="none")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="envsync-api", daemon=True)
        self.failure: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        for _ in range(1000):
            if self.server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not self.server.started:
            raise RuntimeError(f"the API server did not start: {self.failure!r}")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(30)

    def _serve(self) -> None:
        try:
            asyncio.run(self.server.serve(sockets=[self._socket]))
        except BaseException as error:  # reported by start()
            self.failure = error
        finally:
            self._socket.close()


@dataclass
class RunningApi:
    url: str
    service: Service
    environ: dict[str, str]
    folder: Path
    server: ServerThread

    def client(self, token: str | None = API_TOKEN, **options: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **options)


def service_environ(emulators: EmulatorSet, folder: Path) -> dict[str, str]:
    """Settings that point every URL at the emulators and every file into `folder`."""
    canonical = folder / "canonical.env"
    canonical.write_text(CANONICAL_ENV, encoding="utf-8")
    return {
        "RENDER_API_URL": emulators.render_url,
        "NETLIFY_API_URL": emulators.netlify_url,
        "RENDER_API_TOKEN": emulators.render_token,
        "NETLIFY_API_TOKEN": emulators.netlify_token,
        "ENVSYNC_API_TOKEN": API_TOKEN,
        "ENVSYNC_CANONICAL_FILE": str(canonical),
        "ENVSYNC_DATABASE_URL": f"sqlite:///{folder / 'state.db'}",
        "ENVSYNC_CONFIG_FILE": str(folder / "envsync.toml"),
        "ENVSYNC_DISCOVERY_ORDER": "env",
        "ENVSYNC_SECRET_DIRS": str(folder / "secrets"),
        "ENVSYNC_RETRY_BASE_S": "0",
        "ENVSYNC_MAX_RETRIES": "1",
    }


StartApi = Callable[..., RunningApi]


@pytest.fixture
def start_api(emulators: EmulatorSet, tmp_path: Path) -> Iterator[StartApi]:
    running: list[RunningApi] = []

    def start(
        *,
        service_options: dict[str, Any] | None = None,
        app_options: dict[str, Any] | None = None,
        **settings: str | None,
    ) -> RunningApi:
        environ = service_environ(emulators, tmp_path)
        for name, value in settings.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        loaded = load_settings(environ, cwd=tmp_path)
        options = {"schedule": False, **(service_options or {})}
        service = Service(loaded, environ=environ, cwd=tmp_path, **options)
        server = ServerThread(create_app(service, **(app_options or {})))
        server.start()
        api = RunningApi(server.url, service, environ, tmp_path, server)
        running.append(api)
        return api

    yield start
    for api in running:
        api.server.stop()


@pytest.fixture
def api(start_api: StartApi) -> RunningApi:
    return start_api()
