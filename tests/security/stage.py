"""The stage of the leak tests: a canary for every secret, servers that hold them, envsync's
environment, and collectors that turn what envsync put out into scan channels.

`CanaryBook` names every canary. `CanaryServer` is one loopback server that plays the
dashboard (the canonical set and token responses), the webhook receiver, and a proxy in
front of the Vault emulator, so that every vault and dashboard URL has a canary in its
path.
`stage_environ` points envsync at the emulators and that server with every credential set
to its canary. The collectors read subprocess output, log records and streams, events,
HTTP responses, webhook deliveries, the URLs envsync requested, the platforms' state and
every file and table of the store.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import json
import logging
import os
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import MetaData as SqlMetaData
from sqlalchemy import create_engine, inspect, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from envsync.emulators import EmulatorSet
from envsync.logs import configure_logging
from tests.conftest import subprocess_env
from tests.e2e.conftest import (
    GROUP_ID,
    SERVICE_ID,
    SITE_ID,
    netlify_seed,
    netlify_var,
    render_seed,
)
from tests.security.harness import Canary, LeakScan, make_canary

CLI_COMMAND = [sys.executable, "-c", "from envsync.cli import main; main()"]
CLI_TIMEOUT_S = 120.0

# Canaries by label. A label's first word names the kind of secret it is.
TOKEN_LABELS = (
    "token render",
    "token netlify",
    "token vault",
    "token vault-auth",
    "token dashboard-auth",
    "token api",
    "token render-rejected",
    "token netlify-rejected",
    "token vault-rejected",
    "token api-presented",
)
KEY_LABELS = ("key ledger", "key snapshot", "key webhook-secret")
SEGMENT_LABELS = (
    "url webhook",
    "url dashboard",
    "url dashboard-tokens",
    "url vault-bridge",
    "url vault-addr",
)
VALUE_LABELS = (
    "value file-1",
    "value file-2",
    "value file-secret",
    "value file-updated",
    "value env-1",
    "value vault-1",
    "value vault-object",
    "value dashboard-1",
    "value dashboard-2",
    "value rotate",
    "value remote-old",
    "value unmanaged",
    "value request-body",
)
# A line of a PEM block pasted without quotes: base64 text that ends in padding.
PEM_LABEL = "value pem-line"


@dataclass
class CanaryBook:
    """Every canary of a test module, by label."""

    canaries: dict[str, Canary]

    def __getitem__(self, label: str) -> str:
        return self.canaries[label].value

    def all(self) -> list[Canary]:
        return list(self.canaries.values())

    def labels(self, kind: str) -> list[str]:
        """The labels of one kind: token, key, url or value."""
        return [label for label in self.canaries if label.split(" ", 1)[0] == kind]

    def scan(self) -> LeakScan:
        return LeakScan(self.all())


def make_book() -> CanaryBook:
    canaries: dict[str, Canary] = {}
    for label in TOKEN_LABELS:
        canaries[label] = make_canary(label, "token")
    for label in KEY_LABELS:
        canaries[label] = make_canary(label, "value")
    for label in SEGMENT_LABELS:
        canaries[label] = make_canary(label, "segment")
    for label in VALUE_LABELS:
        canaries[label] = make_canary(label, "value")
    canaries[PEM_LABEL] = make_canary(PEM_LABEL, "token")
    return CanaryBook(canaries)


# The canonical sets of each source, by key.


def file_values(book: CanaryBook) -> dict[str, str]:
    return {
        "BRIDGE_FILE_1": book["value file-1"],
        "BRIDGE_FILE_2": book["value file-2"],
        "BRIDGE_SIGNING_TOKEN": book["value file-secret"],
    }


def canonical_text(book: CanaryBook, *, updated: bool = False, copies: bool = False) -> str:
    """The canonical .env file, values single-quoted so they are kept as written.

    With `updated`, BRIDGE_FILE_2 gets another value, so that an apply has an update to
    make. With `copies`, the file also contains keys that interpolate envsync's own
    credentials and keys named like them, which safety rule 9 keeps out of every sync.
    """
    values = file_values(book)
    if updated:
        values["BRIDGE_FILE_2"] = book["value file-updated"]
    lines = [f"{key}='{value}'" for key, value in values.items()]
    if copies:
        lines += [
            "BRIDGE_COPY_OF_API_TOKEN=${ENVSYNC_API_TOKEN}",
            "BRIDGE_COPY_OF_LEDGER_KEY=${ENVSYNC_LEDGER_KEY}",
            "BRIDGE_COPY_OF_WEBHOOK_URLS=${ENVSYNC_WEBHOOK_URLS}",
            "BRIDGE_URL_WITH_API_TOKEN=https://ci:${ENVSYNC_API_TOKEN}@example.com/hook",
            f"ENVSYNC_WEBHOOK_SECRET='{book['key webhook-secret']}'",
            f"RENDER_API_TOKEN='{book['token render']}'",
        ]
    return "\n".join(lines) + "\n"


def vault_fields(book: CanaryBook) -> dict[str, Any]:
    return {
        "BRIDGE_VAULT_1": book["value vault-1"],
        "BRIDGE_VAULT_OBJECT": {"nested": book["value vault-object"], "n": 3},
        "RENDER_API_TOKEN": book["token render"],
        "NETLIFY_API_TOKEN": book["token netlify"],
    }


def dashboard_values(book: CanaryBook) -> dict[str, str]:
    return {"BRIDGE_DASH_1": book["value dashboard-1"], "BRIDGE_DASH_2": book["value dashboard-2"]}


def stage_seed(book: CanaryBook) -> dict[str, Any]:
    """Emulator state: tokens are the canaries, and the platforms already hold an old value
    of a managed key and a value of an unmanaged one."""
    old = book["value remote-old"]
    unmanaged = book["value unmanaged"]
    render = render_seed(
        service_vars={"BRIDGE_FILE_1": old, "APP_UNMANAGED": unmanaged},
        group_vars={"APP_GROUP_UNMANAGED": unmanaged},
    )
    render["tokens"] = [book["token render"]]
    netlify = netlify_seed(
        [
            netlify_var("BRIDGE_FILE_1", ("production", old)),
            netlify_var("APP_UNMANAGED", ("production", unmanaged)),
        ]
    )
    netlify["tokens"] = [book["token netlify"]]
    vault = {
        "tokens": [book["token vault"], book["token vault-auth"]],
        "mounts": {"secret": {"envsync": vault_fields(book)}},
    }
    return {"render": render, "netlify": netlify, "vault": vault}


# The loopback server that plays the dashboard, the webhook receiver and the vault proxy.


@dataclass(frozen=True)
class Recorded:
    """One request the canary server received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ServerScript:
    """How the canary server responds; a test changes it between runs."""

    dashboard: str = "ok"
    hook_status: int = 200


