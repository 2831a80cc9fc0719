"""``audit sla``: hand-offs and the time sales took to act on them, per period, team and owner.

A hand-off (``handed_off``) starts the clock; the first ``sales_activity_recorded`` at or after
it stops it. A hand-off breaches its SLA when no activity came within the SLA of the definition
in force at the hand-off (24 hours without one). Hours are business-time hours.
See docs/definitions.md, "SLA".
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from ledger.events import Fact
from projections.periods import Calendar, to_us
from projections.report import Report

COLUMNS = ["period", "team", "owner", "handoffs", "acted", "breaches", "breach_rate",
           "median_hours", "p90_hours"]  # fmt: skip


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def sla_report(
    leads: Iterable[tuple[str, list[Fact]]],
    calendar: Calendar,
    span: tuple[datetime, datetime],
    sla_of: Callable[[datetime], timedelta],
) -> Report:
    """Hand-offs in ``span`` grouped by period, team and owner."""
    start, end = span
    groups: dict[tuple[str, str, str], list[tuple[float | None, bool]]] = defaultdict(list)
    for _lead, facts in leads:
        activities = [f.occurred_at for f in facts if f.type_name == "sales_activity_recorded"]
        for fact in facts:
            if fact.type_name != "handed_off" or not start <= fact.occurred_at < end:
                continue
            first = min((t for t in activities if t >= fact.occurred_at), default=None)
            hours = None if first is None else (first - fact.occurred_at).total_seconds() / 3600
            breach = first is None or first - fact.occurred_at > sla_of(fact.occurred_at)
            period = calendar.label(calendar.bucket(to_us(fact.occurred_at)))
            team = getattr(fact, "team", None) or "(none)"
            groups[(period, team, fact.to_owner)].append((hours, breach))  # type: ignore[attr-defined]
    rows = []
    for (period, team, owner), items in sorted(groups.items()):
        acted = [h for h, _ in items if h is not None]
        breaches = sum(b for _, b in items)
        rows.append([
            period, team, owner, len(items), len(acted), breaches, breaches / len(items),
            round(statistics.median(acted), 1) if acted else None,
            round(_p90(acted), 1) if acted else None,
        ])  # fmt: skip
    notes = [f"hand-offs from {start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive), by {calendar.kind}"]
    return Report("SLA: time to first sales activity", COLUMNS, rows, notes)
