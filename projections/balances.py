"""Stage balances from the per-day roll-ups: entries and exits per period, inventory at instants.

The read side of :mod:`projections.rollup`. A report's periods cut business time at their bounds;
between consecutive bounds the stay entries and exits are summed once (whole UTC days from the
roll-up, the partial days at either end from the stay table), and inventory at a bound is the
running total of entries minus exits before it. The results are the same numbers, in the same
shape, as the bitemporal queries in :mod:`projections.inventory` and :mod:`projections.flow`
compute from every stay (tests/integration/test_rollup.py checks that on random ledgers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import sqlalchemy as sa

from projections.periods import FOREVER
from projections.reading import Reader
from projections.rollup import DAY_US, IN, NONE_GROUP
from projections.window import (
    DAY,
    MONTH,
    Window,
    day_of,
    month_of,
    next_month,
    quarter_of,
    week_of,
)

Entry = tuple[str, str, str, str, bool]  # (group, previous stage or "", stage, move, re-entry)
Exit = tuple[str, str]  # (group, stage)


@dataclass
class Sums:
    """Stay entries and exits over one range of business time."""

    entries: Counter[Entry] = field(default_factory=Counter)
    exits: Counter[Exit] = field(default_factory=Counter)

    def add(self, other: Sums) -> None:
        """Add ``other``'s counts to these."""
        self.entries.update(other.entries)
        self.exits.update(other.exits)


def usable(reader: Reader, window: Window) -> bool:
    """Whether the roll-ups can answer ``window`` (they hold the current knowledge only)."""
    return window.known_at is None and reader.has_rollups()


@dataclass
class Balances:
    """Entries and exits per period of a window, and inventory at every period start and end."""

    periods: list[Sums]
    at_start: list[Counter[tuple[str, str]]]
    at_end: list[Counter[tuple[str, str]]]


def balances(reader: Reader, window: Window) -> Balances:
    """Sum entries and exits between the window's period bounds (one roll-up query in all)."""
    dim = window.options.by or ""
    bounds = sorted({p.start for p in window.periods} | {p.end for p in window.periods})
    ranges: list[tuple[int | None, int]] = [(None, bounds[0])]
    ranges += list(pairwise(bounds))
    plan = plan_ranges(ranges)
    sums = _days(reader, dim, plan)
    for index, pieces in enumerate(plan.partial):
        for lo, hi in pieces:
            sums[index].add(_raw(reader, dim, lo, hi))
    running = sums[0]
    inventory: dict[int, Counter[tuple[str, str]]] = {bounds[0]: _inventory(running)}
    segments: dict[int, Sums] = {}
    for (start, hi), segment in zip(ranges[1:], sums[1:], strict=True):
        assert start is not None
        segments[start] = segment
        running.add(segment)
        inventory[hi] = _inventory(running)
    per_period = []
    for period in window.periods:
        total = Sums()
        for lo, segment in segments.items():
            if period.start <= lo < period.end:
                total.add(segment)
        per_period.append(total)
    return Balances(
        per_period,
        [inventory[p.start] for p in window.periods],
        [inventory[p.end] for p in window.periods],
    )


def _inventory(running: Sums) -> Counter[tuple[str, str]]:
    """Stays entered minus stays exited, per (group, stage), keeping only non-empty stages."""
    out: Counter[tuple[str, str]] = Counter()
    for (group, _, stage, _, _), n in running.entries.items():
        out[(group, stage)] += n
    for key, n in running.exits.items():
        out[key] -= n
    return Counter({key: n for key, n in out.items() if n})


Span = tuple[int | None, int]  # [first, last) in day numbers; first None: from the beginning


@dataclass(frozen=True)
class Plan:
    """Ranges of business time split into UTC months, UTC days and pieces shorter than a day."""

    months: list[list[Span]]  # per range: whole months (day numbers of their first days)
    days: list[list[Span]]  # per range: whole days outside those months
    partial: list[list[tuple[int, int]]]  # per range: [lo, hi) in microseconds, under a day


