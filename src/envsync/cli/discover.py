"""`envsync discover`: which step of the discovery chain supplies each provider's token."""

from __future__ import annotations

import asyncio
import json
import sys

import typer

from envsync.cli.app import EXIT_ERROR, EXIT_OK, app, load_cli_settings


@app.command()
def discover(
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Show which source supplies each provider's API token (never the token)."""
    from envsync.discovery import discover_tokens

    settings = load_cli_settings()
    found = asyncio.run(discover_tokens(settings, settings.targets))

    entries = []
    for provider in settings.targets:
        discovery = found[provider]
        entries.append(
            {
                "provider": provider,
                "found": discovery.token is not None,
                "source": discovery.source,
                "tried": [{"step": step, "reason": reason} for step, reason in discovery.attempts],
                "warnings": list(discovery.warnings),
            }
        )

    if as_json:
        sys.stdout.write(json.dumps({"tokens": entries}, indent=2) + "\n")
    else:
        for entry in entries:
            _print_entry(entry)
    raise typer.Exit(EXIT_OK if all(entry["found"] for entry in entries) else EXIT_ERROR)


def _print_entry(entry: dict[str, object]) -> None:
    provider = entry["provider"]
    if entry["found"]:
        typer.echo(f"{provider}: found via {entry['source']}")
    else:
        typer.echo(f"{provider}: not found")
    for attempt in entry["tried"]:  # type: ignore[attr-defined]
        typer.echo(f"  tried {attempt['step']}: {attempt['reason']}")
    for warning in entry["warnings"]:  # type: ignore[attr-defined]
        typer.echo(f"  warning: {warning}")
