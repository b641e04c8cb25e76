"""Plan and result output of the CLI: Rich tables on a terminal, JSON with `--json`."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from envsync.engine import RunReport
from envsync.model import Op, TargetResult
from envsync.report import Fingerprinter, masked, target_dict

OP_STYLES = {Op.CREATE: "green", Op.UPDATE: "yellow", Op.DELETE: "red"}


def print_json(report: RunReport, hasher: Fingerprinter) -> None:
    document = {
        "run_id": report.run_id,
        "mode": report.mode.value,
        "ok": report.ok,
        "canonical": {"origin": report.canonical_origin, "keys": report.canonical_size},
        "warnings": list(report.warnings),
        "results": [target_dict(result, hasher) for result in report.results],
    }
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def print_report(
    report: RunReport, hasher: Fingerprinter, *, reveal: bool, skipped_hint: str
) -> None:
    from rich.console import Console

    # A CI log is not a terminal: Rich would wrap at 80 columns and split key names, so that
    # `grep KEY` over the log misses them.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    for result in report.results:
        _print_target(console, result, hasher, reveal=reveal, skipped_hint=skipped_hint)
    _print_totals(console, report)


def _print_target(
    console: Any, result: TargetResult, hasher: Fingerprinter, *, reveal: bool, skipped_hint: str
) -> None:
    from rich.table import Table

    plan = result.plan
    console.print()
    console.print(f"[bold]{result.target.name}[/] ({result.target.kind} {result.target.id})")
    if plan is None:
        for error in result.errors:
            console.print(f"  [red]error:[/] {error}")
        return

    uses_contexts = result.target.provider == "netlify"
    pending = plan.pending
    if pending:
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("key", overflow="fold")
        if uses_contexts:
            table.add_column("context", overflow="fold")
        table.add_column("op", no_wrap=True)
        table.add_column("old value", no_wrap=True)
        table.add_column("new value", no_wrap=True)
        for change in pending:
            style = OP_STYLES.get(change.op, "")
            row = [change.key]
            if uses_contexts:
                row.append(change.context or "")
            row += [
                f"[{style}]{change.op.value}[/]",
                masked(change.old, change.old_hidden, hasher, reveal) or "-",
                masked(change.new, False, hasher, reveal) or "-",
            ]
            table.add_row(*row)
        console.print(table)

    unchanged = plan.count(Op.NOOP)
    summary = (
        f"  {_count(len(pending), 'change')}, {unchanged} unchanged, "
        f"{plan.unmanaged} unmanaged left alone"
    )
    if result.applied:
        summary += f"; {len(result.written)} written"
    console.print(summary)
    if plan.skipped_by_filters:
        shown = ", ".join(plan.filtered_keys[:5])
        more = f" and {plan.skipped_by_filters - 5} more" if plan.skipped_by_filters > 5 else ""
        console.print(
            f"  {_count(plan.skipped_by_filters, 'key')} of the source "
            f"{'was' if plan.skipped_by_filters == 1 else 'were'} skipped by the filters "
            f"({shown}{more}; {skipped_hint})"
        )
    _print_section(console, "rejected", [(r.key, r.reason) for r in plan.rejected], "red")
    if plan.rejected:
        console.print(
            "    (to leave a key out on purpose, add its prefix to ENVSYNC_EXCLUDE_PREFIXES)"
        )
    _print_section(
        console,
        "conflicts",
        [(_slot_name(c.key, c.context), c.reason) for c in plan.conflicts],
        "red",
    )
    _print_section(console, "warnings", [("", w.message) for w in plan.warnings], "yellow")
    for warning in result.warnings:
        console.print(f"  [yellow]note:[/] {warning}")
    for error in result.errors:
        console.print(f"  [red]error:[/] {error}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _slot_name(key: str, context: str | None) -> str:
    return f"{key} ({context})" if context else key


def _print_section(console: Any, title: str, rows: Sequence[tuple[str, str]], style: str) -> None:
    if not rows:
        return
    console.print(f"  [{style}]{title}:[/]")
    for name, reason in rows:
        console.print(f"    {name + ': ' if name else ''}{reason}")


def _print_totals(console: Any, report: RunReport) -> None:
    counts = {op: 0 for op in (Op.CREATE, Op.UPDATE, Op.DELETE)}
    for result in report.results:
        if result.plan is not None:
            for op in counts:
                counts[op] += result.plan.count(op)
    targets = _count(len(report.results), "target")
    console.print()
    if report.mode.value == "enforce":
        console.print(
            f"Applied: {counts[Op.CREATE]} created, {counts[Op.UPDATE]} updated, "
            f"{counts[Op.DELETE]} deleted across {targets}."
        )
    else:
        console.print(
            f"Plan: {counts[Op.CREATE]} to create, {counts[Op.UPDATE]} to update, "
            f"{counts[Op.DELETE]} to delete across {targets}."
        )
    if not report.ok:
        console.print("[red]Some targets have errors, rejected keys or conflicts.[/]")
