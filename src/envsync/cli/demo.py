"""`envsync demo`: a complete sync against the built-in emulators, offline, in seconds.

It starts the Render, Netlify and Vault emulators on loopback, seeds a Render service of
131 variables (most of them not managed by envsync), a Render environment group and a
Netlify site with values in several contexts, writes a sample .env file, and then shows
a plan, applies it, and plans again to show that nothing is left to change. Everything
happens in a temporary folder; no token and no network are needed.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import typer

from envsync.cli.app import EXIT_ERROR, app

RENDER_TOKEN = "rnd_demo_token"
NETLIFY_TOKEN = "nfp_demo_token"
VAULT_TOKEN = "hvs.demo_token"
SERVICE_ID = "srv-d3mo0api00000000000"
GROUP_ID = "evg-d3mo0shared0000000"
OWNER_ID = "tea-d3mo0team00000000"
SITE_ID = "5b6f0f6e-1c2d-4e8f-9a0b-d3m0517e0001"
ACCOUNT_ID = "66e98216e3fe031846dc998a"
ALL_SCOPES = ["builds", "functions", "runtime", "post_processing"]

SAMPLE_ENV = """\
# The canonical set for the demo. envsync manages keys with the prefixes BRIDGE_, SR_,
# HEART_ and ENVSYNC_ by default; other keys are counted as skipped by the filters.
BRIDGE_VERSION=1.9.8
BRIDGE_API_URL=https://api.example.com
BRIDGE_FEATURE_FLAGS='{"search": true, "beta": false}'
SR_REGION=oregon
SR_GREETING="Hello, ${SR_REGION}!"
HEART_TLS_CERT="-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUDemo
-----END CERTIFICATE-----"
BRIDGE_DEPLOY_TOKEN=tok_demo_rotated_value
BRIDGE_OPTIONAL=
LOCAL_ONLY=not synced: outside the filters
"""


def demo_seed() -> dict[str, Any]:
    """Build the emulators' starting state: drift, unmanaged keys and other contexts to keep."""
    unmanaged = [{"key": f"APP_SETTING_{index:03d}", "value": f"v{index}"} for index in range(120)]
    service_vars = [
        *unmanaged,
        {"key": "DATABASE_URL", "value": "postgres://demo@db.internal/app"},
        {"key": "BRIDGE_VERSION", "value": "1.9.7"},
        {"key": "BRIDGE_API_URL", "value": "https://api.example.com"},
        {"key": "SR_REGION", "value": "frankfurt"},
        {"key": "SR_GREETING", "value": "Hello, frankfurt!"},
        {"key": "BRIDGE_OPTIONAL", "value": "set in the dashboard"},
        *({"key": f"BRIDGE_LEGACY_{n}", "value": f"old{n}"} for n in range(5)),
    ]
    return {
        "render": {
            "tokens": [RENDER_TOKEN],
            "owners": [{"id": OWNER_ID, "name": "Demo Team", "type": "team"}],
            "services": [
                {
                    "id": SERVICE_ID,
                    "name": "api",
                    "ownerId": OWNER_ID,
                    "type": "web_service",
                    "envVars": service_vars,
                }
            ],
            "envGroups": [
                {
                    "id": GROUP_ID,
                    "name": "shared",
                    "ownerId": OWNER_ID,
                    "envVars": [
                        {"key": "BRIDGE_VERSION", "value": "1.9.7"},
                        {"key": "SHARED_CACHE_URL", "value": "redis://cache.internal"},
                    ],
                    "serviceIds": [SERVICE_ID],
                }
            ],
        },
        "netlify": {
            "tokens": [NETLIFY_TOKEN],
            "accounts": [{"id": ACCOUNT_ID, "slug": "demo-team", "name": "Demo Team"}],
            "sites": [
                {
                    "id": SITE_ID,
                    "name": "web",
                    "account_id": ACCOUNT_ID,
                    "account_slug": "demo-team",
                    "env": [
                        _netlify_var(
                            "BRIDGE_API_URL",
                            ("production", "https://old-api.example.com"),
                            ("deploy-preview", "https://preview-api.example.com"),
                            ("branch:staging", "https://staging-api.example.com"),
                        ),
                        _netlify_var(
                            "BRIDGE_VERSION",
                            ("production", "1.9.7"),
                            ("branch-deploy", "2.0.0-beta"),
                        ),
                        _netlify_var("NEXT_PUBLIC_ANALYTICS", ("all", "on")),
                    ],
                }
            ],
        },
        "vault": {"tokens": [VAULT_TOKEN], "mounts": {"secret": {"envsync": {}}}},
    }


