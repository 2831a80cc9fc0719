"""``audit sla``: hand-offs and the time sales took to act on them, per period, team and owner.

A hand-off (``handed_off``) starts the clock; the first ``sales_activity_recorded`` at or after
it stops it. A hand-off breaches its SLA when no activity came within the SLA of the definition
in force at the hand-off (24 hours without one). Hours are business-time hours.
See docs/definitions.md, "SLA". Each hand-off, with its first sales activity and the delay to it,
is a projected row (``rl_handoff``, :mod:`projections.leads`), as known now.

The database counts and ranks (:func:`counted_report`): each UTC month's hand-offs counted per
team, owner and period in one query, then each group's middle and 90th-percentile delays, each
a few ranges of an index in delay order, cut at the rank; nothing is read per hand-off. Month
and quarter groups are ranked in the index on (month, team, owner, delay), day and week groups
in the one on (day, team, owner, delay): a group's ranges are the UTC months or days its period
meets, so a lookup never walks more than a day outside its period.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any, NamedTuple, cast

import sqlalchemy as sa

from projections.audit_reconcile import sla_at, sla_in_force
from projections.database import driver_mark
from projections.periods import FOREVER, UTC_ZONE, Calendar, to_us
from projections.ranks import RANKS_PER_QUERY, compound
from projections.report import Report
from projections.schema import Tables
from projections.window import DAY_US, day_of, month_of, next_month

COLUMNS = ["period", "team", "owner", "handoffs", "acted", "breaches", "breach_rate",
           "median_hours", "p90_hours"]  # fmt: skip
NOWHERE = -(2**31)  # no UTC month or day: an empty range of either index
MONTHLY = ("month", "quarter")  # the calendars whose groups are ranked in UTC months, not days


def _hours(delay: int) -> float:
    """A delay in microseconds as hours."""
    return delay / 1_000_000 / 3600


def _report(rows: list[list[Any]], calendar: Calendar, span: tuple[datetime, datetime]) -> Report:
    start, end = span
    notes = [f"hand-offs from {start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive), by {calendar.kind}"]
    return Report("SLA: time to first sales activity", COLUMNS, rows, notes)


class _Shape(NamedTuple):
    """The statement of a rank lookup (:func:`_rank_statement`), shared by many lookups."""

    column: str  # the UTC bucket the index is led by: month or day
    ranges: int  # buckets the period meets, one index range each
    teamless: bool  # the group's team is none
    down: bool  # counted from the longest delay
    many: int  # delays read from the offset on
    limited: bool  # each bucket's range read up to a limit of its own


@dataclass(frozen=True)
class _Group:
    """One (period, team, owner) of :func:`counted_report`, as the database counted it."""

    label: str
    start: int  # the period cut to the span, [start, end) in microseconds
    end: int
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


def _months(start: int, end: int) -> list[int]:
    """The first days of the UTC months that ``[start, end)`` meets."""
    month, last = month_of(day_of(start)), month_of(day_of(end - 1))
    months = [month]
    while month < last:
        month = next_month(month)
        months.append(month)
    return months


def _buckets(kind: str, start: int, end: int) -> tuple[str, list[int]]:
    """The index a group of a ``kind`` period is ranked in, and the buckets ``[start, end)`` meets.

    The UTC months for months and quarters, the UTC days for days and weeks.
    """
    if kind in MONTHLY:
        return "month", _months(start, end)
    return "day", list(range(day_of(start), day_of(end - 1) + 1))


def counted_report(
    conn: sa.Connection,
    t: Tables,
    calendar: Calendar,
    span: tuple[datetime, datetime],
    slas: tuple[Sequence[tuple[int, int]], int],
) -> Report:
    """Hand-offs, acted ones, breaches and delays per period, team and owner (module doc).

    ``slas``: (from, SLA) of each version in the order they take effect, and the SLA before
    any, in microseconds (:func:`~projections.audit_reconcile.sla_in_force`).
    """
    start, end = span
    groups = _counted(conn, t, calendar, periods_in(calendar, (to_us(start), to_us(end))), slas)
    acted = [g for g in groups if g.acted]
    lookups = [(g, *where) for g in acted for where in g.lookups()]
    found = _delays(conn, t, calendar.kind, lookups)
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


Tally = tuple[int, str | None, str, int, int, int]  # period, team, owner, hand-offs, acted, late


def _counted(
    conn: sa.Connection,
    t: Tables,
    calendar: Calendar,
    periods: list[tuple[str, int, int]],
    slas: tuple[Sequence[tuple[int, int]], int],
) -> list[_Group]:
    """Each period's hand-offs, acted ones and breaches per (team, owner).

    A breach is a hand-off not acted on, or acted on later than its SLA: the database counts
    the second kind (late), against the one SLA in force throughout the range a query reads
    when there is one, else the SLA in force at each hand-off. By UTC day or week, one query
    reads the span's range of the day index (:func:`_by_utc_day`); else one or a few read each
    UTC month's range of the month index (:func:`_by_month`).
    """
    if calendar.tz == UTC_ZONE and calendar.kind not in MONTHLY:
        tallies = _by_utc_day(conn, t["handoff"], periods, slas)
    else:
        tallies = _by_month(conn, t["handoff"], periods, slas)
    sums: dict[tuple[int, str | None, str], list[int]] = {}
    for period, team, owner, n, acted, late in tallies:
        kept = sums.setdefault((period, team, owner), [0, 0, 0])
        kept[0] += n
        kept[1] += acted
        kept[2] += n - acted + late
    return [
        _Group(periods[i][0], periods[i][1], periods[i][2], team, owner, *counts)
        for (i, team, owner), counts in sorted(sums.items(), key=lambda item: item[0][0])
    ]


def _tallies(
    table: sa.Table,
    slas: tuple[Sequence[tuple[int, int]], int],
    *,
    changing: bool,
    bounded: bool = True,
) -> sa.Select[Any]:
    """Hand-offs, acted ones and late ones (to group), with the parameters of :func:`_values`.

    ``changing``: a version takes effect inside the bounds (:func:`_sla_throughout`), each
    hand-off against the SLA in force at it, else against ``sla``. ``bounded``: the hand-offs'
    times compared with the bounds (``low``, ``high``), else the caller's range of an index
    holds the hand-offs of the bounds and no others.
    """
    h = table.c
    late = sla_in_force(h.at_us, *slas) if changing else sa.bindparam("sla")
    query = sa.select(
        sa.func.count(), sa.func.count(h.delay_us), sa.func.count(sa.case((h.delay_us > late, 1)))
    ).where(h.known_to == FOREVER)
    if bounded:
        # at_us + 0: the range must not lead the database to the at_us index (then sorting the
        # groups' hand-offs); a bucket's range of the delay index holds them in order
        query = query.where(h.at_us + 0 >= sa.bindparam("low"), h.at_us + 0 < sa.bindparam("high"))
    return cast("sa.Select[Any]", query)


def _values(
    slas: tuple[Sequence[tuple[int, int]], int], low: int, high: int
) -> tuple[bool, dict[str, int]]:
    """Whether the SLA changes in ``[low, high)``, and :func:`_tallies`' parameters."""
    sla = _sla_throughout(*slas, low, high)
    values = {"low": low, "high": high}
    return sla is None, values if sla is None else {**values, "sla": sla}


