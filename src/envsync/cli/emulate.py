"""`envsync emulate`: serve the Render, Netlify and Vault emulators on loopback."""

from __future__ import annotations

import typer

from envsync.cli.app import app


@app.command()
def emulate(
    render_port: int = typer.Option(8701, help="Port of the Render API emulator."),
    netlify_port: int = typer.Option(8702, help="Port of the Netlify API emulator."),
    vault_port: int = typer.Option(8703, help="Port of the Vault KV v2 emulator."),
    seed: str | None = typer.Option(None, help="A JSON seed file: {render, netlify, vault}."),
    latency_ms: int = typer.Option(0, help="Delay added to every response, in milliseconds."),
    rate_window_s: float | None = typer.Option(
        None, help="Length of the rate-limit window in seconds (default: the real 60 s)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the URLs and tokens as one JSON line."
    ),
) -> None:
    """Serve local stand-ins for the Render, Netlify and Vault APIs until Ctrl-C or SIGTERM."""
    from envsync.emulators.server import run_emulators

    run_emulators(
        render_port=render_port,
        netlify_port=netlify_port,
        vault_port=vault_port,
        seed_path=seed,
        latency_ms=latency_ms,
        rate_window_s=rate_window_s,
        as_json=as_json,
    )
