"""`envsync rotate KEY`: write a new value of one key to the canonical source and apply it."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import typer

from envsync.cli.app import EXIT_ERROR, EXIT_OK, app, fail, load_cli_settings
from envsync.cli.rollback import cli_actor


@app.command("rotate")
def rotate_command(
    key: str = typer.Argument(..., help="The key to give a new value."),
    value_stdin: bool = typer.Option(
        False, "--value-stdin", help="Read the new value from standard input."
    ),
    generate: bool = typer.Option(
        False, "--generate", help="Generate a random value (43 URL-safe characters)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Rotate without asking."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write a new value of KEY to the canonical source, then apply it to every target.

    The source must be a file or HashiCorp Vault. The value is never printed. With
    --value-stdin, one trailing newline (as `echo` adds) is removed from the input.
    """
    if value_stdin == generate:
        fail("give exactly one of --value-stdin and --generate")
    value = _read_stdin_value() if value_stdin else None
    if not yes:
        if value_stdin or not sys.stdin.isatty():
            fail("rotate needs --yes when standard input is not a terminal")
        if not typer.confirm(f"Rotate {key} and apply it to every target?", default=False):
            fail("nothing rotated")

    outcome, hasher = _rotate(key, value, generate)
    _show(outcome, hasher, as_json=as_json)
    raise typer.Exit(EXIT_OK if outcome.ok else EXIT_ERROR)


def _read_stdin_value() -> Any:
    from envsync.dotenv import strip_one_trailing_newline
    from envsync.model import SecretValue

    try:
        text = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError:
        fail("the value on standard input is not UTF-8 text")
    return SecretValue(strip_one_trailing_newline(text))


def _rotate(key: str, value: Any, generate: bool) -> tuple[Any, Any]:
    from envsync.engine import Engine
    from envsync.errors import EnvsyncError
    from envsync.rotate import rotate

    engine = Engine(load_cli_settings())
    try:
        outcome = asyncio.run(
            rotate(engine, key, value=value, generate=generate, actor=cli_actor())
        )
    except EnvsyncError as error:
        fail(str(error))
    return outcome, engine.hasher()


def _show(outcome: Any, hasher: Any, *, as_json: bool) -> None:
    how = "a generated value" if outcome.generated else "the given value"
    if as_json:
        from envsync.report import target_dict

        document = {
            "key": outcome.key,
            "origin": outcome.origin,
            "generated": outcome.generated,
            "run_id": outcome.run_id,
            "ok": outcome.ok,
            "results": [target_dict(result, hasher) for result in outcome.report.results],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return

    from envsync.cli.output import print_report

    typer.echo(f"Rotated {outcome.key} in {outcome.origin} to {how} (run {outcome.run_id}).")
    print_report(outcome.report, hasher, reveal=False, skipped_hint="")
