"""Run Netlify's own CLI, netlify-cli 27, against the Netlify emulator.

netlify-cli requests a site's extensions from api.netlifysdk.com on every command, and no flag
turns that off. Without an answer it falls back to an offline configuration in which env
commands fail. So these tests run only inside `../shared/tools/isolated-run`, a private
network namespace with nothing but loopback, where that host name resolves to a local
stub. `.ci/run` starts them there as a second pytest invocation with `ENVSYNC_ISOLATED=1`,
after installing netlify-cli with npm into a cache outside the repository and passing
the path of its `netlify` command in `ENVSYNC_NETLIFY_CLI`.

The emulator runs in this pytest process (the `emulators` fixture), so the suite's
OpenAPI check sees every response the CLI receives.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from envsync.emulators import EmulatorSet
from tests.conftest import subprocess_env

ISOLATED_FLAG = "ENVSYNC_ISOLATED"
CLI_PATH_VARIABLE = "ENVSYNC_NETLIFY_CLI"
NETLIFY_CLI_VERSION = "27.10.2"

TOKEN = "nfp_cliConformance000000000000000000000"
ACCOUNT_ID = "66e98216e3fe031846dc0c1a"
ACCOUNT_SLUG = "cli-team"
SITE_ID = "0b7d4a6e-2f4c-4c1e-8d3a-0e2e0517c001"
OTHER_SITE_ID = "0b7d4a6e-2f4c-4c1e-8d3a-0e2e0517c002"
ALL_SCOPES = ["builds", "functions", "runtime", "post_processing"]
SECRET_SCOPES = ["builds", "functions", "runtime"]

# A command that does not finish in this time is stuck (each takes about a second here).
_COMMAND_TIMEOUT_S = 60


def default_cli_path() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "envsync" / "netlify-cli" / "node_modules" / ".bin" / "netlify"


def hosts_file_fakes_extensions_api() -> bool:
    """Tell whether /etc/hosts sends api.netlifysdk.com to loopback, as isolated-run does."""
    try:
        lines = Path("/etc/hosts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    for line in lines:
        address, *names = line.split("#", 1)[0].split() or [""]
        if address == "127.0.0.1" and "api.netlifysdk.com" in names:
            return True
    return False


def netlify_cli_path() -> Path:
    """Return the netlify command, or skip the test saying what is missing."""
    if os.environ.get(ISOLATED_FLAG) != "1":
        pytest.skip(
            f"netlify-cli tests run only inside ../shared/tools/isolated-run with "
            f"{ISOLATED_FLAG}=1; .ci/run starts them there"
        )
    if not hosts_file_fakes_extensions_api():
        pytest.skip("api.netlifysdk.com does not resolve to loopback: not inside isolated-run")

    path = Path(os.environ.get(CLI_PATH_VARIABLE) or default_cli_path())
    if not path.is_file():
        pytest.skip(
            f"netlify-cli {NETLIFY_CLI_VERSION} is not installed at {path}; .ci/run installs it "
            f"with npm (set {CLI_PATH_VARIABLE} to use another copy)"
        )
    return path


def plain_var(
    key: str, *values: tuple[str, str], scopes: list[str] | None = None
) -> dict[str, Any]:
    """Build a seed variable from (context, value) pairs, where `branch:NAME` is a branch."""
    return {
        "key": key,
        "scopes": scopes or ALL_SCOPES,
        "is_secret": False,
        "values": [_value(context, value) for context, value in values],
    }


def secret_var(key: str, *values: tuple[str, str]) -> dict[str, Any]:
    return {**plain_var(key, *values, scopes=SECRET_SCOPES), "is_secret": True}


def _value(context: str, value: str) -> dict[str, str]:
    if context.startswith("branch:"):
        return {
            "context": "branch",
            "context_parameter": context.removeprefix("branch:"),
            "value": value,
        }
    return {"context": context, "value": value}


def netlify_seed(
    site_env: list[dict[str, Any]],
    other_site_env: list[dict[str, Any]] | None = None,
    team_env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    account = {"id": ACCOUNT_ID, "slug": ACCOUNT_SLUG, "name": "CLI Team", "env": team_env or []}
    site = {"account_id": ACCOUNT_ID, "account_slug": ACCOUNT_SLUG}
    return {
        "tokens": [TOKEN],
        "accounts": [account],
        "sites": [
            {**site, "id": SITE_ID, "name": "web", "env": site_env},
            {**site, "id": OTHER_SITE_ID, "name": "docs", "env": other_site_env or []},
        ],
    }


@dataclass
class NetlifyCli:
    """The netlify command, pointed at the emulator with a token and a site, in a scratch folder."""

    binary: Path
    folder: Path
    environment: dict[str, str]
    emulators: EmulatorSet

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *arguments],
            cwd=self.folder,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )

    def succeed(self, *arguments: str) -> str:
        """Run a command that must exit 0, and return its standard output."""
        result = self.run(*arguments)
        assert result.returncode == 0, (
            f"netlify {' '.join(arguments)} exited {result.returncode}: {result.stderr.strip()}"
        )
        return result.stdout

    def seed(self, document: dict[str, Any]) -> None:
        self.emulators.seed({"netlify": document})

    def site_vars(self, site_id: str = SITE_ID) -> dict[str, dict[str, Any]]:
        """Return a site's variables as the emulator stores them, by key."""
        site = next(s for s in self.emulators.state("netlify")["sites"] if s["id"] == site_id)
        return {var["key"]: var for var in site["env"]}

    def writes(self) -> list[str]:
        """Return the method and path of every write the CLI made, in order."""
        return [
            f"{entry['method']} {entry['path']}"
            for entry in self.emulators.requests("netlify")
            if entry["method"] != "GET"
        ]


@pytest.fixture
def netlify_cli(emulators: EmulatorSet, tmp_path: Path) -> Iterator[NetlifyCli]:
    binary = netlify_cli_path()
    home = tmp_path / "home"
    folder = tmp_path / "project"
    home.mkdir()
    folder.mkdir()
    environment = subprocess_env(
        {
            # The CLI keeps its global config under HOME, so each test gets its own.
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "NETLIFY_API_URL": emulators.netlify_url,
            "NETLIFY_AUTH_TOKEN": TOKEN,
            "NETLIFY_SITE_ID": SITE_ID,
            "NETLIFY_TELEMETRY_DISABLED": "1",
            "CI": "1",
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
        }
    )
    cli = NetlifyCli(binary, folder, environment, emulators)
    cli.seed(netlify_seed([]))
    yield cli
