"""Test-suite set-up shared by every test.

Network guard: pytest-socket is switched on for the whole suite by the `addopts` in
pyproject.toml, allowing only loopback hosts and Unix sockets, which asyncio needs.
Python subprocesses started by tests get the same rule from
`tests/netguard/sitecustomize.py` through `subprocess_env()`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
NETGUARD = Path(__file__).resolve().parent / "netguard"

pytest_plugins = [
    "tests.fixtures.emulators",
    "tests.fixtures.netlify_openapi",
    "tests.fixtures.postgres",
]


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for Python subprocesses that carries the loopback-only guard.

    It starts from a copy of this process's environment with every provider, vault and
    dashboard URL removed, so a subprocess can only reach what the test points it at.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RENDER_", "NETLIFY_", "VAULT_", "ENVSYNC_"))
    }
    python_path = [str(NETGUARD), str(REPO_ROOT / "src")]
    if env.get("PYTHONPATH"):
        python_path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    env.update(extra or {})
    return env


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a message when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the shared folder beside the checkout")
    return path
