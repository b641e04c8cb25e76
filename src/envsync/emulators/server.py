"""Serve the Render, Netlify and Vault emulators on loopback with uvicorn.

`EmulatorSet` runs the three apps in one background thread, for tests, the demo and
benchmarks:

    with EmulatorSet() as emulators:
        client = httpx.Client(base_url=emulators.render_url,
                              headers={"Authorization": f"Bearer {emulators.render_token}"})

`run_emulators` serves them in the foreground until SIGINT or SIGTERM; `envsync emulate`
calls it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import logging
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

import uvicorn

from envsync.emulators.common import Emulator, JSONObject, SeedError
from envsync.emulators.netlify import NetlifyEmulator
from envsync.emulators.render import RenderEmulator
from envsync.emulators.seed import APIS, split_seed
from envsync.emulators.vault import VaultEmulator

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PORTS = {"render": 8701, "netlify": 8702, "vault": 8703}
_BASE_PATHS = {"render": "/v1", "netlify": "/api/v1", "vault": ""}
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_CALL_TIMEOUT_S = 30.0


class EmulatorSet:
    """The three emulators served by uvicorn on loopback from one background thread.

    Port 0 picks a free port. The seed document has the parts `render`, `netlify` and
    `vault`; a missing part takes the default seed's. Methods that read or change state
    run on the server's event loop, so they are safe to call from any thread while the
    set is running; `render`, `netlify` and `vault` give the emulator objects themselves,
    whose `state` may be read for assertions between requests.
    """

    def __init__(
        self,
        seed: Mapping[str, Any] | None = None,
        *,
        latency_ms: int = 0,
        rate_window_s: float | None = None,
        host: str = "127.0.0.1",
        render_port: int = 0,
        netlify_port: int = 0,
        vault_port: int = 0,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the emulators serve only on loopback (127.0.0.1 or ::1), not {host}")

        parts = split_seed(seed)
        options: dict[str, Any] = {"latency_ms": latency_ms, "rate_window_s": rate_window_s}
        self.render = RenderEmulator(parts["render"], **options)
        self.netlify = NetlifyEmulator(parts["netlify"], **options)
        self.vault = VaultEmulator(parts["vault"], **options)
        self.host = host
        self._requested_ports = {
            "render": render_port,
            "netlify": netlify_port,
            "vault": vault_port,
        }
        self._ports: dict[str, int] = {}
        self._servers: list[uvicorn.Server] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # Lifecycle.

    def start(self) -> EmulatorSet:
        if self._thread is not None:
            return self

        sockets = {api: self._bind(self._requested_ports[api]) for api in APIS}
        self._ports = {api: sock.getsockname()[1] for api, sock in sockets.items()}
        self._thread = threading.Thread(
            target=self._serve_in_thread, args=(sockets,), name="envsync-emulators", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"the emulators failed to start: {self._failure!r}")
        logger.info("emulators serving on %s ports %s", self.host, self._ports)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_S)
        self._thread = None
        self._loop = None
        self._servers = []
        self._ready.clear()

    def __enter__(self) -> EmulatorSet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Addresses and tokens.

    def base_url(self, api: str) -> str:
        """Return the API's base URL, e.g. `http://127.0.0.1:PORT/v1` for Render."""
        if api not in self._ports:
            raise RuntimeError("the emulators are not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._ports[api]}{_BASE_PATHS[api]}"

    @property
    def render_url(self) -> str:
        return self.base_url("render")

    @property
    def netlify_url(self) -> str:
        return self.base_url("netlify")

    @property
    def vault_url(self) -> str:
        return self.base_url("vault")

    @property
    def render_token(self) -> str:
        return _first_token(self.render)

    @property
    def netlify_token(self) -> str:
        return _first_token(self.netlify)

    @property
    def vault_token(self) -> str:
        return _first_token(self.vault)

    def emulator(self, api: str) -> Emulator:
        emulators: dict[str, Emulator] = {
            "render": self.render,
            "netlify": self.netlify,
            "vault": self.vault,
        }
        if api not in emulators:
            raise ValueError(f"unknown API {api!r}; the APIs are {', '.join(APIS)}")
        return emulators[api]

    # The control API, run on the server's loop.

    def seed(self, document: Mapping[str, Any]) -> None:
        """Replace the state of each API named in the document (a missing part is kept)."""
        unknown = sorted(set(document) - set(APIS))
        if unknown:
            raise SeedError(f"unknown seed part {unknown[0]!r}; the parts are {', '.join(APIS)}")
        for api, part in document.items():
            self._call(self.emulator(api).seed, part)

    def reset(self) -> None:
        for api in APIS:
            self._call(self.emulator(api).reset)

    def requests(self, api: str) -> list[JSONObject]:
        return self._call(self.emulator(api).requests)

    def state(self, api: str) -> JSONObject:
        return self._call(self.emulator(api).dump_state)

    def add_fault(self, api: str, rule: Mapping[str, Any]) -> JSONObject:
        return self._call(self.emulator(api).add_fault, rule)

    def release(self, api: str) -> int:
        """Let the requests a `hold` fault keeps waiting go on; return how many there were."""
        return self._call(self.emulator(api).release)

    def configure(self, api: str, **changes: Any) -> JSONObject:
        return self._call(self.emulator(api).configure, changes)

    def _call(self, function: Callable[..., T], *args: Any) -> T:
        """Run function on the server's event loop, or here when the set is not running."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.current_thread() is self._thread:
            return function(*args)

        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(function(*args))
            except BaseException as error:  # handed to the calling thread, which raises it
                future.set_exception(error)

        loop.call_soon_threadsafe(run)
        return future.result(_CALL_TIMEOUT_S)

    # Serving.

    def _bind(self, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # asyncio sets TCP_NODELAY on accepted connections only when the protocol is named.
        # Without it, a small response body can wait for the client's delayed ACK, which
        # takes about 40 ms on Linux.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, port))
        except OSError:
            sock.close()
            raise
        return sock

    def _serve_in_thread(self, sockets: dict[str, socket.socket]) -> None:
        try:
            asyncio.run(self._serve(sockets))
        except BaseException as error:  # reported by start(), which is waiting for _ready
            self._failure = error
            self._ready.set()

    async def _serve(self, sockets: dict[str, socket.socket]) -> None:
        self._loop = asyncio.get_running_loop()
        self._servers = [
            uvicorn.Server(
                uvicorn.Config(
                    self.emulator(api),
                    log_level="warning",
                    access_log=False,
                    lifespan="off",
                    ws="none",
                    timeout_graceful_shutdown=2,
                )
            )
            for api in APIS
        ]
        tasks = [
            asyncio.create_task(server.serve(sockets=[sockets[api]]))
            for api, server in zip(APIS, self._servers, strict=True)
        ]
        while not all(server.started for server in self._servers):
            if any(task.done() for task in tasks):
                break
            await asyncio.sleep(0.01)

        self._ready.set()
        await asyncio.gather(*tasks)
        for sock in sockets.values():
            sock.close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _first_token(emulator: Emulator) -> str:
    tokens = emulator.initial_seed.get("tokens") or []
    if not tokens:
        raise RuntimeError(f"the {emulator.api} seed has no token")
    return str(tokens[0])


def load_seed_file(path: str | Path) -> JSONObject:
    """Read a seed file; raise SeedError when it is not a JSON object."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise SeedError(f"cannot read the seed file {path}: {error}") from None
    if not isinstance(document, dict):
        raise SeedError(f"the seed file {path} must hold a JSON object")
    return document


def run_emulators(
    render_port: int = DEFAULT_PORTS["render"],
    netlify_port: int = DEFAULT_PORTS["netlify"],
    vault_port: int = DEFAULT_PORTS["vault"],
    seed_path: str | Path | None = None,
    latency_ms: int = 0,
    rate_window_s: float | None = None,
    as_json: bool = False,
    *,
    host: str = "127.0.0.1",
    ready: Callable[[EmulatorSet], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the three emulators until SIGINT or SIGTERM (or until `stop` is set).

    First prints one line per API with its base URL and token, or with `as_json` one JSON
    line `{"render": {"url", "token"}, "netlify": {...}, "vault": {...}}`. The tokens
    printed are the emulators' own, which open nothing else.
    """
    seed = load_seed_file(seed_path) if seed_path is not None else None
    emulators = EmulatorSet(
        seed,
        latency_ms=latency_ms,
        rate_window_s=rate_window_s,
        host=host,
        render_port=render_port,
        netlify_port=netlify_port,
        vault_port=vault_port,
    )
    restore_sigterm = _raise_on_sigterm()
    try:
        with emulators:
            print(describe(emulators, as_json=as_json), flush=True)
            if ready is not None:
                ready(emulators)
            (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        logger.info("emulators stopped by SIGINT")
    except _Terminated:
        logger.info("emulators stopped by SIGTERM")
    finally:
        restore_sigterm()


class _Terminated(Exception):
    """Raised in the main thread by SIGTERM while `run_emulators` serves."""


def _raise_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM stop the emulators as Ctrl-C does, and return a function that undoes it.

    `kill`, `docker stop` and systemd send SIGTERM. It also stops a process that a shell
    without job control started in the background, with SIGINT ignored. The handler
    raises instead of setting an event, because setting a `threading.Event` from a handler
    can deadlock on the lock that its waiter owns. Only the main thread may install a
    handler, so in other threads nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handle(signum: int, frame: FrameType | None) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handle)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def describe(emulators: EmulatorSet, *, as_json: bool) -> str:
    """Return the start-up lines: each API's base URL and token."""
    entries = {
        "render": (emulators.render_url, emulators.render_token),
        "netlify": (emulators.netlify_url, emulators.netlify_token),
        "vault": (emulators.vault_url, emulators.vault_token),
    }
    if as_json:
        return json.dumps(
            {api: {"url": url, "token": token} for api, (url, token) in entries.items()}
        )
    return "\n".join(f"{api:<8} {url}  token {token}" for api, (url, token) in entries.items())
