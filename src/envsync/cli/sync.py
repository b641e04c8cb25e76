"""`envsync plan` and `envsync apply`."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import typer

from envsync.cli.app import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    app,
    fail,
    load_cli_settings,
    stdout_is_terminal,
)

TargetOption = typer.Option(
    [], "--target", "-t", help="A provider (render, netlify) or a target name; repeatable."
)
JsonOption = typer.Option(False, "--json", help="Print the result as JSON, values masked.")
SourceOption = typer.Option(
    None, "--source", help="Canonical source: file, env, vault or dashboard."
)
FileOption = typer.Option(
    None, "--file", "-f", help="The canonical .env file; - reads standard input."
)
RevealOption = typer.Option(
    False, "--reveal", help="Show plain values; only when standard output is a terminal."
)


@app.command()
def plan(
    target: list[str] = TargetOption,
    as_json: bool = JsonOption,
    source: str | None = SourceOption,
    file: str | None = FileOption,
    reveal: bool = RevealOption,
    detailed_exitcode: bool = typer.Option(
        False, "--detailed-exitcode", help="Exit 2 when changes are pending, 0 when none are."
    ),
) -> None:
    """Show what apply would change on every target, without writing anything."""
    _check_reveal(reveal, as_json)
    report, engine = _run("dry-run", target, source, file, trigger="cli")
    _show(report, engine, as_json=as_json, reveal=reveal)
    if not report.ok:
        raise typer.Exit(EXIT_ERROR)
    if detailed_exitcode and report.has_changes:
        raise typer.Exit(EXIT_CHANGES)
    raise typer.Exit(EXIT_OK)


@app.command()
def apply(
    target: list[str] = TargetOption,
    as_json: bool = JsonOption,
    source: str | None = SourceOption,
    file: str | None = FileOption,
    reveal: bool = RevealOption,
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking for confirmation."),
    force: bool = typer.Option(False, "--force", help="Make deletions over ENVSYNC_MAX_DELETIONS."),
    rewrite_secrets: bool = typer.Option(
        False, "--rewrite-secrets", help="Write Netlify secrets that were changed on the platform."
    ),
    convert_secrets: bool = typer.Option(
        False, "--convert-secrets", help="Turn plain Netlify variables into secrets (irreversible)."
    ),
) -> None:
    """Make every target equal to the canonical set (prompts for confirmation unless --yes)."""
    _check_reveal(reveal, as_json)
    flags = {"force": force, "rewrite_secrets": rewrite_secrets, "convert_secrets": convert_secrets}
    if not yes:
        _confirm_plan(target, source, file, reveal, flags)

    report, engine = _run("enforce", target, source, file, trigger="cli", **flags)
    _show(report, engine, as_json=as_json, reveal=reveal)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_ERROR)


def _confirm_plan(
    target: list[str], source: str | None, file: str | None, reveal: bool, flags: dict[str, bool]
) -> None:
    """Show the plan and ask; in a non-interactive shell, refuse without --yes."""
    if not sys.stdin.isatty():
        fail("apply needs --yes when standard input is not a terminal")
    if file == "-":
        fail("apply reads the canonical file from standard input only with --yes")
    report, engine = _run("dry-run", target, source, file, trigger="cli", **flags)
    _show(report, engine, as_json=False, reveal=reveal)
    if not report.has_changes:
        typer.echo("Nothing to apply.")
        raise typer.Exit(EXIT_OK if report.ok else EXIT_ERROR)
    if not typer.confirm("Apply these changes?", default=False):
        fail("nothing applied")


def _check_reveal(reveal: bool, as_json: bool) -> None:
    if not reveal:
        return
    if as_json:
        fail("--reveal cannot be combined with --json: JSON output always masks values")
    if not stdout_is_terminal():
        fail("--reveal works only when standard output is a terminal")


def _run(
    mode: str,
    target: list[str],
    source: str | None,
    file: str | None,
    *,
    trigger: str,
    force: bool = False,
    rewrite_secrets: bool = False,
    convert_secrets: bool = False,
) -> tuple[Any, Any]:
    from envsync.engine import Engine, RunRequest
    from envsync.errors import EnvsyncError
    from envsync.model import RunMode
    from envsync.tickets import TicketHook

    settings = load_cli_settings()
    engine = Engine(settings, stdin=sys.stdin.buffer if file == "-" else None)
    # A failed CLI run opens a ticket in the same store the service reads, and a clean one
    # closes it, so `envsync tickets` shows what CI runs ran into too.
    engine.result_hooks.append(TicketHook(engine.store()))
    if mode == "enforce" and sys.stderr.isatty():
        engine.write_hooks.append(_progress_line())
    request = RunRequest(
        mode=RunMode(mode),
        targets=tuple(target),
        source=source,
        file=file,
        trigger=trigger,
        lock_timeout_s=None,
        force=force,
        rewrite_secrets=rewrite_secrets,
        convert_secrets=convert_secrets,
    )
    try:
        report = asyncio.run(engine.run(request))
    except EnvsyncError as error:
        fail(str(error))
    return report, engine


def _progress_line() -> Any:
    """A hook that keeps one line on standard error counting the writes of a long apply."""
    from rich.console import Console

    console = Console(stderr=True)
    written = 0

    def show(target: Any, change: Any) -> None:
        nonlocal written
        written += 1
        console.print(
            f"  written {written}: {target.name} {change.key} ({change.op.value})",
            end="\r",
            highlight=False,
            soft_wrap=True,
        )

    return show


def _show(report: Any, engine: Any, *, as_json: bool, reveal: bool) -> None:
    from envsync.cli.output import print_json, print_report

    if as_json:
        print_json(report, engine.hasher())
        return
    hint = (
        "the include and exclude prefixes decide which keys are synced: "
        "ENVSYNC_INCLUDE_PREFIXES and ENVSYNC_EXCLUDE_PREFIXES, or include_prefixes and "
        "exclude_prefixes of the target in envsync.toml; an empty include list syncs every "
        "key not excluded"
    )
    print_report(report, engine.hasher(), reveal=reveal, skipped_hint=hint)
