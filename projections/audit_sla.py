"""``audit sla``: hand-offs and the time sales took to act on them, per period, team and owner.

A hand-off (``handed_off``) starts the clock; the first ``sales_activity_recorded`` at or after
it stops it. A hand-off breaches its SLA when no activity came within the SLA of the definition
in force at the hand-off (24 hours without one). Hours are business-time hours.
See docs/definitions.md, "SLA". Each hand-off, with its first sales activity and the delay to it,
is a projected row (``rl_handoff``, :mod:`projections.leads`), as known now.

By month or quarter, the database counts and ranks (:func:`monthly_report`): one grouped count
per period and UTC month, then each group's middle and 90th-percentile delays, each one range of
the index on (month, team, owner, delay) per month, cut at the rank; nothing is read per
hand-off. By day or week, :func:`read_sla` reads the period's hand-offs and :func:`sla_report`
groups them here (a short period's lookups would each walk its whole month). Both give the
same rows.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any, NamedTuple

import sqlalchemy as sa

from projections.audit_reconcile import sla_at, sla_in_force
from projections.database import driver_mark
from projections.periods import FOREVER, UTC_ZONE, Calendar, to_us
from projections.ranks import RANKS_PER_QUERY, compound
from projections.report import Report
from projections.schema import Tables
from projections.window import day_of, month_of, next_month

DAY_US = 86_400_000_000
COLUMNS = ["period", "team", "owner", "handoffs", "acted", "breaches", "breach_rate",
           "median_hours", "p90_hours"]  # fmt: skip
MONTHLY = ("month", "quarter")  # the calendars whose periods monthly_report counts and ranks


def _hours(delay: int) -> float:
    """A delay in microseconds as hours (each report computes them alike: the same floats)."""
    return delay / 1_000_000 / 3600


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
    groups: dict[tuple[str, str, str], list[tuple[float | None, bool]]] = defaultdict(list)
    label = _labeller(calendar)
    for at, team, owner, first in handoffs:
        hours = None if first is None else _hours(first - at)
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
    return _report(rows, calendar, span)


def _report(rows: list[list[Any]], calendar: Calendar, span: tuple[datetime, datetime]) -> Report:
    start, end = span
    notes = [f"hand-offs from {start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive), by {calendar.kind}"]
    return Report("SLA: time to first sales activity", COLUMNS, rows, notes)


class _Shape(NamedTuple):
    """The statement of a rank lookup (:func:`_rank_statement`), shared by many lookups."""

    months: int  # UTC months the period meets, one index range each
    teamless: bool  # the group's team is none
    down: bool  # counted from the longest delay
    many: int  # delays read from the offset on
    limited: bool  # each month's range read up to a limit of its own


@dataclass(frozen=True)
class _Group:
    """One (period, team, owner) of :func:`monthly_report`, as the database counted it."""

    label: str
    start: int  # the period cut to the span, [start, end) in microseconds
    end: int
    months: tuple[int, ...]  # the UTC months it meets (their first days)
    team: str | None
    owner: str
    handoffs: int
    acted: int
    breaches: int

    def lookups(self) -> tuple[tuple[bool, int, int], tuple[bool, int, int]]:
        """Where its median's and its p90's delays are: (from the longest, offset, how many).

        The nearest-rank p90 (0-based rank ⌊0.9·n⌋) counted from the longest delay down; the
        median, the middle delay or the two a median averages, from the shortest up.
        """
        n = self.acted
        return (False, (n - 1) // 2, 2 - n % 2), (True, n - 1 - min(n - 1, int(0.9 * n)), 1)


def periods_in(calendar: Calendar, span: tuple[int, int]) -> list[tuple[str, int, int]]:
    """The calendar's periods that meet ``span`` ([start, end), microseconds), each cut to it."""
    start, end = span
    out = []
    first = calendar.bucket(start)
    while (period := calendar.period(first)).start < end:
        out.append((period.label, max(period.start, start), min(period.end, end)))
        first = calendar.following(first)
    return out


