"""No value and no credential leaves envsync, except `--reveal` output on a terminal.

Every credential (provider tokens, Vault and dashboard tokens, ENVSYNC_API_TOKEN, the
ledger and snapshot keys, the webhook secret), every vault, dashboard and webhook URL, and
every canonical, remote and rotated value is a canary (see `tests/security/harness.py`).
Each test drives envsync one way, with logs at DEBUG, then searches everything that came
out: standard output and error, log records and streams, HTTP responses, webhook
deliveries, events, exception reprs and tracebacks, the URLs envsync requested, what the
platforms hold, and every file and table of the store.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from envsync.api import create_app
from envsync.config import load_settings
from envsync.engine import Engine, RunReport, RunRequest
from envsync.ledger import LedgerHasher
from envsync.logs import register_credentials
from envsync.model import RunMode
from envsync.providers.render import RenderProvider
from envsync.report import target_dict
from envsync.service import Service
from envsync.store import RunTrigger, Store
from tests.api.conftest import ServerThread
from tests.conftest import subprocess_env
from tests.security.conftest import Stage
from tests.security.harness import LeakScan, squash
from tests.security.stage import (
    CLI_COMMAND,
    PEM_LABEL,
    CanaryBook,
    add_completed,
    add_response,
    add_store,
    api_routes,
    canonical_text,
    captured_logs,
    run_cli,
    run_in_terminal,
    stage_seed,
)
from tests.test_replicas import free_port

LOG_FORMATS = ["text", "json"]

# A guard against a hang while a server starts; no assertion about speed.
START_TIMEOUT_S = 60.0


def run_steps(
    scan: LeakScan, stage: Stage, environ: dict[str, str], steps: list[list[str]], name: str
) -> list[subprocess.CompletedProcess[str]]:
    results = []
    for args in steps:
        completed = run_cli(args, environ, stage.folder)
        add_completed(scan, f"{name} envsync {' '.join(args)}", completed)
        results.append(completed)
    return results


def enforce_run_ids(stage: Stage, environ: dict[str, str]) -> list[str]:
    listed = run_cli(["runs", "--json"], environ, stage.folder)
    runs = json.loads(listed.stdout)
    return [run["id"] for run in runs if run["mode"] == "enforce"]


def serve_and_call(scan: LeakScan, stage: Stage, environ: dict[str, str], name: str) -> None:
    """Run `envsync serve`, call a route with, without and with a wrong token, and stop it."""
    port = free_port()
    process = subprocess.Popen(
        [*CLI_COMMAND, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=stage.folder,
        env=subprocess_env(environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process)
        token = stage.book["token api"]
        wrong = stage.book["token api-presented"]
        with httpx.Client(base_url=url, timeout=60) as client:
            calls = {
                "health": client.get("/envsync/health"),
                "dry-run": client.post(
                    "/envsync/dry-run/render", headers={"Authorization": f"Bearer {token}"}
                ),
                "no token": client.get("/envsync/runs"),
                "wrong token": client.get(
                    "/envsync/runs", headers={"Authorization": f"Bearer {wrong}"}
                ),
            }
        for call, response in calls.items():
            add_response(scan, f"{name} serve {call}", response)
        assert calls["dry-run"].status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    scan.add(f"{name} serve stdout", stdout)
    scan.add(f"{name} serve stderr", stderr)


def wait_for_health(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "envsync serve exited early"
        try:
            if httpx.get(f"{url}/envsync/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("envsync serve did not become healthy")


def emulate_briefly(
    scan: LeakScan, stage: Stage, environ: dict[str, str], name: str, options: list[str]
) -> None:
    """Start `envsync emulate`, read its first line, and stop it."""
    ports = [str(free_port()) for _ in range(3)]
    arguments = ["--render-port", ports[0], "--netlify-port", ports[1], "--vault-port", ports[2]]
    process = subprocess.Popen(
        [*CLI_COMMAND, "emulate", *arguments, *options],
        cwd=stage.folder,
        env=subprocess_env(environ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
    finally:
        # SIGTERM rather than SIGINT: a shell without job control starts background
        # commands, such as this test run, with SIGINT ignored.
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert first_line.strip(), "envsync emulate printed nothing"
    scan.add(f"{name} emulate {' '.join(options)} stdout", first_line + stdout)
    scan.add(f"{name} emulate {' '.join(options)} stderr", stderr)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_every_cli_command_leaks_nothing(stage: Stage, log_format: str) -> None:
    environ = stage.environ(log_format)
    scan = stage.scan()
    name = f"cli[{log_format}]"

    plans = run_steps(
        scan,
        stage,
        environ,
        [
            ["discover"],
            ["discover", "--json"],
            ["plan"],
            ["plan", "--json"],
            ["plan", "--detailed-exitcode"],
            ["apply", "--yes"],
        ],
        name,
    )
    assert [result.returncode for result in plans] == [0, 0, 0, 0, 2, 0]

    Path(environ["ENVSYNC_CANONICAL_FILE"]).write_text(
        canonical_text(stage.book, updated=True), encoding="utf-8"
    )
    run_steps(scan, stage, environ, [["apply", "--yes", "--json"]], name)
    first, second = enforce_run_ids(stage, environ)[::-1][:2]
    assert stage.render_values()["BRIDGE_FILE_2"] == stage.book["value file-updated"]

    history = run_steps(
        scan,
        stage,
        environ,
        [
            ["runs"],
            ["runs", "--json"],
            ["runs", "show", second],
            ["runs", "show", second, "--json"],
            ["tickets"],
            ["tickets", "--all", "--json"],
            ["rollback", second],
            ["rollback", second, "--yes", "--json"],
            ["rollback", first, "--yes"],
        ],
        name,
    )
    assert [result.returncode for result in history[-2:]] == [0, 0]

    rotated = run_cli(
        ["rotate", "BRIDGE_FILE_1", "--value-stdin", "--yes"],
        environ,
        stage.folder,
        stdin=stage.book["value rotate"] + "\n",
    )
    add_completed(scan, f"{name} envsync rotate --value-stdin", rotated)
    assert rotated.returncode == 0
    assert stage.render_values()["BRIDGE_FILE_1"] == stage.book["value rotate"]
    run_steps(
        scan, stage, environ, [["rotate", "BRIDGE_FILE_2", "--generate", "--yes", "--json"]], name
    )
    run_steps(scan, stage, environ, [["demo"]], name)
    emulate_briefly(scan, stage, environ, name, [])
    emulate_briefly(scan, stage, environ, name, ["--json"])
    serve_and_call(scan, stage, environ, name)

    stage.add_outputs(scan, environ, name)
    scan.assert_clean()


# (canonical source, ENVSYNC_VAULT_KIND, discovery step, the key the source gives)
SOURCE_CASES = [
    pytest.param("dashboard", "hashicorp", "dashboard", "BRIDGE_DASH_1", id="dashboard"),
    pytest.param("vault", "hashicorp", "vault", "BRIDGE_VAULT_1", id="hashicorp-vault"),
    pytest.param("vault", "bridge", "secret_files", "BRIDGE_VAULT_1", id="bridge-vault"),
    pytest.param("env", "bridge", "vault", "BRIDGE_ENV_1", id="env"),
]


def write_token_files(stage: Stage) -> None:
    """Token files as editors and Windows tools leave them: a byte-order mark, CRLF."""
    folder = stage.folder / "secrets"
    folder.mkdir(exist_ok=True)
    for provider in ("render", "netlify"):
        token = stage.book[f"token {provider}"]
        (folder / f"{provider}.token").write_bytes(b"\xef\xbb\xbf" + token.encode() + b"\r\n")


@pytest.mark.parametrize(("source", "vault_kind", "step", "key"), SOURCE_CASES)
def test_every_source_and_discovery_step_leaks_nothing(
    stage: Stage, source: str, vault_kind: str, step: str, key: str
) -> None:
    environ = stage.environ(
        "json" if step in ("vault", "dashboard") else "text",
        ENVSYNC_CANONICAL_SOURCE=source,
        ENVSYNC_VAULT_KIND=vault_kind,
        ENVSYNC_DISCOVERY_ORDER=f"env,{step}",
        RENDER_API_TOKEN=None,
        NETLIFY_API_TOKEN=None,
        BRIDGE_ENV_1=stage.book["value env-1"],
    )
    write_token_files(stage)
    scan = stage.scan()
    name = f"source {source} {vault_kind} via {step}"

    results = run_steps(
        scan,
        stage,
        environ,
        [
            ["discover"],
            ["discover", "--json"],
            ["plan"],
            ["plan", "--json"],
            ["apply", "--yes"],
            ["apply", "--yes", "--json"],
        ],
        name,
    )

    assert [result.returncode for result in results] == [0] * len(results)
    assert key in stage.render_values()
    stage.add_outputs(scan, environ, name)
    scan.assert_clean()


@dataclass(frozen=True)
class ErrorCase:
    """A way to make a run fail. Each part is built from the canary book, because the
    failure is provoked with canaries in the spot where a leak would show them."""

    settings: Callable[[CanaryBook, Stage], dict[str, str | None]] = lambda book, stage: {}
    canonical: Callable[[CanaryBook], str] | None = None
    faults: Callable[[CanaryBook], list[tuple[str, dict[str, Any]]]] = lambda book: []
    dashboard: str = "ok"
    prefix: str = ""


def faults_everywhere(
    method: str, path: str, fault: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    rule = {"match": {"method": method, "path": path}, "times": 100, "fault": fault}
    return [("render", rule), ("netlify", rule)]


def echo_fault(book: CanaryBook) -> list[tuple[str, dict[str, Any]]]:
    """Platforms that repeat a value in their error text.

    A write's error repeats the value just sent, after enough text that a cut at 300
    characters falls inside it, or the old value of the key, which the request did not
    send. A read's error repeats a canonical value.
    """
    padding = "x" * 270
    sent = {"status": 400, "body": {"message": f"invalid: {padding} {book['value file-2']}"}}
    held = {"status": 422, "body": {"code": 422, "message": f"was {book['value remote-old']}"}}
    read = {"status": 400, "body": {"message": f"bad {book['value file-1']}"}}
    return [
        ("render", {"match": {"method": "PUT"}, "times": 100, "fault": sent}),
        ("netlify", {"match": {"method": "POST"}, "times": 100, "fault": sent}),
        ("netlify", {"match": {"method": "PATCH"}, "times": 100, "fault": held}),
        ("netlify", {"match": {"method": "PUT"}, "times": 100, "fault": held}),
        ("render", {"match": {"method": "GET", "path": "env-groups"}, "times": 100, "fault": read}),
    ]


CRASH_IN_PROVIDER = """
import envsync.providers.render as render
async def write(*args, **kwargs):
    raise RuntimeError("provider call failed")