class _QuietH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol without request lines in the log.

    uvicorn writes them whenever the `uvicorn.access` logger has a handler, and the leak
    tests give it one for envsync's own server in this process. This server's lines
    contain the canaries of its paths and would land among envsync's records.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False


class CanaryServer:
    """A Starlette app on 127.0.0.1 in a background thread.

    Paths carry canaries: `/dash/<segment>/canonical` returns the dashboard's canonical
    set, `/dash/<segment>/tokens?key=NAME` a provider token, `/hooks/<segment>` receives
    webhook deliveries, and `/vault/<segment>/...` forwards to the Vault emulator.
    """

    def __init__(self, book: CanaryBook, vault_url: str) -> None:
        self.book = book
        self.vault_url = vault_url
        self.script = ServerScript()
        self.received: list[Recorded] = []
        self._lock = threading.Lock()
        routes = [
            Route("/dash/{segment}/canonical", self._canonical, methods=["GET"]),
            Route("/dash/{segment}/tokens", self._token, methods=["GET"]),
            Route("/hooks/{segment}", self._hook, methods=["POST"]),
            Route(
                "/vault/{segment}/{rest:path}",
                self._proxy,
                methods=["GET", "POST", "PUT", "LIST", "DELETE"],
            ),
        ]
        config = uvicorn.Config(
            Starlette(routes=routes),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            http=_QuietH11Protocol,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.port = 0

    def start(self) -> CanaryServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the canary server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.script = ServerScript()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dashboard_url(self) -> str:
        return f"{self.base}/dash/{self.book['url dashboard']}/canonical"

    @property
    def token_url(self) -> str:
        return f"{self.base}/dash/{self.book['url dashboard-tokens']}/tokens"

    @property
    def hook_url(self) -> str:
        return f"{self.base}/hooks/{self.book['url webhook']}"

    @property
    def bridge_url(self) -> str:
        return f"{self.base}/vault/{self.book['url vault-bridge']}"

    @property
    def vault_addr(self) -> str:
        return f"{self.base}/vault/{self.book['url vault-addr']}"

    def deliveries(self) -> list[Recorded]:
        with self._lock:
            return [item for item in self.received if item.path.startswith("/hooks/")]

    def wait_for_deliveries(self, count: int, timeout_s: float = 30.0) -> list[Recorded]:
        """Wait until `count` webhook deliveries arrived; a guard against a hang, not a
        check of speed."""
        deadline = time.monotonic() + timeout_s
        while len(self.deliveries()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.deliveries()

    async def _record(self, request: Request) -> None:
        body = await request.body()
        headers = {key.lower(): value for key, value in request.headers.items()}
        with self._lock:
            self.received.append(
                Recorded(request.method, request.url.path, request.url.query, headers, body)
            )

    def _authorised(self, request: Request) -> bool:
        expected = f"Bearer {self.book['token dashboard-auth']}"
        return request.headers.get("authorization") == expected

    async def _canonical(self, request: Request) -> Response:
        await self._record(request)
        if not self._authorised(request):
            return JSONResponse({"error": "unauthorized"}, 401)
        mode = self.script.dashboard
        if mode == "fail":
            return JSONResponse({"error": "internal"}, 500)
        if mode == "slow":
            await asyncio.sleep(3)
        if mode == "redirect":
            return Response(status_code=307, headers={"Location": "http://127.0.0.1:9/x?k=1"})
        if mode == "html":
            text = f"<html>{self.book['value dashboard-1']}</html>"
            return Response(text, 200, media_type="text/html")
        return JSONResponse(dashboard_values(self.book))

    async def _token(self, request: Request) -> Response:
        await self._record(request)
        if not self._authorised(request):
            return JSONResponse({"error": "unauthorized"}, 401)
        tokens = {
            "RENDER_API_TOKEN": self.book["token render"],
            "NETLIFY_API_TOKEN": self.book["token netlify"],
        }
        name = request.query_params.get("key", "")
        if name not in tokens:
            return JSONResponse({"error": "not found"}, 404)
        return JSONResponse({"key": name, "value": tokens[name]})

    async def _hook(self, request: Request) -> Response:
        await self._record(request)
        return Response(status_code=self.script.hook_status)

    async def _proxy(self, request: Request) -> Response:
        await self._record(request)
        forwarded = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in ("authorization", "x-vault-token", "x-vault-request", "accept")
        }
        url = f"{self.vault_url}/{request.path_params['rest']}"
        async with httpx.AsyncClient() as client:
            answer = await client.request(
                request.method,
                url,
                params=request.query_params,
                headers=forwarded,
                content=await request.body(),
            )
        content_type = answer.headers.get("content-type", "application/json")
        return Response(answer.content, answer.status_code, media_type=content_type)


# envsync's environment.


def stage_environ(
    book: CanaryBook,
    emulators: EmulatorSet,
    server: CanaryServer,
    folder: Path,
    *,
    log_format: str = "text",
) -> dict[str, str]:
    """Settings that point envsync at the emulators and the canary server, with every
    credential set to its canary and every log line at DEBUG."""
    canonical = folder / "canonical.env"
    if not canonical.exists():
        canonical.write_text(canonical_text(book), encoding="utf-8")
    return {
        "RENDER_API_URL": emulators.render_url,
        "NETLIFY_API_URL": emulators.netlify_url,
        "RENDER_API_TOKEN": book["token render"],
        "NETLIFY_API_TOKEN": book["token netlify"],
        "RENDER_SERVICE_ID": SERVICE_ID,
        "RENDER_ENV_GROUP_ID": GROUP_ID,
        "NETLIFY_SITE_ID": SITE_ID,
        "NETLIFY_CONTEXT": "production",
        "NETLIFY_SECRET_KEYS": "*_TOKEN",
        "ENVSYNC_INCLUDE_PREFIXES": "BRIDGE_,ENVSYNC_,RENDER_,NETLIFY_,VAULT_",
        "ENVSYNC_EXCLUDE_PREFIXES": "",
        "ENVSYNC_ALLOW_DELETIONS": "true",
        "ENVSYNC_CANONICAL_FILE": str(canonical),
        "ENVSYNC_DATABASE_URL": f"sqlite:///{folder / 'store' / 'state.db'}",
        "ENVSYNC_CONFIG_FILE": str(folder / "envsync.toml"),
        "ENVSYNC_DISCOVERY_ORDER": "env",
        "ENVSYNC_SECRET_DIRS": str(folder / "secrets"),
        "ENVSYNC_API_TOKEN": book["token api"],
        "ENVSYNC_LEDGER_KEY": book["key ledger"],
        "ENVSYNC_SNAPSHOT_KEY": book["key snapshot"],
        "ENVSYNC_WEBHOOK_URLS": server.hook_url,
        "ENVSYNC_WEBHOOK_SECRET": book["key webhook-secret"],
        "VAULT_ADDR": server.vault_addr,
        "VAULT_TOKEN": book["token vault"],
        "ENVSYNC_VAULT_URL": server.bridge_url,
        "ENVSYNC_VAULT_AUTH_TOKEN": book["token vault-auth"],
        "ENVSYNC_VAULT_KIND": "hashicorp",
        "ENVSYNC_DASHBOARD_URL": server.dashboard_url,
        "ENVSYNC_DASHBOARD_AUTH_TOKEN": book["token dashboard-auth"],
        "ENVSYNC_DASHBOARD_TOKEN_URLS": server.token_url,
        "ENVSYNC_LOG_LEVEL": "DEBUG",
        "ENVSYNC_LOG_FORMAT": log_format,
        "ENVSYNC_MAX_RETRIES": "2",
        "ENVSYNC_RETRY_BASE_S": "0.01",
        "ENVSYNC_RETRY_MAX_S": "0.05",
        "ENVSYNC_HTTP_TIMEOUT_S": "5",
        "COLUMNS": "250",
    }


def store_folder(environ: Mapping[str, str]) -> Path:
    return Path(environ["ENVSYNC_DATABASE_URL"].removeprefix("sqlite:///")).parent


# Running the CLI.


def run_cli(
    args: list[str],
    environ: Mapping[str, str],
    folder: Path,
    *,
    stdin: str | None = None,
    prefix: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run `envsync ARGS` in a subprocess guarded to loopback. `prefix` is Python code run
    before the CLI, to patch something in that process."""
    command = CLI_COMMAND
    if prefix:
        command = [sys.executable, "-c", f"{prefix}\nfrom envsync.cli import main; main()"]
    return subprocess.run(
        [*command, *args],
        cwd=folder,
        env=subprocess_env(dict(environ)),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


def add_completed(scan: LeakScan, name: str, completed: subprocess.CompletedProcess[str]) -> None:
    scan.add(f"{name} stdout", completed.stdout)
    scan.add(f"{name} stderr", completed.stderr)


@dataclass(frozen=True)
class TerminalRun:
    """What a command printed to a terminal (standard output) and to a pipe (standard error)."""

    terminal: str
    stderr: str
    returncode: int


def run_in_terminal(
    args: list[str], environ: Mapping[str, str], folder: Path, *, columns: int = 250
) -> TerminalRun:
    """Run `envsync ARGS` with standard output on a pseudo-terminal and standard error on a
    pipe, and return both."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(
        [*CLI_COMMAND, *args],
        cwd=folder,
        env=subprocess_env(dict(environ)),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(_read_all(process.stderr)))
    reader.start()
    terminal = _read_terminal(master)
    returncode = process.wait(CLI_TIMEOUT_S)
    reader.join(CLI_TIMEOUT_S)
    return TerminalRun(terminal, b"".join(errors).decode("utf-8", "replace"), returncode)


def _read_all(stream: Any) -> bytes:
    data: bytes = stream.read()
    stream.close()
    return data


def _read_terminal(master: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            # Linux reports EIO on the master once the last holder of the slave closed it.
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


# Logs of envsync running in this process.


class RecordCollector(logging.Handler):
    """Keeps the text of every record as it was logged.

    It is installed before envsync's own handler, whose scrubbing filter rewrites a record
    in place, so the collector receives what the code logged, not what the filter left.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.getMessage(), repr(record.msg), repr(record.args)]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        parts += [f"{name}={value!r}" for name, value in vars(record).items() if name not in _PLAIN]
        self.texts.append("\n".join(parts))


_PLAIN = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

CAPTURED_LOGGERS = ("envsync", "uvicorn", "uvicorn.error", "uvicorn.access")


@dataclass
class LogCapture:
    """envsync's log handler writing to a string, and a collector of the raw records."""

    stream: io.StringIO = field(default_factory=io.StringIO)
    collector: RecordCollector = field(default_factory=RecordCollector)

    def add_to(self, scan: LeakScan, name: str) -> None:
        scan.add(f"{name} log stream", self.stream.getvalue())
        scan.add(f"{name} log records", "\n".join(self.collector.texts))


@contextmanager
def captured_logs(level: str = "DEBUG", log_format: str = "text") -> Iterator[LogCapture]:
    """Install envsync's logging at `level` and `log_format` on a string stream, with a
    record collector in front of it, and restore the loggers afterwards."""
    capture = LogCapture()
    configure_logging(level, log_format, stream=capture.stream)
    for name in CAPTURED_LOGGERS:
        logging.getLogger(name).handlers.insert(0, capture.collector)
    try:
        yield capture
    finally:
        for name in CAPTURED_LOGGERS:
            logger = logging.getLogger(name)
            logger.handlers = [
                handler
                for handler in logger.handlers
                if handler is not capture.collector and not getattr(handler, "_envsync", False)
            ]
            logger.propagate = True
            logger.setLevel(logging.NOTSET)


# Other channels.


def add_store(scan: LeakScan, name: str, environ: Mapping[str, str]) -> None:
    """Add every file beside the store's database (WAL, locks) as bytes, then each table's
    rows. The files are read first, because opening the database may fold the WAL in."""
    folder = store_folder(environ)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            scan.add(f"{name} file {path.relative_to(folder)}", path.read_bytes())
        scan.add(f"{name} file name {path.relative_to(folder)}", str(path.relative_to(folder)))

    database = folder / "state.db"
    if not database.exists():
        return
    engine = create_engine(f"sqlite:///{database}")
    try:
        tables = SqlMetaData()
        tables.reflect(engine)
        with engine.connect() as connection:
            for table_name in inspect(engine).get_table_names():
                rows = connection.execute(select(tables.tables[table_name])).all()
                text = "\n".join(repr(tuple(row)) for row in rows)
                scan.add(f"{name} table {table_name}", text)
    finally:
        engine.dispose()


def add_platforms(scan: LeakScan, book: CanaryBook, emulators: EmulatorSet, name: str) -> None:
    """Add what the platforms hold and every URL envsync requested from them.

    Values belong on the platforms, so value canaries are allowed in their state; no
    credential is. No secret at all belongs in a request's path or query.
    """
    values = book.labels("value")
    for api in ("render", "netlify"):
        state = emulators.state(api)
        # The emulator's own tokens are part of its state, not something envsync wrote.
        state.pop("tokens", None)
        scan.add(f"{name} {api} state", json.dumps(state), allow=values)
    for api in ("render", "netlify", "vault"):
        requested = [
            f"{item['method']} {item['path']}?{item['query']}" for item in emulators.requests(api)
        ]
        scan.add(f"{name} {api} request URLs", "\n".join(requested))


def add_server(scan: LeakScan, book: CanaryBook, server: CanaryServer, name: str) -> None:
    """Add every webhook delivery, and the URLs envsync requested from the canary server.

    The URL segments are the configured URLs themselves, so they are allowed in the paths
    envsync requested; the paths hold no other secret.
    """
    for index, delivery in enumerate(server.deliveries()):
        headers = "\n".join(f"{key}: {value}" for key, value in delivery.headers.items())
        scan.add(f"{name} webhook delivery {index} headers", headers)
        scan.add(f"{name} webhook delivery {index} body", delivery.body)
    requested = [f"{item.method} {item.path}?{item.query}" for item in server.received]
    scan.add(f"{name} canary server request URLs", "\n".join(requested), allow=book.labels("url"))


def add_response(scan: LeakScan, name: str, response: httpx.Response) -> None:
    headers = "\n".join(f"{key}: {value}" for key, value in response.headers.items())
    scan.add(f"{name} response headers", f"HTTP {response.status_code}\n{headers}")
    scan.add(f"{name} response body", response.content)


# The API's routes.


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str


def api_routes(app: Any) -> list[ApiRoute]:
    """Every method and path the app serves, read from its router.

    Included routers are walked into. A route of a kind this function does not know fails
    loudly, so that a new kind of route cannot slip past the tests that use this list.
    """
    found: list[ApiRoute] = []
    for route, prefix in _walk(app.routes, ""):
        methods = getattr(route, "methods", None)
        path = getattr(route, "path", None)
        if not methods or not isinstance(path, str):
            raise AssertionError(f"unknown kind of route: {type(route).__name__}")
        found += [ApiRoute(method, prefix + path) for method in sorted(methods - {"HEAD"})]
    return found


def _walk(routes: Any, prefix: str) -> Iterator[tuple[Any, str]]:
    for route in routes:
        # FastAPI keeps an included router as one entry that wraps the original router.
        included = getattr(route, "original_router", None)
        if included is not None:
            include_prefix = getattr(getattr(route, "include_context", None), "prefix", "")
            yield from _walk(included.routes, prefix + (include_prefix or ""))
            continue
        yield route, prefix
