"""The machine the benchmarks ran on, and the versions of what they measured."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

LIBRARIES = (
    "envsync-engine",
    "httpx",
    "httpcore",
    "uvicorn",
    "starlette",
    "fastapi",
    "pydantic",
    "pydantic-settings",
    "sqlalchemy",
    "typer",
    "rich",
)


def machine() -> dict[str, str]:
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "OS": f"{_os_name()}, Linux {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages, which show how busy the machine was."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def versions() -> dict[str, str]:
    found = {name: _version(name) for name in LIBRARIES}
    found["node"] = _output(["node", "--version"])
    found["hyperfine"] = _output(["hyperfine", "--version"])
    found["wrk"] = _output(["wrk", "-v"]).split(" [")[0]
    # Debian's GNU time prints "UNKNOWN" as its own version, so the package's is shown.
    found["GNU time"] = _output(["dpkg-query", "--show", "--showformat=${Version}", "time"])
    return found


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _output(command: list[str]) -> str:
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        return "not installed"
    finished = subprocess.run(command, capture_output=True, text=True)
    text = (finished.stdout or finished.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text("utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory() -> str:
    for line in Path("/proc/meminfo").read_text("utf-8").splitlines():
        if line.startswith("MemTotal:"):
            kib = int(line.split()[1])
            return f"{kib / 2**20:.1f} GiB"
    return "unknown"


def _os_name() -> str:
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text("utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.system()
