"""The Render Blueprint and the GitHub workflow that deploy and drive the service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from envsync.config import CREDENTIAL_SETTINGS
from tests.conftest import REPO_ROOT

TOKENS = ("RENDER_API_TOKEN", "NETLIFY_API_TOKEN")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_blueprint_runs_serve_on_render_port() -> None:
    service = _load(REPO_ROOT / "render.yaml")["services"][0]

    assert service["type"] == "web"
    assert service["startCommand"] == "envsync serve --host 0.0.0.0 --port $PORT"
    assert service["healthCheckPath"] == "/envsync/health"


def test_blueprint_wires_database_and_secrets() -> None:
    blueprint = _load(REPO_ROOT / "render.yaml")
    variables = {entry["key"]: entry for entry in blueprint["services"][0]["envVars"]}
    database = blueprint["databases"][0]

    assert variables["ENVSYNC_DATABASE_URL"]["fromDatabase"] == {
        "name": database["name"],
        "property": "connectionString",
    }
    secrets = ({*CREDENTIAL_SETTINGS, *TOKENS, "VAULT_ADDR"} - {"ENVSYNC_DATABASE_URL"}) & set(
        variables
    )
    assert "ENVSYNC_API_TOKEN" in secrets
    for name in secrets:
        assert variables[name] == {"key": name, "sync": False}, name


def test_workflow_applies_after_merge_with_curl_fail() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "envsync.yml")
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    trigger = workflow[True]
    steps = workflow["jobs"]["api"]["steps"]
    commands = "\n".join(step["run"] for step in steps)

    assert trigger["push"]["branches"] == ["main"]
    assert "--fail-with-body" in commands
    assert "/envsync/apply-all" in commands
    # The token reaches curl only through the header file written in one step.
    token_lines = [line for line in commands.splitlines() if "ENVSYNC_API_TOKEN" in line]
    assert len(token_lines) == 1
    assert token_lines[0].endswith('> "$RUNNER_TEMP/envsync-auth"')


def test_workflow_cli_job_keeps_ledger_on_target() -> None:
    job = _load(REPO_ROOT / ".github" / "workflows" / "envsync.yml")["jobs"]["cli"]
    commands = [step.get("run") for step in job["steps"]]

    assert job["env"]["ENVSYNC_LEDGER_BACKEND"] == "target"
    assert "ENVSYNC_LEDGER_KEY" in job["env"]
    assert "envsync apply --yes" in commands
