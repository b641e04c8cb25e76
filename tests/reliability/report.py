"""The figures the reliability suites publish in docs/RELIABILITY.md.

Each suite records what actually happened, per cell or per kill point, in the session's
`ReliabilityReport`. With `--reliability-report PATH` the session writes every table it
filled into PATH, between `<!-- NAME:begin -->` and `<!-- NAME:end -->` marks, and leaves
the rest of the file as written by hand. A table that this session did not fill stays
as it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

COMMAND = "python -m pytest tests/reliability --reliability-report docs/RELIABILITY.md"


@dataclass
class Table:
    """One generated table: a header and rows, in the order the tests recorded them."""

    header: tuple[str, ...]
    rows: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class ReliabilityReport:
    tables: dict[str, Table] = field(default_factory=dict)

    def record(self, table: str, header: tuple[str, ...], row: tuple[str, ...]) -> None:
        """Add or replace one row; the first column names the row."""
        current = self.tables.setdefault(table, Table(header))
        current.rows[row[0]] = row

    def add_counts(
        self,
        table: str,
        header: tuple[str, ...],
        names: tuple[str, ...],
        counts: tuple[int, ...],
        maximum: tuple[bool, ...] = (),
    ) -> None:
        """Add `counts` to the row whose first columns are `names`, starting it at zero.

        A column marked in `maximum` keeps the largest count instead of the sum.
        """
        current = self.tables.setdefault(table, Table(header))
        row_name = " ".join(names)
        previous = current.rows.get(row_name)
        totals = [int(cell) for cell in previous[len(names) :]] if previous else [0] * len(counts)
        keep_max = maximum or (False,) * len(counts)
        combined = [
            max(total, count) if largest else total + count
            for total, count, largest in zip(totals, counts, keep_max, strict=True)
        ]
        current.rows[row_name] = (*names, *(str(value) for value in combined))


def render_table(table: Table, order: Mapping[str, int] | None = None) -> str:
    names = list(table.rows)
    if order is not None:
        names.sort(key=lambda name: order.get(name, len(order)))
    rows = [table.rows[name] for name in names]
    lines = [
        "| " + " | ".join(table.header) + " |",
        "|" + "|".join("---" for _ in table.header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    """Put `body` between the named marks, adding the marks at the end when absent."""
    begin = f"<!-- {name}:begin -->"
    end = f"<!-- {name}:end -->"
    stamp = f"<!-- generated {datetime.now(UTC):%Y-%m-%d} by: {COMMAND} -->"
    block = f"{begin}\n{stamp}\n\n{body}\n\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return f"{text.rstrip()}\n\n{block}\n"


def write_report(
    path: Path, report: ReliabilityReport, orders: Mapping[str, Mapping[str, int]]
) -> list[str]:
    """Write every filled table into `path`; return the names of the tables written."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    written = []
    for name, table in report.tables.items():
        if not table.rows:
            continue
        text = replace_block(text, name, render_table(table, orders.get(name)))
        written.append(name)
    path.write_text(text, encoding="utf-8")
    return written