def _by_utc_day(
    conn: sa.Connection,
    table: sa.Table,
    periods: list[tuple[str, int, int]],
    slas: tuple[Sequence[tuple[int, int]], int],
) -> Iterator[Tally]:
    """The tallies of UTC days and weeks: the span's days in one range of the day index.

    Grouped by (day, team, owner) in the index's order; a UTC day lies in one period. A span of
    whole days is the range of its days alone: PostgreSQL, which cannot tell how many rows the
    comparisons with the bounds leave, read the whole table and sorted it (254 ms at 10M,
    against 94 for the range).
    """
    h = table.c
    low, high = periods[0][1], periods[-1][2]
    changing, values = _values(slas, low, high)
    whole = low % DAY_US == 0 and high % DAY_US == 0
    query = (
        _tallies(table, slas, changing=changing, bounded=not whole)
        .add_columns(h.day, h.team, h.to_owner)
        .where(h.day >= day_of(low), h.day <= day_of(high - 1))
        .group_by(h.day, h.team, h.to_owner)
    )
    starts = [start for _, start, _ in periods]
    for n, acted, late, day, team, owner in conn.execute(query, values):
        yield bisect_right(starts, max(day * DAY_US, low)) - 1, team, owner, n, acted, late


def _by_month(
    conn: sa.Connection,
    table: sa.Table,
    periods: list[tuple[str, int, int]],
    slas: tuple[Sequence[tuple[int, int]], int],
) -> Iterator[Tally]:
    """The tallies of the periods, per UTC month they meet: its range of the month index.

    A month's range read once per period meeting it (a quarter's three, a month's in another
    timezone two), grouped by (team, owner) in the index's order, the statement written once;
    read once for all when more periods meet it (days or weeks in another timezone), grouped by
    the period too (a CASE on the hand-off's time), which the database sorts. A list of months
    would be several ranges, which PostgreSQL sorts to group (a quarter at 10M: 31 ms against 4
    for a month).
    """
    h = table.c
    months: dict[int, list[int]] = {}
    for i, (_, start, end) in enumerate(periods):
        for month in _months(start, end):
            months.setdefault(month, []).append(i)
    written: dict[bool, sa.Select[Any]] = {}
    for month, meeting in months.items():
        if len(meeting) <= 2:
            for i in meeting:
                changing, values = _values(slas, periods[i][1], periods[i][2])
                if changing not in written:
                    written[changing] = (
                        _tallies(table, slas, changing=changing)
                        .add_columns(h.team, h.to_owner)
                        .where(h.month == sa.bindparam("month"))
                        .group_by(h.team, h.to_owner)
                    )
                for n, acted, late, team, owner in conn.execute(
                    written[changing], {**values, "month": month}
                ):
                    yield i, team, owner, n, acted, late
            continue
        # which of the periods holds the hand-off: before the next one's start, else the last
        which = sa.case(*((h.at_us < periods[i][1], i - 1) for i in meeting[1:]),
                        else_=meeting[-1])  # fmt: skip
        changing, values = _values(slas, periods[meeting[0]][1], periods[meeting[-1]][2])
        query = (
            _tallies(table, slas, changing=changing)
            .add_columns(which, h.team, h.to_owner)
            .where(h.month == month)
            .group_by(h.team, h.to_owner, which)
        )
        for n, acted, late, i, team, owner in conn.execute(query, values):
            yield i, team, owner, n, acted, late


