"""Set-up shared by the tests of tickets, webhooks, rollback, rotation and their CLI: an
engine whose providers are the loopback emulators and whose store is a SQLite file in the
test's folder."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from envsync.config import load_settings
from envsync.emulators import EmulatorSet
from envsync.engine import Engine, RunReport, RunRequest
from envsync.model import RunMode

RENDER_SERVICE_ID = "srv-d0emu0api00000000000"
RENDER_LEDGER_ID = f"render:service:{RENDER_SERVICE_ID}"
NETLIFY_SITE_ID = "5f1c0de0-0000-4000-8000-000000000001"
NETLIFY_ACCOUNT_ID = "65e0c0ffee00000000000001"
ALL_SCOPES = ["builds", "functions", "runtime", "post_processing"]

# A value that must never appear in a ticket, an event, a log line or command output.
CANARY = "canary-7d41c9e2-must-never-leave"


def environ_for(emulators: EmulatorSet, folder: Path, **extra: str) -> dict[str, str]:
    """Settings that point every provider at the emulators and keep state in `folder`."""
    environ = {
        "RENDER_API_URL": emulators.render_url,
        "NETLIFY_API_URL": emulators.netlify_url,
        "RENDER_API_TOKEN": emulators.render_token,
        "NETLIFY_API_TOKEN": emulators.netlify_token,
        "ENVSYNC_DISCOVERY_ORDER": "env",
        "ENVSYNC_DATABASE_URL": f"sqlite:///{folder / 'state.db'}",
        "ENVSYNC_CANONICAL_FILE": str(folder / "canonical.env"),
        "ENVSYNC_CONFIG_FILE": str(folder / "envsync.toml"),
        "ENVSYNC_SECRET_DIRS": str(folder / "no-secrets"),
        "ENVSYNC_RETRY_BASE_S": "0.01",
        "ENVSYNC_RETRY_MAX_S": "0.05",
        "ENVSYNC_SNAPSHOT_KEY": "snapshot-key-for-tests-only",
        "ENVSYNC_LEDGER_KEY": "ledger-key-for-tests-only",
    }
    environ.update(extra)
    return environ


def make_engine(environ: dict[str, str], folder: Path) -> Engine:
    settings = load_settings(environ, cwd=folder)
    return Engine(settings, environ=environ, cwd=folder)


def write_canonical(folder: Path, text: str) -> Path:
    path = folder / "canonical.env"
    path.write_text(text, encoding="utf-8")
    return path


def run(engine: Engine, mode: RunMode = RunMode.ENFORCE, **options: Any) -> RunReport:
    """Run the engine once, in its own event loop."""
    return asyncio.run(engine.run(RunRequest(mode=mode, **options)))


def render_vars(emulators: EmulatorSet) -> dict[str, str]:
    """Return the Render service's variables as stored in the emulator."""
    service = emulators.state("render")["services"][0]
    return {item["key"]: item["value"] for item in service["envVars"]}


def netlify_values(emulators: EmulatorSet) -> dict[str, dict[str, str]]:
    """Return the Netlify site's variables as stored in the emulator: key, context, value."""
    site = emulators.state("netlify")["sites"][0]
    values: dict[str, dict[str, str]] = {}
    for variable in site["env"]:
        values[variable["key"]] = {item["context"]: item["value"] for item in variable["values"]}
    return values


def seed_render(emulators: EmulatorSet, variables: dict[str, str]) -> None:
    state = emulators.state("render")
    state["services"][0]["envVars"] = [{"key": k, "value": v} for k, v in variables.items()]
    emulators.seed({"render": state})


def seed_netlify(emulators: EmulatorSet, env: list[dict[str, Any]]) -> None:
    state = emulators.state("netlify")
    state["sites"][0]["env"] = env
    emulators.seed({"netlify": state})
