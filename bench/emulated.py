"""The emulators for a benchmark: in this process, or in a process of their own.

Wall-time figures need the emulators in another process, so that envsync and the
emulators each have a core and do not share one interpreter lock. Request counts do not
depend on timing, and use the in-process `EmulatorSet`. Both are driven through the same
small interface, `Emulators`, which the control API under `/_emulator/` provides.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx

_START_TIMEOUT_S = 30.0


class Emulators(Protocol):
    """The part of a running emulator set that the benchmarks use."""

    @property
    def render_url(self) -> str: ...

    @property
    def netlify_url(self) -> str: ...

    def seed(self, document: Mapping[str, Any]) -> None: ...

    def reset(self) -> None: ...

    def requests(self, api: str) -> list[dict[str, Any]]: ...

    def configure(self, api: str, **changes: Any) -> dict[str, Any]: ...


class EmulatorProcess:
    """`envsync emulate` in a child process on free loopback ports.

    The seed is handed over as a file, so that `reset` brings the benchmark's own starting
    state back. `env` is the child's environment (tests pass their loopback guard in it).
    """

    def __init__(
        self,
        seed: Mapping[str, Any],
        *,
        latency_ms: int = 0,
        rate_window_s: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._seed = dict(seed)
        self._latency_ms = latency_ms
        self._rate_window_s = rate_window_s
        self._env = dict(env) if env is not None else dict(os.environ)
        self._process: subprocess.Popen[str] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._urls: dict[str, str] = {}
        self._control = httpx.Client(timeout=60.0)

    def start(self) -> EmulatorProcess:
        self._folder = tempfile.TemporaryDirectory(prefix="envsync-bench-emulators-")
        seed_path = Path(self._folder.name) / "seed.json"
        seed_path.write_text(json.dumps(self._seed), encoding="utf-8")

        command = [
            sys.executable,
            "-c",
            "from envsync.cli import main; main()",
            "emulate",
            "--render-port=0",
            "--netlify-port=0",
            "--vault-port=0",
            f"--seed={seed_path}",
            f"--latency-ms={self._latency_ms}",
            "--json",
        ]
        if self._rate_window_s is not None:
            command.append(f"--rate-window-s={self._rate_window_s}")
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, env=self._env, text=True)
        self._urls = self._read_urls()
        return self

    def _read_urls(self) -> dict[str, str]:
        assert self._process is not None and self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the emulators exited before printing their addresses")
        described = json.loads(line)
        return {api: str(entry["url"]) for api, entry in described.items()}

    def stop(self) -> None:
        self._control.close()
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the emulators are not started")
        return self._process.pid

    @property
    def render_url(self) -> str:
        return self._urls["render"]

    @property
    def netlify_url(self) -> str:
        return self._urls["netlify"]

    def _control_url(self, api: str, name: str) -> str:
        origin = httpx.URL(self._urls[api]).copy_with(path="/")
        return str(origin.join(f"/_emulator/{name}"))

    def seed(self, document: Mapping[str, Any]) -> None:
        for api, part in document.items():
            self._post(api, "seed", part)

    def reset(self) -> None:
        for api in ("render", "netlify"):
            self._post(api, "reset", {})

    def requests(self, api: str) -> list[dict[str, Any]]:
        response = self._control.get(self._control_url(api, "requests"))
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return entries

    def state(self, api: str) -> dict[str, Any]:
        response = self._control.get(self._control_url(api, "state"))
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state

    def configure(self, api: str, **changes: Any) -> dict[str, Any]:
        config: dict[str, Any] = self._post(api, "config", changes)
        return config

    def _post(self, api: str, name: str, body: Any) -> Any:
        response = self._control.post(self._control_url(api, name), json=body)
        response.raise_for_status()
        return response.json()
