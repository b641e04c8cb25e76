"""`envsync serve` as a user starts it: a subprocess with the loopback-only guard."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from envsync.emulators import EmulatorSet
from envsync.store import Store
from tests.api.conftest import API_TOKEN, service_environ
from tests.conftest import subprocess_env

CLI = "import sys; from envsync.cli import main; sys.exit(main())"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _serve_command(*options: str) -> list[str]:
    return [sys.executable, "-c", CLI, "serve", *options]


def _environ(emulators: EmulatorSet, folder: Path, **settings: str | None) -> dict[str, str]:
    environ = service_environ(emulators, folder)
    environ["ENVSYNC_SCHEDULE"] = "@every 24h"
    environ["ENVSYNC_ENABLED"] = "false"
    for name, value in settings.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return subprocess_env(environ)


def _run_refused(
    environ: dict[str, str], folder: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _serve_command(*options),
        env=environ,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def _serving(
    environ: dict[str, str], folder: Path, *options: str
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start `envsync serve` on a free port, wait for health, and stop it with SIGTERM."""
    port = _free_port()
    process = subprocess.Popen(
        _serve_command("--port", str(port), *options),
        env=environ,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_until_healthy(url: str, process: subprocess.Popen[str]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise AssertionError(
                f"envsync serve exited early: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/envsync/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("envsync serve did not become healthy")


def test_refuses_without_token_off_loopback(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ = _environ(emulators, tmp_path, ENVSYNC_API_TOKEN=None)

    result = _run_refused(environ, tmp_path, "--host", "0.0.0.0", "--port", str(_free_port()))

    assert result.returncode == 1
    assert "ENVSYNC_API_TOKEN" in result.stderr


def test_refuses_without_token_on_loopback(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ = _environ(emulators, tmp_path, ENVSYNC_API_TOKEN=None)

    result = _run_refused(environ, tmp_path, "--host", "127.0.0.1", "--port", str(_free_port()))

    assert result.returncode == 1
    assert "--insecure-local" in result.stderr


def test_refuses_insecure_local_off_loopback(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ = _environ(emulators, tmp_path, ENVSYNC_API_TOKEN=None)

    result = _run_refused(
        environ, tmp_path, "--host", "0.0.0.0", "--port", str(_free_port()), "--insecure-local"
    )

    assert result.returncode == 1
    assert "loopback" in result.stderr


def test_insecure_local_serves_without_token(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ = _environ(emulators, tmp_path, ENVSYNC_API_TOKEN=None)

    with _serving(environ, tmp_path, "--host", "127.0.0.1", "--insecure-local") as (url, process):
        response = httpx.post(f"{url}/envsync/dry-run/render", timeout=60)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)

    assert response.status_code == 200
    assert response.json()["target"] == "render/api"
    assert "without ENVSYNC_API_TOKEN" in stderr
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again so that the
    # exit status still reports it.
    assert "Application shutdown complete" in stderr
    assert process.returncode == -signal.SIGTERM


def test_serve_requires_token_on_routes(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ = _environ(emulators, tmp_path)

    with _serving(environ, tmp_path) as (url, _):
        without = httpx.get(f"{url}/envsync/runs", timeout=30)
        with_token = httpx.get(
            f"{url}/envsync/runs", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=30
        )

    assert without.status_code == 401
    assert with_token.status_code == 200


def test_json_log_format_covers_uvicorn(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ = _environ(emulators, tmp_path, ENVSYNC_LOG_FORMAT="json")

    with _serving(environ, tmp_path) as (url, process):
        httpx.post(
            f"{url}/envsync/dry-run/render",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            timeout=60,
        )
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)

    lines = [line for line in stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    loggers = {entry["logger"] for entry in entries}
    messages = [entry["message"] for entry in entries]
    assert any(name.startswith("uvicorn") for name in loggers)
    assert any(message.startswith("[ENVSYNC] render: applied=False") for message in messages)
    assert any(entry.get("provider") == "render" for entry in entries)


def test_marks_dead_process_runs_interrupted(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ = _environ(emulators, tmp_path)
    database_url = environ["ENVSYNC_DATABASE_URL"]
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from envsync.store import Store; "
            "print(Store.open(sys.argv[1]).start_run('api', 'enforce'))",
            database_url,
        ],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    run_id = started.stdout.strip()

    with _serving(environ, tmp_path):
        pass

    with Store.open(database_url) as store:
        run = store.get_run(run_id)
    assert run is not None
    assert run.status.value == "interrupted"


def test_workers_share_store_and_metrics(emulators: EmulatorSet, tmp_path: Path) -> None:
    environ = _environ(emulators, tmp_path)
    headers = {"Authorization": f"Bearer {API_TOKEN}"}

    with (
        _serving(environ, tmp_path, "--workers", "2") as (url, _),
        httpx.Client(base_url=url, headers=headers, timeout=60) as client,
    ):
        statuses = [client.post("/envsync/dry-run/render").status_code for _ in range(4)]
        runs = client.get("/envsync/runs").json()["runs"]
        metrics = client.get("/metrics").text

    assert statuses == [200, 200, 200, 200]
    assert len(runs) == 4
    assert 'envsync_runs_total{mode="dry-run",status="succeeded",trigger="api"} 4.0' in metrics