def _months(start: int, end: int) -> tuple[int, ...]:
    """The first days of the UTC months that ``[start, end)`` meets."""
    month, last = month_of(day_of(start)), month_of(day_of(end - 1))
    months = [month]
    while month < last:
        month = next_month(month)
        months.append(month)
    return tuple(months)


def monthly_report(
    conn: sa.Connection,
    t: Tables,
    calendar: Calendar,
    span: tuple[datetime, datetime],
    slas: tuple[Sequence[tuple[int, int]], int],
) -> Report:
    """:func:`sla_report`'s rows, counted and ranked by the database (module doc).

    ``slas``: (from, SLA) of each version in the order they take effect, and the SLA before
    any, in microseconds (:func:`~projections.audit_reconcile.sla_in_force`).
    """
    start, end = span
    groups = _counted(conn, t, periods_in(calendar, (to_us(start), to_us(end))), slas)
    acted = [g for g in groups if g.acted]
    found = _delays(conn, t, [(g, *where) for g in acted for where in g.lookups()])
    rows, i = [], 0
    for g in groups:
        median: float | None = None
        p90: float | None = None
        if g.acted:
            # as statistics.median: the middle one, or the mean of the two middle ones
            middle = [_hours(d) for d in found[i]]
            median = round(middle[0] if len(middle) == 1 else (middle[0] + middle[1]) / 2, 1)
            p90 = round(_hours(found[i + 1][0]), 1)
            i += 2
        rows.append([
            g.label, g.team or "(none)", g.owner, g.handoffs, g.acted, g.breaches,
            g.breaches / g.handoffs, median, p90,
        ])  # fmt: skip
    rows.sort(key=lambda row: row[:3])
    return _report(rows, calendar, span)


def _counted(
    conn: sa.Connection,
    t: Tables,
    periods: list[tuple[str, int, int]],
    slas: tuple[Sequence[tuple[int, int]], int],
) -> list[_Group]:
    """Each period's hand-offs, acted ones and breaches per (team, owner).

    One query per UTC month the period meets: a list of months would be several ranges of the
    index, which PostgreSQL sorts to group (a quarter at 10M: 31 ms against 4 for a month).

    A breach is a hand-off not acted on, or acted on later than its SLA: the database counts
    the second kind, against the one SLA in force throughout the period when there is one,
    else the SLA in force at each hand-off.
    """
    h = t["handoff"].c

    def query(sla: sa.ColumnElement[int]) -> sa.Select[Any]:
        return (
            sa.select(
                h.team,
                h.to_owner,
                sa.func.count(),
                sa.func.count(h.delay_us),
                sa.func.count(sa.case((h.delay_us > sla, 1))),
            )
            .where(
                h.known_to == FOREVER,
                h.month == sa.bindparam("month"),
                # at_us + 0: the range must not lead the database to the at_us index (then
                # sorting the groups' hand-offs); a month's range of the delay index holds them
                # in order
                h.at_us + 0 >= sa.bindparam("start"),
                h.at_us + 0 < sa.bindparam("end"),
            )
            .group_by(h.team, h.to_owner)
        )

    versions, default = slas
    constant, changing = query(sa.bindparam("sla")), query(sla_in_force(h.at_us, *slas))
    groups = []
    for label, start, end in periods:
        months = _months(start, end)
        sla = _sla_throughout(versions, default, start, end)
        statement = changing if sla is None else constant
        sums: dict[tuple[str | None, str], list[int]] = {}
        for month in months:  # one range of the index each, in (team, owner) order
            values = {"month": month, "start": start, "end": end, "sla": sla}
            for team, owner, n, acted, late in conn.execute(statement, values):
                kept = sums.setdefault((team, owner), [0, 0, 0])
                kept[0] += n
                kept[1] += acted
                kept[2] += n - acted + late
        groups += [
            _Group(label, start, end, months, team, owner, *counts)
            for (team, owner), counts in sums.items()
        ]
    return groups