render.RenderProvider.write = write
"""


ERROR_CASES: dict[str, ErrorCase] = {
    "provider 401": ErrorCase(
        settings=lambda book, stage: {
            "RENDER_API_TOKEN": book["token render-rejected"],
            "NETLIFY_API_TOKEN": book["token netlify-rejected"],
        }
    ),
    "provider 500": ErrorCase(
        faults=lambda book: faults_everywhere(
            "GET", "env", {"status": 500, "body": {"message": "internal error"}}
        )
    ),
    "provider timeout": ErrorCase(
        settings=lambda book, stage: {"ENVSYNC_HTTP_TIMEOUT_S": "0.3"},
        faults=lambda book: faults_everywhere("GET", "env", {"latency_ms": 2000}),
    ),
    "dropped write": ErrorCase(
        faults=lambda book: (
            faults_everywhere("PUT", "env", {"drop": True})
            + faults_everywhere("POST", "env", {"drop": True})
        )
    ),
    "platform echoes a value": ErrorCase(faults=echo_fault),
    "crash inside a provider call": ErrorCase(prefix=CRASH_IN_PROVIDER),
    "credential copies in the source": ErrorCase(
        canonical=lambda book: canonical_text(book, copies=True)
    ),
    "value line without its key": ErrorCase(
        canonical=lambda book: f"BRIDGE_A='x'\n{book['value file-1']}\n"
    ),
    "PEM pasted without quotes": ErrorCase(
        canonical=lambda book: (
            "BRIDGE_PEM=-----BEGIN PRIVATE KEY-----\n"
            f"{book[PEM_LABEL]}==\n"
            "-----END PRIVATE KEY-----\n"
        )
    ),
    "unterminated quote": ErrorCase(
        canonical=lambda book: f"BRIDGE_A='x'\nBRIDGE_B='{book['value file-1']}\n"
    ),
    "text after the closing quote": ErrorCase(
        canonical=lambda book: f"BRIDGE_A='x' {book['value file-1']}\n"
    ),
    "invalid dashboard URL": ErrorCase(
        settings=lambda book, stage: {
            "ENVSYNC_CANONICAL_SOURCE": "dashboard",
            "ENVSYNC_DASHBOARD_URL": f"ftp://127.0.0.1/{book['url dashboard']}",
        }
    ),
    "invalid dashboard token URL": ErrorCase(
        settings=lambda book, stage: {
            "ENVSYNC_DASHBOARD_TOKEN_URLS": f"127.0.0.1/{book['url dashboard-tokens']}",
        }
    ),
    "invalid vault address": ErrorCase(
        settings=lambda book, stage: {"VAULT_ADDR": f"vault.internal/{book['url vault-addr']}"}
    ),
    "invalid bridge vault URL": ErrorCase(
        settings=lambda book, stage: {
            "ENVSYNC_VAULT_URL": f"file:///{book['url vault-bridge']}",
            "ENVSYNC_VAULT_KIND": "bridge",
        }
    ),
    "invalid webhook URL": ErrorCase(
        settings=lambda book, stage: {
            "ENVSYNC_WEBHOOK_URLS": f"ftp://127.0.0.1/{book['url webhook']}"
        }
    ),
    "plain HTTP to a remote vault": ErrorCase(
        settings=lambda book, stage: {
            "ENVSYNC_CANONICAL_SOURCE": "vault",
            "ENVSYNC_VAULT_KIND": "bridge",
            "ENVSYNC_VAULT_URL": f"http://vault.example.com/{book['url vault-bridge']}",
        }
    ),
    "invalid mode": ErrorCase(settings=lambda book, stage: {"ENVSYNC_MODE": "enforced"}),
    "dashboard 500": ErrorCase(
        settings=lambda book, stage: {"ENVSYNC_CANONICAL_SOURCE": "dashboard"}, dashboard="fail"
    ),
    "dashboard timeout": ErrorCase(
        settings=lambda book, stage: {
            "ENVSYNC_CANONICAL_SOURCE": "dashboard",
            "ENVSYNC_HTTP_TIMEOUT_S": "0.5",
        },
        dashboard="slow",
    ),
    "dashboard redirect": ErrorCase(
        settings=lambda book, stage: {"ENVSYNC_CANONICAL_SOURCE": "dashboard"},
        dashboard="redirect",
    ),
    "dashboard answers HTML": ErrorCase(
        settings=lambda book, stage: {"ENVSYNC_CANONICAL_SOURCE": "dashboard"}, dashboard="html"
    ),
    "dashboard rejects its token": ErrorCase(
        settings=lambda book, stage: {
            "ENVSYNC_CANONICAL_SOURCE": "dashboard",
            "ENVSYNC_DASHBOARD_AUTH_TOKEN": book["token vault-rejected"],
        }
    ),
    "token discovery fails everywhere": ErrorCase(
        settings=lambda book, stage: {
            "RENDER_API_TOKEN": None,
            "NETLIFY_API_TOKEN": None,
            "ENVSYNC_DISCOVERY_ORDER": "env,secret_files,vault,dashboard",
            "VAULT_TOKEN": book["token vault-rejected"],
            "ENVSYNC_DASHBOARD_AUTH_TOKEN": book["token vault-rejected"],
        }
    ),
    "vault rejects its token": ErrorCase(
        settings=lambda book, stage: {
            "ENVSYNC_CANONICAL_SOURCE": "vault",
            "VAULT_TOKEN": book["token vault-rejected"],
        }
    ),
}


@pytest.mark.parametrize("case_name", list(ERROR_CASES))
def test_every_error_path_leaks_nothing(stage: Stage, case_name: str) -> None:
    case = ERROR_CASES[case_name]
    book = stage.book
    scan = stage.scan()
    if case.canonical is not None:
        (stage.folder / "canonical.env").write_text(case.canonical(book), encoding="utf-8")
    for api, rule in case.faults(book):
        stage.emulators.add_fault(api, rule)
    stage.server.script.dashboard = case.dashboard

    runs = {}
    for log_format, args in (("json", ["plan", "--json"]), ("text", ["apply", "--yes"])):
        environ = stage.environ(log_format, **case.settings(book, stage))
        completed = run_cli(args, environ, stage.folder, prefix=case.prefix)
        add_completed(scan, f"{case_name}: envsync {' '.join(args)}", completed)
        runs[args[0]] = completed

    assert runs["apply"].returncode == 1
    stage.add_outputs(scan, environ, case_name)
    scan.assert_clean()


# The HTTP service, in this process, so that its log records and events can be read.


@dataclass
class RunningService:
    """`envsync serve`'s app around a Service, on a loopback port, with its events kept."""

    service: Service
    app: FastAPI
    server: ServerThread
    events: list[str]

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)

    def stop(self) -> None:
        self.server.stop()


