"""Measure what importing Render's generated client costs next to envsync's own Render client.

Each import runs in a fresh interpreter, 15 times. The script prints the median and the
minimum wall time of the import statement, and how many modules it added.

    .venv/bin/python bench/render_sdk_import.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys

RUNS = 15

# The modules envsync would need from the generated client: the calls it makes today.
SDK_CALLS = ", ".join(
    f"render.public_api.api.{module}"
    for module in (
        "services.get_env_vars_for_service",
        "services.update_env_vars_for_service",
        "services.list_services",
        "environment_groups.retrieve_env_group",
        "environment_groups.update_env_group_env_var",
        "environment_groups.delete_env_group_env_var",
        "workspaces.list_owners",
        "deploys.create_deploy",
    )
)

CASES = {
    "httpx alone": "httpx",
    "envsync.http (shared by both providers)": "envsync.http",
    "envsync's Render client": "envsync.providers.render.client",
    "envsync.http + generated client": f"envsync.http, {SDK_CALLS}",
}

_PROBE = (
    "import sys, time\n"
    "before = set(sys.modules)\n"
    "start = time.perf_counter()\n"
    "import {modules}\n"
    "elapsed = time.perf_counter() - start\n"
    "print(elapsed * 1000, len(set(sys.modules) - before), 'aiohttp' in sys.modules)\n"
)


def measure(modules: str) -> tuple[float, float, int, bool]:
    """Return the median and minimum milliseconds, the modules added and whether aiohttp loaded."""
    timings: list[float] = []
    added = 0
    aiohttp = False
    for _ in range(RUNS):
        output = subprocess.run(
            [sys.executable, "-c", _PROBE.format(modules=modules)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        timings.append(float(output[0]))
        added, aiohttp = int(output[1]), output[2] == "True"
    return statistics.median(timings), min(timings), added, aiohttp


def main() -> None:
    print(f"Python {sys.version.split()[0]}, {RUNS} fresh interpreters per case")
    for label, modules in CASES.items():
        median, fastest, added, aiohttp = measure(modules)
        print(
            f"{label:42s} median {median:6.1f} ms  min {fastest:6.1f} ms  "
            f"modules {added:4d}  aiohttp loaded: {aiohttp}"
        )


if __name__ == "__main__":
    main()
