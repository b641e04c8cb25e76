"""A working folder whose settings point envsync at the benchmark's emulators.

`Sandbox.run` drives the engine in this process (the library path); `Sandbox.cli_command`
builds the real `envsync` command line for a subprocess (the CLI path).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.emulated import Emulators
from bench.seeds import NETLIFY_TOKEN, RENDER_TOKEN, Fleet, dotenv_text, targets_toml
from envsync.config import load_settings
from envsync.engine import Engine, RunReport, RunRequest
from envsync.model import RunMode

# A fixed ledger key, so that the `target` ledger backend can check its hashes.
LEDGER_KEY = "bench-ledger-key-0123456789abcdef0123456789abcdef"


@dataclass
class Sandbox:
    """One folder, one state database, one envsync.toml and one canonical file."""

    folder: Path
    emulators: Emulators
    environ: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        folder: Path,
        emulators: Emulators,
        fleet: Fleet,
        *,
        write_mode: str = "bulk",
        ledger: str = "database",
        extra: Mapping[str, str] | None = None,
    ) -> Sandbox:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "envsync.toml").write_text(targets_toml(fleet, write_mode=write_mode), "utf-8")
        environ = {
            "RENDER_API_URL": emulators.render_url,
            "NETLIFY_API_URL": emulators.netlify_url,
            "RENDER_API_TOKEN": RENDER_TOKEN,
            "NETLIFY_API_TOKEN": NETLIFY_TOKEN,
            "ENVSYNC_CONFIG_FILE": str(folder / "envsync.toml"),
            "ENVSYNC_DATABASE_URL": f"sqlite:///{folder / 'state.db'}",
            "ENVSYNC_CANONICAL_FILE": str(folder / "canonical.env"),
            "ENVSYNC_INCLUDE_PREFIXES": "",
            "ENVSYNC_EXCLUDE_PREFIXES": "",
            "ENVSYNC_DISCOVERY_ORDER": "env",
            "ENVSYNC_SECRET_DIRS": str(folder / "secrets"),
            "ENVSYNC_LEDGER_BACKEND": ledger,
            "ENVSYNC_LEDGER_KEY": LEDGER_KEY,
            # Deletions stay off: no benchmark scenario deletes.
            "ENVSYNC_ALLOW_DELETIONS": "false",
            **(extra or {}),
        }
        return cls(folder, emulators, environ)

    def write_canonical(self, values: Mapping[str, str]) -> None:
        (self.folder / "canonical.env").write_text(dotenv_text(values), "utf-8")

    def engine(self, **overrides: str) -> Engine:
        environ = {**self.environ, **overrides}
        settings = load_settings(environ, cwd=self.folder)
        return Engine(settings, environ=environ, cwd=self.folder)

    def run(self, mode: str = "enforce", **overrides: str) -> RunReport:
        engine = self.engine(**overrides)
        return asyncio.run(engine.run(RunRequest(mode=RunMode(mode), trigger="library")))

    def cli_command(self, *args: str) -> list[str]:
        return [sys.executable, "-c", "from envsync.cli import main; main()", *args]


def check_report(report: RunReport) -> None:
    """Stop the benchmark when a run failed: a figure of a failed run means nothing."""
    failed = [result for result in report.results if not result.ok]
    if failed:
        first = failed[0]
        raise RuntimeError(f"{first.target.name} failed: {'; '.join(first.errors)}")
