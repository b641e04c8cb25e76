"""`envsync runs`, `envsync runs show RUN_ID` and `envsync tickets`: the run history and the
diagnostic tickets, from the store at ENVSYNC_DATABASE_URL."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from envsync.cli.app import EXIT_OK, app, fail, load_cli_settings
from envsync.report import iso_time, run_dict, ticket_dict

runs_app = typer.Typer(
    name="runs",
    help="List recent runs, or show one with `envsync runs show RUN_ID`.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(runs_app)


@runs_app.callback()
def runs(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000, help="How many runs."),
) -> None:
    """List recent runs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    found = _store().list_runs(limit=limit)
    if as_json:
        _print_json([run_dict(run) for run in found])
        raise typer.Exit(EXIT_OK)
    _print_runs(found)
    raise typer.Exit(EXIT_OK)


@runs_app.command("show")
def show(
    run_id: str = typer.Argument(..., help="The run's id, as `envsync runs` lists it."),
    as_json: bool = typer.Option(False, "--json", help="Print the run as JSON."),
) -> None:
    """Show one run: each target's counts, the keys it wrote and its errors."""
    run = _store().get_run(run_id)
    if run is None:
        fail(f"run {run_id} not found; `envsync runs` lists the runs and their ids")
    if as_json:
        _print_json(run_dict(run))
        raise typer.Exit(EXIT_OK)
    _print_run(run)
    raise typer.Exit(EXIT_OK)


@app.command()
def tickets(
    as_json: bool = typer.Option(False, "--json", help="Print the tickets as JSON."),
    show_all: bool = typer.Option(False, "--all", help="Include closed tickets."),
    close: str | None = typer.Option(
        None,
        "--close",
        metavar="TARGET",
        help="Close every open ticket of TARGET, such as one that no longer exists.",
    ),
) -> None:
    """List open tickets (drift and provider failures), with what to do about each."""
    if close is not None:
        closed = _store().close_tickets(close)
        typer.echo(f"closed {closed} open ticket{'' if closed == 1 else 's'} of {close}")
        raise typer.Exit(EXIT_OK)
    found = _store().list_tickets(open_only=not show_all)
    if as_json:
        _print_json([ticket_dict(ticket) for ticket in found])
        raise typer.Exit(EXIT_OK)
    _print_tickets(found, show_all)
    raise typer.Exit(EXIT_OK)


# Terminal output.


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _when(moment: Any) -> str:
    return iso_time(moment, "seconds") or "-"


def _print_runs(found: list[Any]) -> None:
    """Print one line per run, with the targets last, so no id is cut short on a narrow
    terminal and the lines can be read by grep and cut."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not found:
        console.print("No runs recorded yet.")
        return
    for run in found:
        written = sum(len(target.written) for target in run.targets)
        errors = sum(len(target.errors) for target in run.targets)
        targets = ", ".join(target.target for target in run.targets) or "-"
        console.print(
            f"{run.id}  {_when(run.started_at)}  {run.trigger.value:<9} {run.mode.value:<8} "
            f"{_status(run.status.value)}  written {written}, errors {errors}  {targets}"
        )


def _status(status: str) -> str:
    styles = {"succeeded": "green", "failed": "red", "running": "yellow"}
    style = styles.get(status)
    return f"[{style}]{status}[/]" if style else status


def _print_run(run: Any) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    actor = f" by {run.actor}" if run.actor else ""
    console.print(
        f"[bold]run {run.id}[/]: {run.mode.value} ({run.trigger.value}{actor}), "
        f"{_status(run.status.value)}"
    )
    console.print(f"  started {_when(run.started_at)}, ended {_when(run.ended_at)}")
    for target in run.targets:
        counts = target.counts
        console.print()
        console.print(f"[bold]{target.target}[/] ({target.ledger_id})")
        console.print(
            f"  planned: {counts.create} create, {counts.update} update, {counts.delete} "
            f"delete, {counts.noop} unchanged, {counts.rejected} rejected, "
            f"{counts.conflicts} conflicts"
        )
        for change in target.written:
            context = f" ({change.context})" if change.context else ""
            console.print(f"  written: {change.op.value} {change.key}{context}")
        for error in target.errors:
            console.print(f"  [red]error:[/] {error}")


def _print_tickets(found: list[Any], show_all: bool) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    if not found:
        console.print("No tickets." if show_all else "No open tickets.")
        return
    for ticket in found:
        state = f"closed {_when(ticket.closed)}" if ticket.closed else "[red]open[/]"
        console.print(
            f"[bold]{ticket.target}[/] {ticket.cause} ({state}; seen {_times(ticket.count)}, "
            f"last {_when(ticket.last_seen)}; ticket {ticket.id})"
        )
        console.print(f"  {ticket.diagnosis}")
        console.print(f"  [bold]next:[/] {ticket.next_step}")
        console.print()


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _store() -> Any:
    from envsync.errors import EnvsyncError
    from envsync.store import open_store

    settings = load_cli_settings()
    try:
        return open_store(settings)
    except EnvsyncError as error:
        fail(str(error))
