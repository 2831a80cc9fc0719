"""The two-timeline view: a report as known at a past ledger time next to as known now.

Rows are matched on their non-numeric columns (period, stage, group...); every numeric column
becomes ``<name>_then``, ``<name>_now`` and ``<name>_diff``. Reports without numbers (anomalies)
get a ``status`` column instead: ``both``, ``only_then`` or ``only_now``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from projections.report import Report


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _diff(then: Any, now: Any) -> Any:
    if then is None or now is None:
        return None
    return now - then


def compare(then: Report, now: Report, label: str) -> Report:
    """Merge two runs of the same report into then / now / difference."""
    rows = then.rows + now.rows
    numeric = [
        i
        for i, _ in enumerate(now.columns)
        if any(_numeric(r[i]) for r in rows) and all(r[i] is None or _numeric(r[i]) for r in rows)
    ]
    keys = [i for i in range(len(now.columns)) if i not in numeric]

    def key(row: list[Any]) -> tuple[Any, ...]:
        return tuple(row[i] for i in keys)

    before = {key(r): r for r in then.rows}
    after = {key(r): r for r in now.rows}
    rank = {k: i for i, k in enumerate([*after, *(k for k in before if k not in after)])}
    order = sorted(rank, key=lambda k: (str(k[0]), rank[k]))  # by period, each run's row order
    columns = [now.columns[i] for i in keys]
    if numeric:
        for i in numeric:
            name = now.columns[i]
            columns += [f"{name}_then", f"{name}_now", f"{name}_diff"]
    else:
        columns.append("status")
    report = Report(
        f"{now.title}: {label} vs now",
        columns,
        notes=[f"now: {n}" for n in now.notes] + [f"then: {n}" for n in then.notes],
    )
    for k in order:
        old, new = before.get(k), after.get(k)
        row = list(k)
        if numeric:
            for i in numeric:
                a = old[i] if old else (0 if new and new[i] is not None else None)
                b = new[i] if new else (0 if old and old[i] is not None else None)
                row += [a, b, _diff(a, b)]
        else:
            row.append("both" if old and new else "only_then" if old else "only_now")
        report.rows.append(row)
    return report