def serve_in_process(environ: dict[str, str], folder: Path, *, schedule: bool) -> RunningService:
    settings = load_settings(environ, cwd=folder)
    register_credentials(settings)
    service = Service(settings, environ=environ, cwd=folder, schedule=schedule)
    events: list[str] = []
    service.engine.events.subscribe("*", lambda event: events.append(json.dumps(event.to_dict())))
    app = create_app(service)
    server = ServerThread(app)
    server.start()
    return RunningService(service, app, server, events)


def fill(path: str, values: dict[str, str]) -> str:
    """Put a value into each `{name}` of a route's path; an unknown name fails the test."""
    for name in re.findall(r"{(\w+)}", path):
        assert name in values, f"no test value for the path parameter {name} of {path}"
        path = path.replace(f"{{{name}}}", values[name])
    return path


def call_every_route(
    scan: LeakScan, running: RunningService, book: CanaryBook, run_id: str, name: str
) -> None:
    """Call each route with the token, without it and with a wrong one."""
    tokens = {
        "token": book["token api"],
        "no token": None,
        "wrong token": book["token api-presented"],
    }
    for route in api_routes(running.app):
        path = fill(route.path, {"provider": "render", "run_id": run_id})
        for kind, token in tokens.items():
            with running.client(token) as client:
                response = client.request(route.method, path)
            add_response(scan, f"{name} {route.method} {route.path} {kind}", response)