def _sla_throughout(
    versions: Sequence[tuple[int, int]], default: int, start: int, end: int
) -> int | None:
    """The SLA in force throughout ``[start, end)``; None if a version takes effect inside."""
    if any(start < since < end for since, _ in versions):
        return None
    return sla_at(start, versions, default)


def _delays(
    conn: sa.Connection, t: Tables, lookups: list[tuple[_Group, bool, int, int]]
) -> list[list[int]]:
    """The acted delays of each lookup (group, from the longest, offset, how many), in µs.

    Each is one range of the index on (known_to, month, team, owner, delay, at) per UTC month
    the group's period meets, in delay order, cut at the offset (the p90 walks a tenth of its
    group, from the longest delay down). Over several months (a quarter, or a month in another
    timezone than UTC) SQLite merges the months' ranges; PostgreSQL, which appends and sorts
    them, reads each month's range up to offset + how many delays. As velocity's ranks, the
    statements are written once and run many to a query (:func:`~projections.ranks.compound`).
    """
    postgresql = conn.dialect.name == "postgresql"
    arms: dict[_Shape, list[list[object]]] = defaultdict(list)
    for i, (g, down, offset, many) in enumerate(lookups):
        team = [] if g.team is None else [g.team]
        ranges = [[FOREVER, month, *team, g.owner, g.start, g.end] for month in g.months]
        limited = postgresql and len(g.months) > 1
        if limited:
            ranges = [[*values, offset + many] for values in ranges]
        shape = _Shape(len(g.months), g.team is None, down, many, limited)
        arms[shape].append([i, *chain(*ranges), offset])
    found: list[list[int]] = [[] for _ in lookups]
    for shape, chosen in arms.items():
        statement = _rank_statement(conn, t["handoff"], shape)
        for i, delay in compound(conn, statement, chosen, RANKS_PER_QUERY):
            found[i].append(int(delay))
    return found


def _rank_statement(conn: sa.Connection, table: sa.Table, shape: _Shape) -> str:
    """One lookup of :func:`_delays`: ``many`` acted delays of a group from an offset.

    From its shortest delay up, or from its longest ``down``; the group's hand-offs in
    ``months`` UTC months, each one range of the index (a list of months, ``IN``, was no range
    for PostgreSQL when its values came from the lookup's parameters: it read every month of
    the owner's), each read up to a limit of its own if ``limited``.
    """
    months, teamless, down, many, limited = shape
    dialect = conn.dialect
    mark = driver_mark(dialect)
    name = dialect.identifier_preparer.format_table(table)
    month = dialect.identifier_preparer.quote("month")
    team = "IS NULL" if teamless else f"= {mark}"
    order = f"ORDER BY d{' DESC' if down else ''}"
    one = (
        f"SELECT delay_us AS d FROM {name} "  # noqa: S608 (our names)
        f"WHERE known_to = {mark} AND {month} = {mark} AND team {team} AND to_owner = {mark} "
        f"AND delay_us >= 0 AND at_us + 0 >= {mark} AND at_us + 0 < {mark}"  # see _counted
    )
    cut = f"{order} LIMIT {many} OFFSET {mark}"
    if months == 1:
        return f"SELECT CAST({mark} AS INTEGER) AS i, d FROM ({one} {cut}) AS r"  # noqa: S608
    if limited:  # PostgreSQL: else it reads and sorts every delay of the ranges
        ranges = " UNION ALL ".join(
            f"SELECT d FROM ({one} {order} LIMIT {mark}) AS m{n}"  # noqa: S608
            for n in range(months)
        )
    else:  # SQLite merges the ranges, each in delay order, and stops at the offset
        ranges = " UNION ALL ".join([one] * months)
    return f"SELECT CAST({mark} AS INTEGER) AS i, d FROM ({ranges}) AS u {cut}"  # noqa: S608
