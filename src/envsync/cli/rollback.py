"""`envsync rollback RUN_ID`: restore what one run changed, after showing the plan."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from typing import Any

import typer

from envsync.cli.app import EXIT_ERROR, EXIT_OK, app, fail, load_cli_settings


@app.command("rollback")
def rollback_command(
    run_id: str = typer.Argument(..., help="The run to roll back, as `envsync runs` lists it."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Roll back without asking."),
    force: bool = typer.Option(
        False, "--force", help="Restore keys changed since the run, and delete over the limit."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Restore the previous values of the keys a run changed, and delete the keys it created.

    The plan is shown first, and a prompt confirms it, unless --yes is given. A key changed
    since the run is a conflict and is left alone unless --force.
    """
    if not yes:
        planned = _rollback(run_id, confirm=False, force=force)
        _show(planned, as_json=as_json)
        if planned.report is None or not planned.report.has_changes:
            typer.echo("Nothing to roll back.", err=as_json)
            raise typer.Exit(EXIT_OK if planned.ok else EXIT_ERROR)
        if not sys.stdin.isatty():
            fail("rollback needs --yes when standard input is not a terminal")
        if not typer.confirm("Roll back these changes?", default=False):
            fail("nothing rolled back")

    done = _rollback(run_id, confirm=True, force=force)
    _show(done, as_json=as_json)
    raise typer.Exit(EXIT_OK if done.ok else EXIT_ERROR)


def _rollback(run_id: str, *, confirm: bool, force: bool) -> Any:
    from envsync.engine import Engine
    from envsync.errors import EnvsyncError
    from envsync.rollback import rollback

    engine = Engine(load_cli_settings())
    try:
        return asyncio.run(
            rollback(engine, run_id, confirm=confirm, force=force, actor=cli_actor())
        )
    except EnvsyncError as error:
        fail(str(error))


def _show(outcome: Any, *, as_json: bool) -> None:
    if as_json:
        _print_json(outcome)
        return

    from envsync.cli.output import print_report

    if outcome.message:
        typer.echo(outcome.message)
    if outcome.report is not None:
        hasher = _hasher()
        print_report(outcome.report, hasher, reveal=False, skipped_hint="")
    for item in outcome.skipped:
        context = f" ({item.context})" if item.context else ""
        typer.echo(f"skipped {item.target} {item.key}{context}: {item.reason}")


def _print_json(outcome: Any) -> None:
    from envsync.report import target_dict

    results = []
    if outcome.report is not None:
        hasher = _hasher()
        results = [target_dict(result, hasher) for result in outcome.report.results]
    document = {
        "run_id": outcome.run_id,
        "rollback_run_id": outcome.rollback_run_id,
        "applied": outcome.applied,
        "ok": outcome.ok,
        "message": outcome.message,
        "skipped": [
            {"target": s.target, "key": s.key, "context": s.context, "reason": s.reason}
            for s in outcome.skipped
        ],
        "results": results,
    }
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _hasher() -> Any:
    from envsync.engine import Engine

    return Engine(load_cli_settings()).hasher()


def cli_actor() -> str:
    """Return the actor recorded for runs started from this terminal: `cli:<user>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        # getpass finds no user name in a container without a passwd entry.
        return "cli"