def call_with_bodies(
    scan: LeakScan, running: RunningService, book: CanaryBook, run_id: str, name: str
) -> dict[str, httpx.Response]:
    """Call the routes that act, and the error paths a client can provoke."""
    value = book["value rotate"]
    oversized = {"key": "BRIDGE_FILE_1", "value": book["value request-body"] + "x" * 70_000}
    with running.client(book["token api"]) as client:
        calls = {
            "rollback plan": client.post(f"/envsync/rollback/{run_id}"),
            "rollback": client.post(f"/envsync/rollback/{run_id}", params={"confirm": "true"}),
            "rotate value": client.post(
                "/envsync/rotate", json={"key": "BRIDGE_FILE_1", "value": value}
            ),
            "rotate generate": client.post(
                "/envsync/rotate", json={"key": "BRIDGE_FILE_2", "generate": True}
            ),
            "rotate invalid": client.post(
                "/envsync/rotate",
                json={"key": "BRIDGE_FILE_1", "value": value, "generate": True},
            ),
            "rotate oversized": client.post("/envsync/rotate", json=oversized),
            "unknown provider": client.post("/envsync/apply/nope"),
            "unknown run": client.get("/envsync/runs/unknown"),
            "apply without waiting": client.post(
                "/envsync/apply/netlify", params={"wait": "false"}
            ),
        }
    for call, response in calls.items():
        add_response(scan, f"{name} {call}", response)
    return calls


