"""Render reports for people (a terminal table) and machines (CSV, JSON)."""

from __future__ import annotations

import csv
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from ledger.codec import dumps
from projections.report import Report

FORMATS = ("table", "csv", "json")


PERCENT_WORDS = ("rate", "share", "percent")


def _cell(value: Any, column: str = "") -> str:  # noqa: PLR0911 - one return per value type
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        percent = any(word in column.lower() for word in PERCENT_WORDS)
        return f"{value:.1%}" if percent else f"{value:,.1f}"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(report: Report, fmt: str = "table", out: IO[str] | None = None) -> None:
    """Write ``report`` to ``out`` (stdout by default) as a table, CSV or JSON."""
    out = out or sys.stdout
    if fmt == "json":
        doc = {"title": report.title, "rows": report.records(), "notes": report.notes}
        out.write(dumps(doc).decode() + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(report.columns)
        for row in report.rows:
            writer.writerow(["" if v is None else str(v) for v in row])
    else:
        table = Table(title=report.title, title_justify="left", header_style="bold")
        for index, name in enumerate(report.columns):
            values = [row[index] for row in report.rows if row[index] is not None]
            numeric = bool(values) and all(
                isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in values
            )
            table.add_column(name, justify="right" if numeric else "left")
        for row in report.rows:
            table.add_row(*(_cell(v, c) for v, c in zip(row, report.columns, strict=True)))
        terminal = Console()
        # A terminal gets its own width; a pipe or file gets room for the widest report.
        console = Console(file=out, width=terminal.width if terminal.is_terminal else 160)
        console.print(table)
        for note in report.notes:
            console.print(f"[dim]{note}[/dim]")
