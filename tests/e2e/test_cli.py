"""The real `envsync` command in a subprocess: the user's path from a .env file to synced
targets, exit codes, masking and the guards around applying."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import subprocess_env
from tests.e2e.conftest import (
    Workspace,
    netlify_seed,
    netlify_var,
    render_seed,
    writes,
)

CANONICAL = """\
# Production settings for the bridge.
export BRIDGE_VERSION=1.9.8
BRIDGE_API_URL=https://api.example.com
BRIDGE_FLAGS='{"search": true}'
SR_GREETING="Hello, ${USER_NAME:-world}!"
HEART_PEM="-----BEGIN KEY-----
abc
-----END KEY-----"
BRIDGE_HASH=abc#def
NOT_SYNCED=outside the filters
"""


def seed_real_targets(workspace: Workspace) -> tuple[dict[str, str], list[dict[str, object]]]:
    service = {f"APP_SETTING_{index:03d}": f"v{index}" for index in range(127)}
    service |= {"BRIDGE_VERSION": "1.9.7", "DATABASE_URL": "postgres://db", "SR_GREETING": "x"}
    site = [
        netlify_var(
            "BRIDGE_API_URL",
            ("production", "https://old.example.com"),
            ("deploy-preview", "https://preview.example.com"),
            ("branch:staging", "https://staging.example.com"),
        ),
        netlify_var("BRIDGE_VERSION", ("production", "1.9.7"), ("branch-deploy", "2.0-beta")),
        netlify_var("ANALYTICS_ID", ("all", "UA-1")),
    ]
    workspace.emulators.seed({"render": render_seed(service), "netlify": netlify_seed(site)})
    return service, site


def test_apply_then_plan_has_no_changes(workspace: Workspace) -> None:
    service, _ = seed_real_targets(workspace)
    workspace.write_env(CANONICAL)
    filters = {"ENVSYNC_INCLUDE_PREFIXES": "BRIDGE_,SR_,HEART_"}

    applied = workspace.cli("apply", "--yes", extra=filters)
    planned = workspace.cli("plan", "--detailed-exitcode", extra=filters)

    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert planned.returncode == 0, planned.stdout + planned.stderr
    render_after = workspace.render_vars()
    assert len(render_after) == 130 + 4
    for key, value in service.items():
        if not key.startswith(("BRIDGE_", "SR_", "HEART_")):
            assert render_after[key] == value
    assert render_after["HEART_PEM"] == "-----BEGIN KEY-----\nabc\n-----END KEY-----"
    assert render_after["BRIDGE_HASH"] == "abc#def"
    assert render_after["SR_GREETING"] == "Hello, world!"
    assert workspace.netlify_values("BRIDGE_API_URL") == {
        "production": "https://api.example.com",
        "deploy-preview": "https://preview.example.com",
        "branch:staging": "https://staging.example.com",
    }
    assert workspace.netlify_values("BRIDGE_VERSION") == {
        "production": "1.9.8",
        "branch-deploy": "2.0-beta",
    }
    assert workspace.netlify_values("ANALYTICS_ID") == {"all": "UA-1"}


def test_plan_detailed_exitcode_two_on_drift(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")

    completed = workspace.cli("plan", "--detailed-exitcode")

    assert completed.returncode == 2
    assert writes(workspace.requests("render")) == []


def test_plan_masks_values(workspace: Workspace) -> None:
    workspace.emulators.seed({"render": render_seed({"A": "old-visible-value"})})
    workspace.write_env("A=new-visible-value\n")

    completed = workspace.cli("plan", "--target", "render")

    assert completed.returncode == 0
    assert "update" in completed.stdout
    assert "sha:" in completed.stdout
    assert "visible-value" not in completed.stdout + completed.stderr


def test_plan_json_shape(workspace: Workspace) -> None:
    workspace.emulators.seed({"render": render_seed({"A": "old-visible-value"})})
    workspace.write_env("A=new-visible-value\nB=2\n")

    completed = workspace.cli("plan", "--json", "--target", "render")

    document = json.loads(completed.stdout)
    result = document["results"][0]
    assert result["provider"] == "render"
    assert result["mode"] == "dry-run"
    assert result["applied"] is False
    assert {entry["key"]: entry["op"] for entry in result["diff"]} == {"A": "update", "B": "create"}
    assert result["diff"][0]["from_val"].startswith("sha:")
    assert "visible-value" not in completed.stdout


def test_reveal_refused_without_terminal(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")

    completed = workspace.cli("plan", "--reveal")

    assert completed.returncode == 1
    assert "--reveal works only when standard output is a terminal" in completed.stderr


def test_reveal_refused_with_json(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")

    completed = workspace.cli("plan", "--reveal", "--json")

    assert completed.returncode == 1
    assert "--json" in completed.stderr


def test_apply_refused_without_yes_in_pipeline(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")

    completed = workspace.cli("apply", stdin="")

    assert completed.returncode == 1
    assert "--yes" in completed.stderr
    assert workspace.requests("render") == []


def test_filters_skipped_keys_are_reported(workspace: Workspace) -> None:
    workspace.write_env("BRIDGE_A=1\nOTHER=2\nMORE=3\n")

    completed = workspace.cli(
        "plan", "--target", "render", extra={"ENVSYNC_INCLUDE_PREFIXES": "BRIDGE_"}
    )

    assert "2 keys of the source were skipped by the filters" in completed.stdout
    assert "ENVSYNC_INCLUDE_PREFIXES" in completed.stdout


def test_invalid_setting_names_setting_and_values(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")

    completed = workspace.cli("plan", extra={"ENVSYNC_MODE": "enforced"})

    assert completed.returncode == 1
    assert "ENVSYNC_MODE" in completed.stderr
    assert "enforced" in completed.stderr
    assert "dry-run" in completed.stderr


def test_parse_error_stops_before_provider_calls(workspace: Workspace) -> None:
    workspace.write_env("GOOD=1\nBAD LINE WITH canary-value-xyz\n")

    completed = workspace.cli("apply", "--yes")

    assert completed.returncode == 1
    assert "line 2" in completed.stderr
    assert "canary-value-xyz" not in completed.stderr + completed.stdout
    assert workspace.requests("render") == []
    assert workspace.requests("netlify") == []


def test_usage_error_exits_one(workspace: Workspace) -> None:
    completed = workspace.cli("plan", "--no-such-option")

    assert completed.returncode == 1


def test_version_imports_almost_nothing() -> None:
    code = (
        "import sys; sys.argv=['envsync','--version']; from envsync.cli import main; main(); "
        "heavy=[m for m in ('typer','rich','httpx','pydantic','sqlalchemy','fastapi') "
        "if m in sys.modules]; print('heavy:', heavy)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True
    )

    assert completed.stdout.startswith("envsync ")
    assert "heavy: []" in completed.stdout


def test_help_documents_exit_codes(workspace: Workspace) -> None:
    completed = workspace.cli("--help")

    assert completed.returncode == 0
    assert "Exit codes" in completed.stdout
    assert "changes" in completed.stdout


def test_token_in_settings_dotenv_is_discovered(workspace: Workspace) -> None:
    token = workspace.environ.pop("RENDER_API_TOKEN")
    (workspace.folder / ".env").write_text(f"RENDER_API_TOKEN={token}\n", encoding="utf-8")
    workspace.write_env("A=1\n")

    discovered = workspace.cli("discover", extra={"ENVSYNC_TARGETS": "render"})
    planned = workspace.cli("plan", "--target", "render")

    assert discovered.returncode == 0, discovered.stdout
    assert "found via env RENDER_API_TOKEN" in discovered.stdout
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert token not in discovered.stdout + planned.stdout + planned.stderr


def test_unknown_target_is_an_error(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")

    completed = workspace.cli("plan", "--target", "netlify/wbe")

    assert completed.returncode == 1
    assert "netlify/wbe selects no configured target" in completed.stderr
    assert "netlify/web" in completed.stderr


def test_unresolved_target_name_is_accepted(workspace: Workspace) -> None:
    workspace.environ["NETLIFY_SITE_ID"] = "auto"
    workspace.write_env("A=1\n")

    completed = workspace.cli("plan", "--target", "netlify/auto")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "netlify/web" in completed.stdout


def test_skipped_keys_are_named(workspace: Workspace) -> None:
    workspace.write_env("BRIDGE_A=1\nOTHER=2\nMORE=3\n")

    completed = workspace.cli(
        "plan", "--target", "render", extra={"ENVSYNC_INCLUDE_PREFIXES": "BRIDGE_"}
    )

    assert "(OTHER, MORE;" in completed.stdout


def test_duplicate_toml_target_names_rejected(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")
    (workspace.folder / "envsync.toml").write_text(
        '[[target]]\nname = "web"\nprovider = "netlify"\n\n'
        '[[target]]\nname = "web"\nprovider = "render"\n',
        encoding="utf-8",
    )

    completed = workspace.cli("plan")

    assert completed.returncode == 1
    assert "target name web is used more than once" in completed.stderr


def test_invalid_boolean_lists_accepted_values(workspace: Workspace) -> None:
    workspace.write_env("A=1\n")

    completed = workspace.cli("plan", extra={"ENVSYNC_ALLOW_DELETIONS": "maybe"})

    assert completed.returncode == 1
    assert "ENVSYNC_ALLOW_DELETIONS" in completed.stderr
    assert "true, false" in completed.stderr


def test_tickets_close_by_target(workspace: Workspace) -> None:
    workspace.write_env("SITE_NAME=x\n")
    workspace.cli("plan", "--target", "netlify")

    listed = workspace.cli("tickets")
    closed = workspace.cli("tickets", "--close", "netlify/web")
    after = workspace.cli("tickets")

    assert "netlify/web" in listed.stdout
    assert "closed 1 open ticket of netlify/web" in closed.stdout
    assert "netlify/web" not in after.stdout
