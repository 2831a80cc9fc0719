"""``audit sla``: hand-offs and the time sales took to act on them, per period, team and owner.

A hand-off (``handed_off``) starts the clock; the first ``sales_activity_recorded`` at or after
it stops it. A hand-off breaches its SLA when no activity came within the SLA of the definition
in force at the hand-off (24 hours without one). Hours are business-time hours.
See docs/definitions.md, "SLA". Each hand-off, with its first sales activity, is a projected row
(``rl_handoff``, :mod:`projections.leads`): :func:`read_sla` reads the period's, as known now.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from projections.periods import FOREVER, UTC_ZONE, Calendar
from projections.report import Report
from projections.schema import Tables

DAY_US = 86_400_000_000
COLUMNS = ["period", "team", "owner", "handoffs", "acted", "breaches", "breach_rate",
           "median_hours", "p90_hours"]  # fmt: skip


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def _labeller(calendar: Calendar) -> Callable[[int], str]:
    """The name of the period holding an instant (microseconds); in UTC, worked out once a day."""
    if calendar.tz != UTC_ZONE:
        return lambda at: calendar.label(calendar.bucket(at))
    names: dict[int, str] = {}

    def label(at: int) -> str:
        day = at // DAY_US
        name = names.get(day)
        if name is None:
            name = names[day] = calendar.label(calendar.bucket(at))
        return name

    return label


def read_sla(conn: sa.Connection, t: Tables, span: tuple[int, int]) -> list[Any]:
    """The period's hand-offs (as known now): rows of (at_us, team, to_owner, acted_us)."""
    start, end = span
    handoff = t["handoff"]
    query = sa.select(
        handoff.c.at_us, handoff.c.team, handoff.c.to_owner, handoff.c.acted_us
    ).where(handoff.c.known_to == FOREVER, handoff.c.at_us >= start, handoff.c.at_us < end)
    return list(conn.execute(query))


def sla_report(
    handoffs: Iterable[tuple[int, str | None, str, int | None]],
    calendar: Calendar,
    span: tuple[datetime, datetime],
    sla_of: Callable[[int], int],
) -> Report:
    """``handoffs`` (at_us, team, to_owner, acted_us) grouped by period, team and owner.

    ``sla_of`` gives the SLA of a hand-off at a time, both in microseconds.
    """
    start, end = span
    groups: dict[tuple[str, str, str], list[tuple[float | None, bool]]] = defaultdict(list)
    label = _labeller(calendar)
    for at, team, owner, first in handoffs:
        # hours as (first - at).total_seconds() / 3600 gives them
        hours = None if first is None else (first - at) / 1_000_000 / 3600
        breach = first is None or first - at > sla_of(at)
        period = label(at)
        groups[(period, team or "(none)", owner)].append((hours, breach))
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