def _sla_throughout(
    versions: Sequence[tuple[int, int]], default: int, start: int, end: int
) -> int | None:
    """The SLA in force throughout ``[start, end)``; None if a version takes effect inside."""
    if any(start < since < end for since, _ in versions):
        return None
    return sla_at(start, versions, default)


def _delays(
    conn: sa.Connection, t: Tables, kind: str, lookups: list[tuple[_Group, bool, int, int]]
) -> list[list[int]]:
    """The acted delays of each lookup (group, from the longest, offset, how many), in µs.

    Each is one range of the index on (known_to, bucket, team, owner, delay, at) per UTC bucket
    the group's period meets (:func:`_buckets`), in delay order, cut at the offset (the p90
    walks a tenth of its group, from the longest delay down). Over several buckets (a quarter,
    a week, a period in another timezone than UTC) SQLite merges the buckets' ranges;
    PostgreSQL, which appends and sorts them, reads each bucket's range up to offset + how many
    delays. As velocity's ranks, the statements are written once and run many to a query
    (:func:`~projections.ranks.compound`). PostgreSQL plans each statement afresh (a millisecond
    or more for one of several ranges), so there fewer are written: each reads two delays (the
    second dropped where one is asked for) from 1, 2, 4 or 8 ranges, or more, the ranges a
    group lacks empty (:data:`NOWHERE`).
    """
    postgresql = conn.dialect.name == "postgresql"
    arms: dict[_Shape, list[list[object]]] = defaultdict(list)
    for i, (g, down, offset, many) in enumerate(lookups):
        column, buckets = _buckets(kind, g.start, g.end)
        team = [] if g.team is None else [g.team]
        ranges = [[FOREVER, bucket, *team, g.owner, g.start, g.end] for bucket in buckets]
        reads = many
        if postgresql:
            reads = 2
            wanted = next((n for n in (1, 2, 4, 8) if n >= len(ranges)), len(ranges))
            ranges += [[FOREVER, NOWHERE, *team, g.owner, 0, 0]] * (wanted - len(ranges))
        limited = postgresql and len(ranges) > 1
        if limited:
            ranges = [[*values, offset + reads] for values in ranges]
        shape = _Shape(column, len(ranges), g.team is None, down, reads, limited)
        arms[shape].append([i, *chain(*ranges), offset])
    found: list[list[int]] = [[] for _ in lookups]
    for shape, chosen in arms.items():
        statement = _rank_statement(conn, t["handoff"], shape)
        for i, delay in compound(conn, statement, chosen, RANKS_PER_QUERY):
            found[i].append(int(delay))
    return [delays[:many] for delays, (_, _, _, many) in zip(found, lookups, strict=True)]


def _rank_statement(conn: sa.Connection, table: sa.Table, shape: _Shape) -> str:
    """One lookup of :func:`_delays`: ``many`` acted delays of a group from an offset.

    From its shortest delay up, or from its longest ``down``; the group's hand-offs in
    ``ranges`` UTC buckets (months or days), each one range of the index (a list of buckets,
    ``IN``, was no range for PostgreSQL when its values came from the lookup's parameters: it
    read every month of the owner's), each read up to a limit of its own if ``limited``.
    """
    column, ranges, teamless, down, many, limited = shape
    dialect = conn.dialect
    mark = driver_mark(dialect)
    name = dialect.identifier_preparer.format_table(table)
    bucket = dialect.identifier_preparer.quote(column)
    team = "IS NULL" if teamless else f"= {mark}"
    order = f"ORDER BY d{' DESC' if down else ''}"
    one = (
        f"SELECT delay_us AS d FROM {name} "  # noqa: S608 (our names)
        f"WHERE known_to = {mark} AND {bucket} = {mark} AND team {team} AND to_owner = {mark} "
        f"AND delay_us >= 0 AND at_us + 0 >= {mark} AND at_us + 0 < {mark}"  # see _counted
    )
    cut = f"{order} LIMIT {many} OFFSET {mark}"
    if ranges == 1:
        return f"SELECT CAST({mark} AS INTEGER) AS i, d FROM ({one} {cut}) AS r"  # noqa: S608
    if limited:  # PostgreSQL: else it reads and sorts every delay of the ranges
        arms = " UNION ALL ".join(
            f"SELECT d FROM ({one} {order} LIMIT {mark}) AS m{n}"  # noqa: S608
            for n in range(ranges)
        )
    else:  # SQLite merges the ranges, each in delay order, and stops at the offset
        arms = " UNION ALL ".join([one] * ranges)
    return f"SELECT CAST({mark} AS INTEGER) AS i, d FROM ({arms}) AS u {cut}"  # noqa: S608
