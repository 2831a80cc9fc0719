"""The shape every report takes: a titled table of typed rows, plus notes.

Reports are computed by the projections package and rendered by the CLI (table, CSV or JSON);
keeping the values typed (Decimal, date, datetime, int) lets each format render them properly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    """A report: ``columns`` name the values in each row of ``rows``."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name (the JSON form)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]