def _netlify_var(key: str, *values: tuple[str, str]) -> dict[str, Any]:
    entries = []
    for context, value in values:
        if context.startswith("branch:"):
            entries.append(
                {"context": "branch", "context_parameter": context.split(":", 1)[1], "value": value}
            )
        else:
            entries.append({"context": context, "value": value})
    return {"key": key, "scopes": ALL_SCOPES, "is_secret": False, "values": entries}


@app.command()
def demo() -> None:
    """Sync a sample .env to emulated Render and Netlify targets: plan, apply, plan again."""
    from envsync.emulators.server import EmulatorSet

    with (
        tempfile.TemporaryDirectory(prefix="envsync-demo-") as folder,
        EmulatorSet(seed=demo_seed()) as emulators,
    ):
        workdir = Path(folder)
        env_file = workdir / ".env.demo"
        env_file.write_text(SAMPLE_ENV, encoding="utf-8")
        environ = _demo_environ(emulators, workdir, env_file)
        typer.echo(f"Emulators: Render {emulators.render_url}, Netlify {emulators.netlify_url}")
        typer.echo(f"Canonical file: {env_file}\n")
        ok = asyncio.run(_walk_through(environ, workdir, emulators))
    if not ok:
        raise typer.Exit(EXIT_ERROR)


def _demo_environ(emulators: Any, workdir: Path, env_file: Path) -> dict[str, str]:
    return {
        "RENDER_API_URL": emulators.render_url,
        "NETLIFY_API_URL": emulators.netlify_url,
        "RENDER_API_TOKEN": RENDER_TOKEN,
        "NETLIFY_API_TOKEN": NETLIFY_TOKEN,
        "RENDER_SERVICE_ID": SERVICE_ID,
        "RENDER_ENV_GROUP_ID": GROUP_ID,
        "NETLIFY_SITE_ID": SITE_ID,
        "NETLIFY_CONTEXT": "production",
        "NETLIFY_SECRET_KEYS": "*_TOKEN",
        "ENVSYNC_CANONICAL_FILE": str(env_file),
        "ENVSYNC_DATABASE_URL": f"sqlite:///{workdir / 'state.db'}",
        "ENVSYNC_DISCOVERY_ORDER": "env",
        "ENVSYNC_SECRET_DIRS": str(workdir / "secrets"),
    }


async def _walk_through(environ: dict[str, str], workdir: Path, emulators: Any) -> bool:
    from envsync.cli.output import print_report
    from envsync.config import load_settings
    from envsync.engine import Engine, RunRequest
    from envsync.model import RunMode

    settings = load_settings(environ, cwd=workdir)
    engine = Engine(settings, environ=environ, cwd=workdir)
    hint = "the demo keeps the default prefixes BRIDGE_, SR_, HEART_ and ENVSYNC_"
    render_before = _render_keys(emulators)

    steps = [
        ("1. Plan: what envsync would change", RunMode.DRY_RUN),
        ("2. Apply", RunMode.ENFORCE),
        ("3. Plan again: nothing is left to change", RunMode.DRY_RUN),
    ]
    report = None
    for title, mode in steps:
        typer.secho(f"\n{title}", bold=True)
        report = await engine.run(RunRequest(mode=mode, trigger="cli", actor="envsync demo"))
        print_report(report, engine.hasher(), reveal=False, skipped_hint=hint)

    render_after = _render_keys(emulators)
    kept = sum(1 for key in render_before if key.startswith("APP_SETTING_") and key in render_after)
    typer.echo(
        f"\nrender/{SERVICE_ID}: {len(render_before)} variables before, {len(render_after)} "
        f"after; all {kept} unmanaged APP_SETTING_* variables are untouched."
    )
    typer.echo(
        "netlify/web: only the production context was written; deploy-preview, "
        "branch-deploy and branch:staging values are unchanged."
    )
    assert report is not None
    clean = report.ok and not report.has_changes
    typer.echo(
        "\nDemo finished: the targets match the canonical set."
        if clean
        else "\nDemo finished with differences left; see above."
    )
    return clean


def _render_keys(emulators: Any) -> set[str]:
    state = emulators.state("render")
    service = next(s for s in state["services"] if s["id"] == SERVICE_ID)
    return {variable["key"] for variable in service["envVars"]}
