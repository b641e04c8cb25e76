"""Helpers for end-to-end tests: seeds, settings pointing at the emulators, and ways to run
envsync in-process (the engine) or as the real `envsync` command in a subprocess."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from envsync.config import load_settings
from envsync.emulators import EmulatorSet
from envsync.engine import Engine, RunReport, RunRequest
from envsync.model import RunMode, TargetResult
from tests.conftest import subprocess_env

SERVICE_ID = "srv-e2e0service0000000a"
GROUP_ID = "evg-e2e0group000000000a"
OWNER_ID = "tea-e2e0owner000000000a"
SITE_ID = "0b7d4a6e-2f4c-4c1e-8d3a-0e2e0517e001"
ACCOUNT_ID = "66e98216e3fe031846dc0e2e"
ALL_SCOPES = ["builds", "functions", "runtime", "post_processing"]


def render_seed(
    service_vars: Mapping[str, str] | None = None,
    group_vars: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "tokens": ["rnd_e2e_token"],
        "owners": [{"id": OWNER_ID, "name": "E2E", "type": "team"}],
        "services": [
            {
                "id": SERVICE_ID,
                "name": "api",
                "ownerId": OWNER_ID,
                "type": "web_service",
                "envVars": [{"key": k, "value": v} for k, v in (service_vars or {}).items()],
            }
        ],
        "envGroups": [
            {
                "id": GROUP_ID,
                "name": "shared",
                "ownerId": OWNER_ID,
                "envVars": [{"key": k, "value": v} for k, v in (group_vars or {}).items()],
                "serviceIds": [SERVICE_ID],
            }
        ],
    }


def netlify_var(
    key: str, *values: tuple[str, str], secret: bool = False, scopes: list[str] | None = None
) -> dict[str, Any]:
    entries = []
    for context, value in values:
        if context.startswith("branch:"):
            branch = context.split(":", 1)[1]
            entries.append({"context": "branch", "context_parameter": branch, "value": value})
        else:
            entries.append({"context": context, "value": value})
    return {
        "key": key,
        "scopes": scopes or ALL_SCOPES,
        "is_secret": secret,
        "values": entries,
    }


def netlify_seed(variables: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    return {
        "tokens": ["nfp_e2e_token"],
        "accounts": [{"id": ACCOUNT_ID, "slug": "e2e-team", "name": "E2E"}],
        "sites": [
            {
                "id": SITE_ID,
                "name": "web",
                "account_id": ACCOUNT_ID,
                "account_slug": "e2e-team",
                "env": list(variables),
            }
        ],
    }


@dataclass
class Workspace:
    """A working folder with settings that point envsync at the emulators."""

    emulators: EmulatorSet
    folder: Path
    environ: dict[str, str] = field(default_factory=dict)

    def write_env(self, text: str, name: str = ".env.canonical") -> Path:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        self.environ["ENVSYNC_CANONICAL_FILE"] = str(path)
        return path

    def engine(self, **overrides: str) -> Engine:
        environ = {**self.environ, **overrides}
        settings = load_settings(environ, cwd=self.folder)
        return Engine(settings, environ=environ, cwd=self.folder)

    def run(self, mode: str = "dry-run", **overrides: Any) -> RunReport:
        """Run the engine in-process; keyword arguments that are RunRequest fields go there,
        the others are settings."""
        request_fields = set(RunRequest.__dataclass_fields__)
        request_args = {k: v for k, v in overrides.items() if k in request_fields}
        settings = {k: str(v) for k, v in overrides.items() if k not in request_fields}
        engine = self.engine(**settings)
        request = RunRequest(mode=RunMode(mode), **request_args)
        return asyncio.run(engine.run(request))

    def cli(
        self, *args: str, stdin: str | None = None, extra: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `envsync` command in the workspace, guarded to loopback."""
        env = subprocess_env({**self.environ, **(extra or {})})
        return subprocess.run(
            [sys.executable, "-c", "from envsync.cli import main; main()", *args],
            cwd=self.folder,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def render_vars(self, service_id: str = SERVICE_ID) -> dict[str, str]:
        state = self.emulators.state("render")
        service = next(s for s in state["services"] if s["id"] == service_id)
        return {item["key"]: item["value"] for item in service["envVars"]}

    def group_vars(self) -> dict[str, str]:
        state = self.emulators.state("render")
        group = next(g for g in state["envGroups"] if g["id"] == GROUP_ID)
        return {item["key"]: item["value"] for item in group["envVars"]}

    def netlify_vars(self) -> dict[str, dict[str, Any]]:
        state = self.emulators.state("netlify")
        site = next(s for s in state["sites"] if s["id"] == SITE_ID)
        return {item["key"]: item for item in site["env"]}

    def netlify_values(self, key: str) -> dict[str, str]:
        """A Netlify key's values by context (branch values as branch:NAME)."""
        values = {}
        for item in self.netlify_vars()[key]["values"]:
            context = item["context"]
            if context == "branch":
                context = f"branch:{item['context_parameter']}"
            values[context] = item.get("value", "")
        return values

    def requests(self, api: str) -> list[dict[str, Any]]:
        return self.emulators.requests(api)


@pytest.fixture
def workspace(emulators: EmulatorSet, tmp_path: Path) -> Workspace:
    emulators.seed({"render": render_seed(), "netlify": netlify_seed()})
    environ = {
        "RENDER_API_URL": emulators.render_url,
        "NETLIFY_API_URL": emulators.netlify_url,
        "RENDER_API_TOKEN": "rnd_e2e_token",
        "NETLIFY_API_TOKEN": "nfp_e2e_token",
        "RENDER_SERVICE_ID": SERVICE_ID,
        "NETLIFY_SITE_ID": SITE_ID,
        "NETLIFY_CONTEXT": "production",
        "ENVSYNC_INCLUDE_PREFIXES": "",
        "ENVSYNC_EXCLUDE_PREFIXES": "",
        "ENVSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "ENVSYNC_DISCOVERY_ORDER": "env",
        "ENVSYNC_SECRET_DIRS": str(tmp_path / "secrets"),
        "ENVSYNC_RETRY_BASE_S": "0.01",
        "ENVSYNC_RETRY_MAX_S": "0.05",
        "ENVSYNC_HTTP_TIMEOUT_S": "5",
    }
    folder = tmp_path
    return Workspace(emulators, folder, environ)


def result_for(report: RunReport, provider: str, kind: str | None = None) -> TargetResult:
    for result in report.results:
        if result.target.provider == provider and (kind is None or result.target.kind == kind):
            return result
    raise AssertionError(f"no {provider} result in {[r.target.name for r in report.results]}")


def writes(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [request for request in requests if request["method"] != "GET"]


def reads(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [request for request in requests if request["method"] == "GET"]