def plan_ranges(ranges: list[tuple[int | None, int]]) -> Plan:
    """Split each ``[lo, hi)`` (``lo`` None: since the beginning of time) at UTC midnights."""
    plan = Plan([], [], [])
    for lo, hi in ranges:
        first = None if lo is None else -(-lo // DAY_US)  # the first whole day at or after lo
        last = day_of(hi)  # whole days end before this one
        months: list[Span] = []
        days: list[Span] = []
        partial: list[tuple[int, int]] = []
        if first is not None and first > last:  # lo and hi on the same day
            assert lo is not None
            partial.append((lo, hi))
        else:
            if lo is not None and first is not None and lo < first * DAY_US:
                partial.append((lo, first * DAY_US))
            if last * DAY_US < hi:
                partial.append((last * DAY_US, hi))
            start = first if first is None or first == month_of(first) else next_month(first)
            end = month_of(last)
            if start is None or start < end:
                months.append((start, end))
                if first is not None and start is not None and first < start:
                    days.append((first, start))
                if end < last:
                    days.append((end, last))
            elif first is None or first < last:
                days.append((first, last))
        plan.months.append(months)
        plan.days.append(days)
        plan.partial.append(partial)
    return plan


def split_weeks(days: list[list[Span]]) -> tuple[list[list[Span]], list[list[Span]]]:
    """Each range's day spans split into whole ISO weeks (from Monday to Monday) and days.

    Week spans hold the Mondays of their weeks, like a week grain's rows: ``[first, last)``.
    """
    return _split_whole(days, lambda day: week_of(day + 6), week_of)


def split_quarters(months: list[list[Span]]) -> tuple[list[list[Span]], list[list[Span]]]:
    """Each range's month spans split into whole UTC quarters and the months outside them.

    Quarter spans hold the first days of their quarters, like a quarter grain's rows.
    """
    return _split_whole(months, _quarter_on_or_after, quarter_of)


def _quarter_on_or_after(day: int) -> int:
    """The first day of the first UTC quarter starting on or after ``day``."""
    start = quarter_of(day)
    return start if start == day else quarter_of(start + 92)  # a quarter has 90 to 92 days


def _split_whole(
    ranges: list[list[Span]], after: Callable[[int], int], before: Callable[[int], int]
) -> tuple[list[list[Span]], list[list[Span]]]:
    """Each range's spans split into whole larger units and the rest.

    ``after``/``before``: the start of the first unit starting on or after / on or before a day.
    """
    whole: list[list[Span]] = []
    rest: list[list[Span]] = []
    for spans in ranges:
        whole.append([])
        rest.append([])
        for first, last in spans:
            end = before(last)
            if first is None or after(first) >= end:
                rest[-1].append((first, last))
                continue
            start = after(first)
            whole[-1].append((start, end))
            rest[-1] += [(a, b) for a, b in ((first, start), (end, last)) if a < b]
    return whole, rest


def day_bucket(day: sa.ColumnElement[int], spans: list[list[Span]]) -> sa.ColumnElement[int]:
    """The index of the range whose spans hold ``day`` (NULL when none does)."""
    whens = [
        (sa.and_(day >= first, day < last) if first is not None else day < last, index)
        for index, ranges in enumerate(spans)
        for first, last in ranges
    ]
    return sa.case(*whens, else_=None)


def rolled_sums(  # noqa: PLR0913, PLR0917
    reader: Reader,
    table: sa.Table,
    plan: Plan,
    where: sa.ColumnElement[bool],
    keys: tuple[sa.ColumnElement[Any], ...],
    measures: tuple[str, ...],
) -> Iterator[tuple[Any, ...]]:
    """``(range index, *keys, *sums)`` over each range's whole months and whole days."""
    for grain, spans in ((MONTH, plan.months), (DAY, plan.days)):
        flat = [span for ranges in spans for span in ranges]
        if not flat:
            continue
        bucket = day_bucket(table.c.day, spans).label("bucket")
        query = (
            sa.select(bucket, *keys, *(sa.func.sum(table.c[m]) for m in measures))
            .where(where, table.c.grain == grain, table.c.day < max(last for _, last in flat))
            .group_by(bucket, *keys)
        )
        firsts = [first for first, _ in flat]
        if None not in firsts:
            query = query.where(table.c.day >= min(f for f in firsts if f is not None))
        for row in reader.rows(query):
            if row[0] is not None:
                yield tuple(row)


def _days(reader: Reader, dim: str, plan: Plan) -> list[Sums]:
    """Each range's whole months and days from the roll-up."""
    roll = reader.tables["roll_stay"]
    keys = (roll.c.side, roll.c.value, roll.c.prev, roll.c.stage, roll.c.move, roll.c.reentry)
    sums = [Sums() for _ in plan.months]
    for index, side, value, prev, stage, move, reentry, n in rolled_sums(
        reader, roll, plan, roll.c.dim == dim, keys, ("n",)
    ):
        if side == IN:
            sums[index].entries[(value, prev, stage, move, bool(reentry))] += int(n)
        else:
            sums[index].exits[(value, stage)] += int(n)
    return sums


def _raw(reader: Reader, dim: str, lo: int, hi: int) -> Sums:
    """Entries and exits in ``[lo, hi)`` (under a day) counted from the current stay rows."""
    stay, lead = reader.tables["stay"], reader.tables["lead"]
    source: sa.FromClause = stay
    group: sa.ColumnElement[str] = sa.literal("", sa.String)
    if dim:
        source = stay.join(
            lead, sa.and_(lead.c.lead_id == stay.c.lead_id, lead.c.known_to == FOREVER)
        )
        group = sa.func.coalesce(lead.c[dim], NONE_GROUP)
    current = stay.c.known_to == FOREVER
    entry_keys = (group, stay.c.prev_stage, stay.c.stage, stay.c.move, stay.c.reentry)
    entries = (
        sa.select(*entry_keys, sa.func.count())
        .select_from(source)
        .where(current, stay.c.entered_us >= lo, stay.c.entered_us < hi)
        .group_by(*entry_keys[int(not dim) :])
    )
    exits = (
        sa.select(group, stay.c.stage, sa.func.count())
        .select_from(source)
        .where(current, stay.c.exited_us >= lo, stay.c.exited_us < hi)
        .group_by(*((group,) if dim else ()), stay.c.stage)
    )
    sums = Sums()
    for value, prev, stage, move, reentry, n in reader.rows(entries):
        sums.entries[(value, prev or "", stage, move, bool(reentry))] += int(n)
    for value, stage, n in reader.rows(exits):
        sums.exits[(value, stage)] += int(n)
    return sums


def open_pipeline(reader: Reader, window: Window) -> dict[tuple[int, str, str], tuple[int, int]]:
    """Open opportunities (count, amount units) per (period, stage, currency) at period ends."""
    ends = sorted({p.end for p in window.periods})
    ranges: list[tuple[int | None, int]] = [(None, ends[0])]
    ranges += list(pairwise(ends))
    plan = plan_ranges(ranges)
    roll = reader.tables["roll_opp"]
    keys = (roll.c.side, roll.c.stage, roll.c.currency)
    pieces: list[Counter[tuple[str, str, str]]] = [Counter() for _ in ranges]
    for index, side, stage, currency, n, units in rolled_sums(
        reader, roll, plan, sa.true(), keys, ("n", "units")
    ):
        sign = 1 if side == IN else -1
        pieces[index][(stage, currency, "n")] += sign * int(n)
        pieces[index][(stage, currency, "units")] += sign * int(units)
    for index, partial in enumerate(plan.partial):
        for lo, hi in partial:
            pieces[index].update(_opp_raw(reader, lo, hi))
    running: Counter[tuple[str, str, str]] = Counter()
    at: dict[int, Counter[tuple[str, str, str]]] = {}
    for (_, hi), piece in zip(ranges, pieces, strict=True):
        running.update(piece)
        at[hi] = Counter(running)
    out: dict[tuple[int, str, str], tuple[int, int]] = {}
    for idx, period in enumerate(window.periods):
        totals = at[period.end]
        for (stage, currency, measure), n in totals.items():
            if measure == "n" and n:
                out[(idx, stage, currency)] = (n, totals[(stage, currency, "units")])
    return out


def _opp_raw(reader: Reader, lo: int, hi: int) -> Counter[tuple[str, str, str]]:
    opp = reader.tables["opp"]
    out: Counter[tuple[str, str, str]] = Counter()
    for column, sign in ((opp.c.valid_from_us, 1), (opp.c.valid_to_us, -1)):
        query = (
            sa.select(opp.c.stage, opp.c.currency, sa.func.count(), sa.func.sum(opp.c.amount_units))
            .where(opp.c.known_to == FOREVER, opp.c.is_open.is_(True), column >= lo, column < hi)
            .group_by(opp.c.stage, opp.c.currency)
        )
        for stage, currency, n, units in reader.rows(query):
            out[(stage, currency, "n")] += sign * int(n)
            out[(stage, currency, "units")] += sign * int(units)
    return out
