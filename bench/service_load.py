"""Service load: `GET /envsync/health` and `POST /envsync/dry-run/netlify` of `envsync
serve` (one uvicorn worker) under 50 concurrent connections on loopback, with wrk
(Debian package `wrk`, one thread, so the server keeps a core of the two). The dry-run
route plans one Netlify site of 20 variables against the emulators, which run in a
process of their own. Every load run is bounded in time and stops by itself.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.emulated import EmulatorProcess
from bench.footprint import command_env, envsync_command, prepare_bytecode
from bench.sandbox import Sandbox, check_report
from bench.seeds import Fleet, base_values, seed

API_TOKEN = "bench-service-token-0123456789abcdef"
CONNECTIONS = 50
# ENVSYNC_SHUTDOWN_GRACE_S (25 s by default) and a margin.
SHUTDOWN_WAIT_S = 40.0
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True, slots=True)
class LoadRow:
    route: str
    connections: int
    seconds: float
    requests: int
    failures: int
    per_second: float
    p50_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(*, seconds: int = 10, base_env: Mapping[str, str] | None = None) -> list[LoadRow]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package wrk)")
    prepare_bytecode()
    fleet = Fleet(sites=1, variables=base_values(20))
    with (
        tempfile.TemporaryDirectory(prefix="envsync-bench-service-") as scratch,
        EmulatorProcess(seed(fleet), env=command_env(base_env, {})) as emulators,
    ):
        folder = Path(scratch)
        sandbox = Sandbox.create(folder, emulators, fleet)
        sandbox.write_canonical(base_values(20))
        check_report(sandbox.run("enforce"))
        port = free_port()
        env = command_env(
            base_env,
            {**sandbox.environ, "ENVSYNC_API_TOKEN": API_TOKEN, "ENVSYNC_LOG_LEVEL": "WARNING"},
        )
        server = subprocess.Popen(
            [*envsync_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_up(f"{base}/envsync/health")
            script = folder / "post.lua"
            script.write_text('wrk.method = "POST"\n', "utf-8")
            return [
                _wrk("GET /envsync/health", f"{base}/envsync/health", seconds, None),
                _wrk(
                    "POST /envsync/dry-run/netlify",
                    f"{base}/envsync/dry-run/netlify",
                    seconds,
                    script,
                ),
            ]
        finally:
            _stop(server)


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the server as a platform would: SIGTERM, then SIGKILL after its grace period."""
    server.terminate()
    try:
        server.wait(SHUTDOWN_WAIT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("envsync serve did not respond on its health route within 30 s")


def _wrk(route: str, url: str, seconds: int, script: Path | None) -> LoadRow:
    command = [
        "wrk",
        "--threads=1",
        f"--connections={CONNECTIONS}",
        f"--duration={seconds}s",
        "--timeout=30s",
        "--latency",
        "-H",
        f"Authorization: Bearer {API_TOKEN}",
    ]
    if script is not None:
        command += ["--script", str(script)]
    finished = subprocess.run([*command, url], capture_output=True, text=True, check=True)
    return _parse(route, finished.stdout, seconds)


def _parse(route: str, output: str, seconds: int) -> LoadRow:
    requests = int(_search(r"(\d+) requests in", output))
    failures = int(_search(r"Non-2xx or 3xx responses: (\d+)", output, "0"))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        failures += sum(int(count) for count in errors.groups())
    return LoadRow(
        route=route,
        connections=CONNECTIONS,
        seconds=seconds,
        requests=requests,
        failures=failures,
        per_second=float(_search(r"Requests/sec:\s+([\d.]+)", output)),
        p50_ms=_latency_ms("50%", output),
        p99_ms=_latency_ms("99%", output),
    )


def _latency_ms(percentile: str, output: str) -> float:
    match = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no {percentile} latency")
    return float(match.group(1)) * _UNITS[match.group(2)] * 1000


def _search(pattern: str, output: str, default: str | None = None) -> str:
    match = re.search(pattern, output)
    if match is None:
        if default is None:
            raise RuntimeError(f"wrk's output has no match for {pattern!r}")
        return default
    return match.group(1)