def wait_for_run(running: RunningService, run_id: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while run_id in running.service.in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_every_http_route_leaks_nothing(
    stage: Stage, log_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = stage.book
    environ = stage.environ(log_format, ENVSYNC_WEBHOOK_MAX_ATTEMPTS="2")
    scan = stage.scan()
    name = f"api[{log_format}]"
    stage.server.script.hook_status = 500

    with captured_logs("DEBUG", log_format) as logs:
        running = serve_in_process(environ, stage.folder, schedule=False)
        try:
            with running.client(book["token api"]) as client:
                for path in (
                    "/envsync/dry-run/render",
                    "/envsync/apply/render",
                    "/envsync/apply-all",
                ):
                    add_response(scan, f"{name} POST {path}", client.post(path))
            stage.server.script.hook_status = 200
            run_id = running.service.store.list_runs(limit=1)[0].id

            call_every_route(scan, running, book, run_id, name)
            calls = call_with_bodies(scan, running, book, run_id, name)
            wait_for_run(running, calls["apply without waiting"].json()["run_id"])

            stage.emulators.add_fault(
                "render",
                {
                    "match": {"method": "GET", "path": "env-vars"},
                    "times": 100,
                    "fault": {"status": 500},
                },
            )
            with running.client(book["token api"]) as client:
                add_response(scan, f"{name} apply on 500", client.post("/envsync/apply/render"))
            stage.emulators.reset()
            stage.emulators.seed(stage_seed(book))

            async def crash(*args: Any, **kwargs: Any) -> None:
                raise RuntimeError("provider call failed")

            monkeypatch.setattr(RenderProvider, "read", crash)
            with running.client(book["token api"]) as client:
                crashed = client.post("/envsync/apply/render")
            add_response(scan, f"{name} crash", crashed)
            stage.server.wait_for_deliveries(4)
            # While the store is open, its write-ahead log is still a file of its own.
            add_store(scan, f"{name} while serving", environ)
        finally:
            running.stop()

    assert any(channel.name.endswith("state.db-wal") for channel in scan.channels)
    assert calls["rotate value"].status_code == 200
    assert calls["rotate invalid"].status_code == 422
    assert calls["rotate oversized"].status_code == 413
    assert crashed.status_code == 500
    assert stage.server.deliveries()
    logs.add_to(scan, name)
    scan.add(f"{name} events", "\n".join(running.events))
    stage.add_outputs(scan, environ, name)
    scan.assert_clean()


def test_scheduled_ticks_leak_nothing(stage: Stage) -> None:
    environ = stage.environ(
        "json",
        ENVSYNC_SCHEDULE="@every 1s",
        ENVSYNC_MODE="enforce",
        ENVSYNC_CANONICAL_SOURCE="dashboard",
    )
    scan = stage.scan()

    with captured_logs("DEBUG", "json") as logs:
        running = serve_in_process(environ, stage.folder, schedule=True)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not scheduled_runs(running.service) and time.monotonic() < deadline:
                time.sleep(0.1)
            with running.client(None) as client:
                add_response(scan, "scheduler health", client.get("/envsync/health"))
            stage.server.wait_for_deliveries(1)
        finally:
            running.stop()

    assert scheduled_runs(running.service)
    assert "BRIDGE_DASH_1" in stage.render_values()
    logs.add_to(scan, "scheduler")
    scan.add("scheduler events", "\n".join(running.events))
    stage.add_outputs(scan, environ, "scheduler")
    scan.assert_clean()


def scheduled_runs(service: Service) -> list[str]:
    with Store.open(service.settings.database_url.get_secret_value()) as store:
        runs = store.list_runs(limit=100)
    return [run.id for run in runs if run.trigger is RunTrigger.SCHEDULER and run.ended_at]


# The engine as a library, in this process, so that its exceptions can be read.


def run_engine(
    environ: dict[str, str], folder: Path
) -> tuple[RunReport | None, BaseException | None]:
    """Run an apply in this process; return its report, or what it raised."""
    try:
        settings = load_settings(environ, cwd=folder)
        engine = Engine(settings, environ=environ, cwd=folder)
        return asyncio.run(engine.run(RunRequest(mode=RunMode.ENFORCE, trigger="library"))), None
    except Exception as error:
        return None, error


def add_outcome(
    scan: LeakScan, name: str, report: RunReport | None, error: BaseException | None
) -> None:
    """Add a run's report (repr and the API's shape of each result) or its exception
    (str, repr and traceback with its chain)."""
    if error is not None:
        scan.add(f"{name} exception str", str(error))
        scan.add(f"{name} exception repr", repr(error))
        scan.add(f"{name} traceback", "".join(traceback.format_exception(error)))
    if report is not None:
        scan.add(f"{name} report repr", repr(report))
        hasher = LedgerHasher(b"k" * 32)
        entries = [target_dict(result, hasher) for result in report.results]
        scan.add(f"{name} results", json.dumps(entries))


@pytest.mark.parametrize("case_name", list(ERROR_CASES))
def test_every_library_error_leaks_nothing(
    stage: Stage, case_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = ERROR_CASES[case_name]
    book = stage.book
    scan = stage.scan()
    if case.canonical is not None:
        (stage.folder / "canonical.env").write_text(case.canonical(book), encoding="utf-8")
    for api, rule in case.faults(book):
        stage.emulators.add_fault(api, rule)
    stage.server.script.dashboard = case.dashboard
    if case.prefix:

        async def crash(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("provider call failed")

        monkeypatch.setattr(RenderProvider, "write", crash)
    environ = stage.environ("text", **case.settings(book, stage))

    with captured_logs("DEBUG", "text") as logs:
        report, error = run_engine(environ, stage.folder)

    failed = error is not None or (report is not None and not report.ok)
    assert failed
    logs.add_to(scan, f"library {case_name}")
    add_outcome(scan, f"library {case_name}", report, error)
    stage.add_outputs(scan, environ, f"library {case_name}")
    scan.assert_clean()


# --reveal on a terminal: the one place values may appear.


def test_reveal_shows_values_only_on_terminal(stage: Stage) -> None:
    book = stage.book
    environ = stage.environ("text")
    scan = stage.scan()
    values = book.labels("value")

    planned = run_in_terminal(["plan", "--reveal"], environ, stage.folder)
    applied = run_in_terminal(["apply", "--yes", "--reveal"], environ, stage.folder)

    assert planned.returncode == 0
    assert applied.returncode == 0
    for label in ("value file-1", "value file-2", "value remote-old"):
        assert squash(book[label]) in squash(planned.terminal), label
        assert squash(book[label]) in squash(applied.terminal), label
    for name, run in (("plan --reveal", planned), ("apply --reveal", applied)):
        scan.add(f"{name} terminal", run.terminal, allow=values)
        scan.add(f"{name} stderr", run.stderr)
    stage.add_outputs(scan, environ, "reveal")
    scan.assert_clean()
