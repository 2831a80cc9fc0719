"""Velocity: time in stage, age of open stays, stage-to-stage lag and sales cycle, in days.

Each measure's count, mean, nearest-rank median and p90, per period: from the roll-ups where
they answer the report (the kept ranks of ``rl_roll_rank``, the duration histograms, the open
and ended stays' day counts; projections/ranks.py finds a rank from a histogram), else from the
stays SQL selects, counted, averaged and ranked here. Definitions: docs/metrics.md, section
"Velocity".
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from projections.balances import (
    Span,
    day_bucket,
    plan_ranges,
    split_quarters,
    split_weeks,
    usable,
)
from projections.database import driver_mark
from projections.durations import CYCLE, LAG, TIME_IN_STAGE
from projections.periods import FOREVER, Period
from projections.ranks import (
    CELL,
    RANK_MEASURES,
    RANKS_PER_QUERY,
    Lookup,
    cell_of,
    compound,
    find_durations,
    locate,
)
from projections.reading import Reader
from projections.report import Report
from projections.stages import PROGRESSION
from projections.window import (
    DAY,
    DAY_US,
    MONTH,
    NONE_GROUP,
    QUARTER,
    WEEK,
    PeriodIndex,
    Window,
    day_of,
    is_bound,
)

DAYS_PER_QUERY = 100  # (stage, day) ranges of never-ended stays read in one query
COUNTED_ENDS = 2  # period ends, not bounds, whose ended stays are counted in SQL (more: swept)

Samples = dict[tuple[int, str, str, str], list[int]]  # (period, group, measure, key) -> µs
Exits = dict[tuple[str, str, int], list[int]]  # (group, stage, first end gone at) -> entries


def _statistics(n: int, total: int, median: int, p90: int) -> list[object]:
    """Count, mean, median and p90 in days, from microsecond totals and nearest-rank values."""
    return [n, total / n / DAY_US, median / DAY_US, p90 / DAY_US]


def _ranked(samples: Samples) -> list[list[object]]:
    """Each (period, group, measure, key)'s durations reduced to count, mean, median and p90.

    The durations are ranked here rather than with SQL window functions: reading them and
    sorting each group's integers costs a fraction of ranking them in the database.
    """
    rows: list[list[object]] = []
    for (idx, grp, measure, key), durations in samples.items():
        durations.sort()
        n = len(durations)
        median, p90 = durations[(n + 1) // 2 - 1], durations[(9 * n + 9) // 10 - 1]
        rows.append([idx, grp, measure, key, *_statistics(n, sum(durations), median, p90)])
    return rows


def velocity(reader: Reader, window: Window) -> Report:
    """Time in stage, open-stay age, stage-to-stage lag and sales cycle per period."""
    wanted = window.options.stage
    rolled = _rollable(reader, window)
    ends = [period.end for period in window.periods]
    never = _NeverEnded.read(reader, window, ends) if ends and usable(reader, window) else {}
    # with the roll-ups, the open stays at an end that is a bound are counted in rl_roll_ended
    at_bound = [rolled and is_bound(day_of(end)) for end in ends]
    bounds = [i for i, bound in enumerate(at_bound) if bound]
    swept = [i for i, bound in enumerate(at_bound) if not bound]
    counted: list[int] = []  # other ends whose ended stays are counted per day in SQL
    if rolled and len(swept) <= COUNTED_ENDS:
        counted, swept = swept, []
    completed, ages = _stays_through(reader, window, never, completed=not rolled, swept=swept)
    rows = _ranked(completed) + ages + _bound_ages(reader, window, bounds, never, counted)
    lags = [
        (source, target)
        for source, target in itertools.pairwise(PROGRESSION)
        if wanted in (None, source, target)
    ]
    cycle = wanted in (None, "won")
    if rolled:
        measured: list[tuple[str, str | None]] = [(TIME_IN_STAGE, wanted)]
        measured += [(LAG, f"{source}->{target}") for source, target in lags]
        measured += [(CYCLE, "won")] if cycle else []
        rows += _rolled_durations(reader, window, measured)
    elif lags or cycle:
        rows += _ranked(_lags(reader, window, lags, cycle=cycle))
    by = window.options.by
    columns = [
        "period",
        *([by] if by else []),
        "measure",
        "stage",
        "count",
        "mean_days",
        "median_days",
        "p90_days",
    ]
    report = Report(f"Velocity per {window.options.calendar.kind}", columns, notes=window.notes())
    order = {m: i for i, m in enumerate(("time_in_stage", "open_age", "lag", "sales_cycle"))}
    rows.sort(key=lambda r: (r[0], r[1], order[str(r[2])], str(r[3])))
    for idx, g, *rest in rows:
        report.rows.append([window.periods[int(str(idx))].label, *([g] if by else []), *rest])
    return report


def _stays(reader: Reader, window: Window, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """(group, stage, entered, exited) of the stays known in ``window`` that match ``where``."""
    stay = reader.tables["stay"]
    columns = (reader.group(window), stay.c.stage, stay.c.entered_us, stay.c.exited_us)
    return reader.known_rows(window, stay, *columns).where(*where)


def _stays_through(
    reader: Reader,
    window: Window,
    never: dict[tuple[str, str], _NeverEnded],
    *,
    completed: bool,
    swept: list[int],
) -> tuple[Samples, list[list[object]]]:
    """Time in stage and open age, from one read of the stays that end in or after the window.

    A stay completed in a period (``start <= exited < end``) or open at a period's end
    (``entered < end <= exited``) has ``exited >= `` the first start and ``entered <`` the last
    end: one read of those serves both (:func:`_open_ages`). With ``completed`` False (time in
    stage comes from ``rl_roll_dur``) only the stays open at some end of the periods ``swept``
    are read (the others' ends are bounds: :func:`_bound_ages`). ``never``: the stays that never
    ended, when the roll-ups hold them (those are then not read).
    """
    ends = [window.periods[i].end for i in swept]
    if not ends:
        return {}, []
    stay, wanted = reader.tables["stay"], window.options.stage
    stage_filter = stay.c.stage == wanted if wanted else sa.true()
    query = _stays(reader, window, stage_filter, stay.c.entered_us < ends[-1])
    first = window.periods[0].start if completed else ends[0]
    query = query.where(stay.c.exited_us >= first)
    if usable(reader, window):  # the stays that never ended come from the roll-up
        query = query.where(stay.c.exited_us < FOREVER)
    find = PeriodIndex(window)
    times: Samples = defaultdict(list)
    open_at = _Swept(swept)
    entries, exits = open_at.entries, open_at.exits
    last_end = window.periods[-1].end
    for grp, stage, entered, exited in reader.stream(query):
        if completed and exited < last_end:
            idx = find(exited)  # never None: the periods are contiguous
            if idx is not None:
                times[idx, grp, "time_in_stage", stage].append(exited - entered)
        at = bisect.bisect_right(ends, exited)  # open at the swept ends before ``at``
        if at:  # in the sweep until swept end ``at``, or throughout
            entries[grp, stage].append(entered)
            if at < len(ends):
                exits[grp, stage, at].append(entered)
    return times, _open_ages(reader, window, open_at, never)


@dataclass
class _Swept:
    """The stays open at the end of some period of ``indexes``, per group and stage.

    ``entries``: their entry times; ``exits[group, stage, i]``: the entries of those open at the
    end of ``indexes[i - 1]`` but not at that of ``indexes[i]``.
    """

    indexes: list[int]
    entries: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    exits: Exits = field(default_factory=lambda: defaultdict(list))


def _open_ages(
    reader: Reader, window: Window, swept: _Swept, never: dict[tuple[str, str], _NeverEnded]
) -> list[list[object]]:
    """Age of the stays open at each period end ``swept`` reads (``entered < end <= exited``).

    Each group's and stage's stays are swept through those ends in order (:func:`_sweep`): the
    k-th shortest age at ``end`` is ``end`` minus the k-th latest entry of the stays open then.
    Most stays open at a period end never end (a lead's current stay). With the roll-ups
    (current knowledge), those are counted per day of entry in ``rl_roll_open`` (``never``:
    :class:`_NeverEnded`) and only the stays that ended are read and swept.
    """
    indexes, entries, exits = swept.indexes, swept.entries, swept.exits
    ends = [window.periods[i].end for i in indexes]
    ages: list[_Age] = []
    for key in entries.keys() | never.keys():
        base = never.get(key, _NeverEnded())
        leaving = [exits.get((*key, idx), []) for idx in range(len(ends))]
        for idx, end, open_stays, total in _sweep(entries.get(key, []), leaving, ends):
            n_base, base_total = base.before(end)
            n = n_base + len(open_stays)
            if n:
                age = _Age(indexes[idx], key, end, n, n * end - base_total - total)
                for rank in (n - (n + 1) // 2, n - (9 * n + 9) // 10):
                    age.ranked.append(base.locate(key, end, rank, open_stays))
                ages.append(age)
    lookups = [entry for age in ages for entry in age.ranked if isinstance(entry, _Lookup)]
    _Lookup.resolve(reader, window, lookups)
    return [age.row() for age in ages]


def _sweep(
    entered: list[int], leaving: list[list[int]], ends: list[int]
) -> Iterator[tuple[int, int, _OpenStays, int]]:
    """At each period end in turn: (index, end, the open stays' entry times, their sum).

    ``entered``: the stays' entry times; ``leaving[i]``: the entry times of those that exit
    before ``ends[i]`` but not before the end before it. Nothing is removed from a sorted
    structure: the stays open at an end are those entered before it (a prefix of ``entered``,
    sorted once) less those that left before it (their entry times, kept sorted by merging each
    period's batch in).
    """
    entered.sort()
    gone: list[int] = []
    total = added = 0
    for idx, end in enumerate(ends):
        upto = bisect.bisect_left(entered, end)
        total += sum(entered[added:upto])
        added = upto
        if leaving[idx]:
            total -= sum(leaving[idx])
            gone = sorted(gone + leaving[idx])  # a sorted run and a short one: cheap to merge
        yield idx, end, _OpenStays(entered, upto, gone), total


class _OpenStays:
    """The entry times of the stays open at one period end, as a sorted multiset.

    They are the first ``upto`` of ``entered`` (sorted) without ``gone`` (sorted, and all among
    them); counts and ranks come from bisecting both.
    """

    __slots__ = ("entered", "gone", "upto")

    def __init__(self, entered: list[int], upto: int, gone: list[int]) -> None:
        """The entries ``entered[:upto]`` less ``gone``."""
        self.entered, self.upto, self.gone = entered, upto, gone

    def __len__(self) -> int:
        """How many stays are open."""
        return self.upto - len(self.gone)

    def below(self, at: int) -> int:
        """How many of them were entered before ``at``."""
        before = bisect.bisect_left(self.entered, at, 0, self.upto)
        return before - bisect.bisect_left(self.gone, at)

    def __getitem__(self, rank: int) -> int:
        """The entry time of ascending ``rank`` (from 0).

        It is the least entry with more than ``rank`` open entries at or before it (a value
        that is only in ``gone`` never raises that count), found by bisection.
        """
        entered, upto, gone = self.entered, self.upto, self.gone
        lo, hi = 0, upto - 1
        while lo < hi:
            mid = (lo + hi) // 2
            value = entered[mid]
            count = bisect.bisect_right(entered, value, 0, upto) - bisect.bisect_right(gone, value)
            if count > rank:
                hi = mid
            else:
                lo = mid + 1
        return entered[lo]

    def between(self, start: int, stop: int) -> list[int]:
        """The open entries in ``[start, stop)``, sorted."""
        entered, gone = self.entered, self.gone
        found = entered[
            bisect.bisect_left(entered, start, 0, self.upto) : bisect.bisect_left(
                entered, stop, 0, self.upto
            )
        ]
        left = gone[bisect.bisect_left(gone, start) : bisect.bisect_left(gone, stop)]
        if not left:
            return found
        remaining = Counter(found)
        remaining.subtract(left)
        return sorted(remaining.elements())


@dataclass
class _Age:
    """The open-age statistics of one group and stage at one period end, as they are found."""

    idx: int
    key: tuple[str, str]  # (group, stage)
    end: int
    n: int
    total: int  # sum of the ages, in microseconds
    ranked: list[int | _Lookup] = field(default_factory=list)  # median's and p90's entry times

    def row(self) -> list[object]:
        """The report row: period, group, measure, stage, count, mean, median, p90."""
        median, p90 = (
            self.end - (entry.entered if isinstance(entry, _Lookup) else entry)
            for entry in self.ranked
        )
        grp, stage = self.key
        return [self.idx, grp, "open_age", stage, *_statistics(self.n, self.total, median, p90)]


@dataclass
class _Lookup:
    """An entry time known only to be the ``rank``-th (from 0) of its stage's on ``day``.

    ``ended``: the entries of that day among the open stays that ended later; the others are
    stays that never ended, counted in the roll-up but read here (:meth:`resolve`).
    """

    key: tuple[str, str]
    day: int
    rank: int
    ended: list[int]
    entered: int = 0

    @staticmethod
    def resolve(reader: Reader, window: Window, lookups: list[_Lookup]) -> None:
        """Read the never-ended stays of every day the lookups need, and find their entries."""
        wanted = sorted({(lookup.key[1], lookup.day) for lookup in lookups})
        found = _never_ended_on(reader, window, wanted)
        for lookup in lookups:
            day = sorted(found.get((*lookup.key, lookup.day), []) + lookup.ended)
            lookup.entered = day[lookup.rank]


class _DayCounts:
    """Stays counted per UTC day of entry (a roll-up's rows, in day order), as running sums."""

    def __init__(self) -> None:
        """No stays."""
        self.days: list[int] = []  # UTC days with entries, ascending
        self.counts: list[int] = [0]  # counts[j]: entries on days[:j]
        self.sums: list[int] = [0]  # sums[j]: the sum of their entry times

    def add(self, day: int, n: int, since: int) -> None:
        """Count ``n`` entries on ``day`` (after every day added so far), ``since`` into it."""
        self.days.append(day)
        self.counts.append(self.counts[-1] + n)
        self.sums.append(self.sums[-1] + n * day * DAY_US + since)

    def upto(self, day: int) -> int:
        """How many were entered on the days before ``day``."""
        return self.counts[bisect.bisect_left(self.days, day)]

    def before(self, end: int) -> tuple[int, int]:
        """How many were entered before ``end`` (a UTC midnight), and the sum of their entries."""
        j = bisect.bisect_left(self.days, day_of(end))
        return self.counts[j], self.sums[j]


class _NeverEnded(_DayCounts):
    """One group's and stage's stays that never ended, by UTC day of entry (``rl_roll_open``).

    Whole days are counted by the roll-up; the day holding a period end that is not a UTC
    midnight is read from the stay table (``exact``), so every count before an end is exact.
    """

    def __init__(self) -> None:
        """No stays (a group and stage with none that never ended)."""
        super().__init__()
        self.exact: dict[int, list[int]] = {}  # day -> its entry times, sorted

    @classmethod
    def read(
        cls, reader: Reader, window: Window, ends: list[int]
    ) -> dict[tuple[str, str], _NeverEnded]:
        """Every group's and stage's counts up to the last end, and the days read exactly."""
        roll = reader.tables["roll_open"]
        wanted = window.options.stage
        query = (
            sa.select(roll.c.value, roll.c.stage, roll.c.day, roll.c.n, roll.c.since)
            .where(roll.c.dim == (window.options.by or ""), roll.c.day <= day_of(ends[-1]))
            .where(roll.c.stage == wanted if wanted else sa.true())
            .order_by(roll.c.value, roll.c.stage, roll.c.day)
        )
        out: dict[tuple[str, str], _NeverEnded] = defaultdict(cls)
        for grp, stage, day, n, since in reader.rows(query):
            out[grp, stage].add(day, n, since)
        partial = sorted({day_of(end) for end in ends if end % DAY_US})
        stages = [wanted] if wanted else sorted({stage for _, stage in out})
        found = _never_ended_on(reader, window, [(s, d) for s in stages for d in partial])
        for (grp, stage, day), entered in found.items():
            out[grp, stage].exact[day] = entered
        return dict(out)

    def before(self, end: int) -> tuple[int, int]:
        """How many were entered before ``end``, and the sum of their entry times."""
        n, total = super().before(end)
        day = day_of(end)
        exact = self.exact.get(day, ())
        k = bisect.bisect_left(exact, end)
        return n + k, total + sum(exact[:k])

    def locate(self, key: tuple[str, str], end: int, rank: int, ended: _OpenStays) -> int | _Lookup:
        """The entry time of ascending ``rank`` among these and ``ended`` that are before ``end``.

        ``key``: this group and stage; ``ended``: the entries of the stays open at ``end`` that
        did end later.

        The day that holds it is found by bisection over the days' counts; an entry of a stay
        that ended, or of a day read exactly, is returned at once, else a :class:`_Lookup`.
        """
        if not self.days and not self.exact:
            return ended[rank]
        last = day_of(end)

        def below(day: int) -> int:  # open at ``end`` and entered before ``day`` (<= last)
            return self.upto(day) + ended.below(day * DAY_US)

        firsts = [last, *self.days[:1], *([day_of(ended[0])] if len(ended) else [])]
        lo, hi = min(firsts), last
        while lo < hi:  # the first day with more than ``rank`` entries up to its end
            mid = (lo + hi) // 2
            if below(mid + 1) > rank:
                hi = mid
            else:
                lo = mid + 1
        start = lo * DAY_US
        mine = ended.between(start, start + DAY_US)
        rank -= below(lo)
        j = bisect.bisect_left(self.days, lo)
        rolled = j < len(self.days) and self.days[j] == lo
        if lo in self.exact:
            exact = self.exact[lo]
            mine += exact[: bisect.bisect_left(exact, end)]
        elif rolled:
            return _Lookup(key, lo, rank, mine)
        mine.sort()
        return mine[rank]


def _bound_ages(
    reader: Reader,
    window: Window,
    bounds: list[int],
    never: dict[tuple[str, str], _NeverEnded],
    others: list[int],
) -> list[list[object]]:
    """Age of the stays open at the end of each period of ``bounds`` and ``others``.

    The stays open then are those that never ended entered before it (``never``, from
    ``rl_roll_open``) and those that ended at or after it, counted per UTC day of entry: at a
    bound's midnight (``bounds``) by ``rl_roll_ended``'s rows for that bound, at another UTC
    midnight (``others``) by one grouped query of the stay table (:func:`_ended_after`). The
    count and the sum of the ages come from those counts, the day holding each rank from
    bisecting them (:func:`_day_holding`), and the rank's entry from that day's stays open at
    the end (:func:`_open_on`): no other stay is read.
    """
    if not bounds and not others:
        return []
    at = {day_of(window.periods[i].end): i for i in bounds}
    spans = _spans(reader, window, sorted(at))
    other = {day_of(window.periods[i].end): i for i in others}
    spans.update(_ended_after(reader, window, sorted(other)))
    at.update(other)
    stages = sorted({stage for _, stage in never} | {stage for _, stage in spans})
    ages: list[_Age] = []
    ranks: list[tuple[_Age, str, int, int]] = []  # (age, stage, day, rank among that day's)
    for bound, idx in at.items():
        end = bound * DAY_US
        for stage in stages:
            parts = [c for c in (never.get(("", stage)), spans.get((bound, stage))) if c]
            counted = [part.before(end) for part in parts]
            n = sum(count for count, _ in counted)
            if n:
                age = _Age(idx, ("", stage), end, n, n * end - sum(t for _, t in counted))
                ranked = (n - (n + 1) // 2, n - (9 * n + 9) // 10)
                ranks += [(age, stage, *_day_holding(parts, bound, rank)) for rank in ranked]
                ages.append(age)
    found = _open_on(reader, [(stage, day, age.end, k) for age, stage, day, k in ranks])
    for (age, *_), entered in zip(ranks, found, strict=True):
        age.ranked.append(entered)
    return [age.row() for age in ages]


def _spans(reader: Reader, window: Window, bounds: list[int]) -> dict[tuple[int, str], _DayCounts]:
    """Per (bound, stage), the stays that ended open at the bound's midnight (``rl_roll_ended``)."""
    roll = reader.tables["roll_ended"]
    wanted = window.options.stage
    query = (
        sa.select(roll.c.bound, roll.c.stage, roll.c.day, roll.c.n, roll.c.since)
        .where(roll.c.bound.in_(bounds), roll.c.stage == wanted if wanted else sa.true())
        .order_by(roll.c.bound, roll.c.stage, roll.c.day)
    )
    out: dict[tuple[int, str], _DayCounts] = defaultdict(_DayCounts)
    for bound, stage, day, n, since in reader.rows(query):
        out[bound, stage].add(day, n, since)
    return dict(out)


def _ended_after(
    reader: Reader, window: Window, ends: list[int]
) -> dict[tuple[int, str], _DayCounts]:
    """Per (UTC day ``end``, stage), the stays open at its midnight that ended later.

    The same counts as ``rl_roll_ended`` keeps for a bound (per UTC day of entry, with the sum
    of the entry times' offsets into it), grouped by the database from the stays that ended
    after the midnight: only the counts cross to Python, not the stays.
    """
    stay = reader.tables["stay"]
    wanted = window.options.stage
    entered = stay.c.entered_us
    day = ((entered - (entered % DAY_US + DAY_US) % DAY_US) // DAY_US).label("d")  # floored
    out: dict[tuple[int, str], _DayCounts] = defaultdict(_DayCounts)
    for end_day in ends:
        end = end_day * DAY_US
        query = (
            sa.select(stay.c.stage, day, sa.func.count(), sa.func.sum(entered))
            .where(stay.c.known_to == FOREVER, entered < end)
            .where(stay.c.exited_us >= end, stay.c.exited_us < FOREVER)
            .where(stay.c.stage == wanted if wanted else sa.true())
            .group_by(stay.c.stage, day)
            .order_by(stay.c.stage, day)
        )
        for stage, first, n, total in reader.rows(query):
            out[end_day, stage].add(int(first), int(n), int(total) - int(n) * int(first) * DAY_US)
    return dict(out)


def _day_holding(parts: list[_DayCounts], bound: int, rank: int) -> tuple[int, int]:
    """The UTC day before ``bound`` holding the entry of ascending ``rank`` among ``parts``'.

    Found by bisection over the days: the first with more than ``rank`` entries up to its end;
    returned with the rank among that day's entries.
    """

    def below(day: int) -> int:
        return sum(part.upto(day) for part in parts)

    lo, hi = min(part.days[0] for part in parts if part.days), bound - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if below(mid + 1) > rank:
            hi = mid
        else:
            lo = mid + 1
    return lo, rank - below(lo)


def _open_on(reader: Reader, lookups: list[tuple[str, int, int, int]]) -> list[int]:
    """The entry time of each (stage, UTC day of entry, end, rank among the day's open at end).

    One range of the (stage, entry time) index per lookup, its stays still open at the end
    (never ended, or exited at or after it), cut at the rank; run as compound queries of
    :data:`RANKS_PER_QUERY` lookups.
    """
    stay, _, _, mark = _driver_sql(reader, "stay", None)
    arm = (
        f"SELECT CAST({mark} AS INTEGER) AS i, {stay}.entered_us AS e "  # noqa: S608 (our names)
        f"FROM {stay} WHERE {stay}.known_to = {FOREVER} AND {stay}.stage = {mark} "
        f"AND {stay}.entered_us >= {mark} AND {stay}.entered_us < {mark} "
        f"AND {stay}.exited_us >= {mark} ORDER BY {stay}.entered_us LIMIT 1 OFFSET {mark}"
    )
    arms = [
        [i, stage, day * DAY_US, (day + 1) * DAY_US, end, rank]
        for i, (stage, day, end, rank) in enumerate(lookups)
    ]
    found = dict(_lookup(reader, arm, arms))
    return [int(found[i]) for i in range(len(lookups))]


def _never_ended_on(
    reader: Reader, window: Window, days: list[tuple[str, int]]
) -> dict[tuple[str, str, int], list[int]]:
    """The entry times, sorted, of the stays that never ended entered on each (stage, UTC day).

    One range of the (stage, entry time) index per day, run as one compound query per
    ``DAYS_PER_QUERY`` days: an ``OR`` of the ranges would read every stay that never ended.
    Only the current stays are read (the roll-ups hold the current knowledge).
    """
    by = window.options.by
    stay, joined, group, mark = _driver_sql(reader, "stay", by)
    params = [NONE_GROUP] if by else []
    arm = (
        f"SELECT {group}, {stay}.stage, {stay}.entered_us FROM {joined} "  # noqa: S608 (our names)
        f"WHERE {stay}.known_to = {FOREVER} AND {stay}.stage = {mark} "
        f"AND {stay}.entered_us >= {mark} AND {stay}.entered_us < {mark} "
        f"AND {stay}.exited_us >= {FOREVER}"
    )
    arms = [[*params, stage, day * DAY_US, (day + 1) * DAY_US] for stage, day in days]
    out: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for grp, stage, entered in _lookup(reader, arm, arms, DAYS_PER_QUERY):
        out[grp, stage, day_of(entered)].append(entered)
    for entered in out.values():
        entered.sort()
    return dict(out)


def _lookup(
    reader: Reader, arm: str, arms: list[list[object]], per_query: int = RANKS_PER_QUERY
) -> Iterator[tuple[Any, ...]]:
    """:func:`ranks.compound` of ``arm`` over ``arms``, in one transaction of the reader's."""
    with reader.engine.begin() as conn:
        yield from compound(conn, arm, arms, per_query)


def _reaching(stay: sa.Table, window: Window, targets: list[str]) -> sa.Select[Any]:
    """The leads with a stay in the window that reaches one of ``targets``.

    A stay reaches its stage and the stages it skipped; the other leads' first reaches all fall
    outside the window. A skip only ever enters a later stage of the progression, so when the
    targets are all of those, the stage alone decides (and the stage index serves the query).
    """
    recent = stay.alias("recent")
    reaching: sa.ColumnElement[bool] = recent.c.stage.in_(targets)
    if not set(PROGRESSION[1:]) <= set(targets):
        reaching = sa.or_(reaching, recent.c.skipped != "")
    return sa.select(recent.c.lead_id).where(
        window.known(recent),
        recent.c.entered_us >= window.periods[0].start,
        recent.c.entered_us < window.cap,
        reaching,
    )


def _lags(reader: Reader, window: Window, lags: list[tuple[str, str]], *, cycle: bool) -> Samples:
    """Lags A->B and the sales cycle, in the period of the first reach of B (``won``).

    A lag runs from the first entry into A to the first reach of B; the cycle from the first
    contact to the first reach of ``won``. Every lead's first entries and first reaches come
    from one grouped query over the stays of the leads that may first reach a target in the
    window (:func:`_reaching`), joined to the lead's first contact once per lead; leads that
    reached B before A are left out.
    """
    if not window.periods:
        return {}
    stay, lead = reader.tables["stay"], reader.tables["lead"]

    def reaches(stage: str) -> sa.ColumnElement[bool]:
        return sa.or_(stay.c.stage == stage, stay.c.skipped.contains(f",{stage},"))

    sources = sorted({source for source, _ in lags})
    targets = sorted({target for _, target in lags} | ({"won"} if cycle else set()))
    columns: list[sa.ColumnElement[object]] = [stay.c.lead_id]
    columns += [
        sa.func.min(sa.case((stay.c.stage == s, stay.c.entered_us))).label(f"e_{s}")
        for s in sources
    ]
    columns += [
        sa.func.min(sa.case((reaches(t), stay.c.entered_us))).label(f"r_{t}") for t in targets
    ]
    active = _reaching(stay, window, targets)
    per_lead = (
        sa.select(*columns)
        .where(window.known(stay), stay.c.entered_us < window.cap, stay.c.lead_id.in_(active))
        .group_by(stay.c.lead_id)
        .subquery("firsts")
    )
    source = reader.with_lead(window, per_lead, per_lead.c.lead_id)
    firsts = list(per_lead.c)[1:]
    if cycle:
        if window.options.by is None:
            known = sa.and_(lead.c.lead_id == per_lead.c.lead_id, window.known(lead))
            source = source.outerjoin(lead, known)
        firsts.append(lead.c.first_contact_us.label("contact"))
    query = sa.select(reader.group(window), *firsts).select_from(source)
    at = {column.name: i for i, column in enumerate(firsts, 1)}  # the group is column 0
    pairs = [(at[f"e_{s}"], at[f"r_{t}"], "lag", f"{s}->{t}") for s, t in lags]
    if cycle:
        pairs.append((at["contact"], at["r_won"], "sales_cycle", "won"))
    find = PeriodIndex(window)
    samples: Samples = defaultdict(list)
    for row in reader.stream(query):
        for start, reach, measure, key in pairs:
            t0, t1 = row[start], row[reach]
            if t0 is not None and t1 is not None and t1 >= t0:
                idx = find(t1)
                if idx is not None:
                    samples[idx, row[0], measure, key].append(t1 - t0)
    return samples


def _rollable(reader: Reader, window: Window) -> bool:
    """Whether ``rl_roll_dur`` answers ``window``: current knowledge, periods at UTC midnights.

    A time in stage falls in the period of its exit, a lag or a sales cycle in the period of its
    reach; none is ever after the cap, and each is the same whatever the cap
    (projections/durations.py). The roll-up keys them by UTC day and holds every lead's
    together: a report split ``--by`` reads the stay table (per group, the histograms and the
    rank lookups cost as much as that read: 1.8 s against 1.7 s by owner at 1M).
    """
    if not usable(reader, window) or window.options.by:
        return False
    return all(p.start % DAY_US == 0 and p.end % DAY_US == 0 for p in window.periods)


def _rolled_durations(
    reader: Reader, window: Window, measured: list[tuple[str, str | None]]
) -> list[list[object]]:
    """The ``measured`` (measure, key; None: every key) durations per period, from the roll-ups.

    A period that is one whole UTC day, ISO week, UTC month or UTC quarter is one cell of
    ``rl_roll_rank``, which holds its count, sum, median and p90 (:func:`_kept_ranks`); any
    other period, or one whose cell a catch-up has not ranked afresh yet, is ranked from the
    histograms (:func:`_histogram_ranks`).
    """
    rows, rest = _kept_ranks(reader, window, measured)
    return rows + _histogram_ranks(reader, window, rest, measured)


def _chosen(table: sa.Table, measured: list[tuple[str, str | None]]) -> sa.ColumnElement[bool]:
    """The rows of ``table`` (with ``measure`` and ``key`` columns) of the ``measured``."""
    return sa.or_(
        *(
            table.c.measure == measure
            if key is None
            else sa.and_(table.c.measure == measure, table.c.key == key)
            for measure, key in measured
        )
    )


def _kept_ranks(
    reader: Reader, window: Window, measured: list[tuple[str, str | None]]
) -> tuple[list[list[object]], list[int]]:
    """The report rows of the periods that are cells of ``rl_roll_rank``; the other periods.

    A week or quarter is a cell only once the build has those grains (:meth:`Reader.has_grain`).
    A stale cell (NULL measures) leaves its period to the histograms.
    """
    if not reader.has_ranks():
        return [], list(range(len(window.periods)))
    grains = [DAY, MONTH, *(g for g in (WEEK, QUARTER) if reader.has_grain("roll_dur", g))]
    cells: dict[tuple[str, int], int] = {}
    rest: list[int] = []
    for idx, period in enumerate(window.periods):
        cell = cell_of(period.start // DAY_US, period.end // DAY_US, grains)
        if cell is None:
            rest.append(idx)
        else:
            cells[cell] = idx
    if not cells:
        return [], rest
    rank = reader.tables["roll_rank"]
    by_grain: dict[str, list[int]] = defaultdict(list)
    for grain, day in cells:
        by_grain[grain].append(day)
    query = sa.select(*(rank.c[c] for c in (*CELL, *RANK_MEASURES))).where(
        _chosen(rank, measured),
        sa.or_(*(sa.and_(rank.c.grain == g, rank.c.day.in_(days)) for g, days in by_grain.items())),
    )
    rows: list[list[object]] = []
    stale: set[int] = set()
    for grain, day, measure, key, n, total, median, p90 in reader.rows(query):
        idx = cells[grain, day]
        if median is None:
            stale.add(idx)
        else:
            rows.append([idx, "", measure, key, *_statistics(n, total, median, p90)])
    if stale:
        rows = [row for row in rows if row[0] not in stale]
    return rows, sorted([*rest, *stale])


def _histogram_ranks(
    reader: Reader, window: Window, chosen: list[int], measured: list[tuple[str, str | None]]
) -> list[list[object]]:
    """The ``measured`` durations of the periods ``chosen`` (indexes), ranked from histograms.

    Each period's histogram is summed from whole quarters, months, weeks and days of
    ``rl_roll_dur`` (:func:`_histograms`); running counts over its buckets in order give the
    buckets of the median and the p90 and the ranks within them (:func:`ranks.locate`), whose
    durations are read from ``rl_dur_sample`` (:func:`ranks.find_durations`).
    """
    if not chosen:
        return []
    periods = [window.periods[i] for i in chosen]
    found: list[tuple[int, str, str, int, int]] = []
    lookups: list[Lookup] = []
    for (at, measure, key), cells in _histograms(reader, periods, measured).items():
        count = sum(n for n, _ in cells.values())
        if not count:
            continue
        total = sum(t for _, t in cells.values())
        period = periods[at]
        first, after = period.start // DAY_US, period.end // DAY_US
        for bucket, rank in locate(((b, cells[b][0]) for b in sorted(cells)), count):
            lookups.append((first, after, measure, key, bucket, rank))
        found.append((chosen[at], measure, key, count, total))
    with reader.engine.begin() as conn:
        durations = find_durations(conn, reader.tables["dur_sample"], lookups)
    return [
        [idx, "", measure, key, *_statistics(n, total, durations[2 * i], durations[2 * i + 1])]
        for i, (idx, measure, key, n, total) in enumerate(found)
    ]


def _histograms(
    reader: Reader, periods: list[Period], measured: list[tuple[str, str | None]]
) -> dict[tuple[int, str, str], dict[int, list[int]]]:
    """Per (period index, measure, key): {bucket: [count, sum]} of the ``measured`` durations.

    Each period is summed from the whole quarters, months, ISO weeks and days of
    ``rl_roll_dur`` (quarters and weeks when the build has them: :meth:`Reader.has_grain`).
    Summing the rows here cost less than ranking them in SQL with window functions (22
    against 49 ms for a year of months at 10M events on SQLite).
    """
    roll = reader.tables["roll_dur"]
    where = _chosen(roll, measured)
    hists: dict[tuple[int, str, str], dict[int, list[int]]] = defaultdict(dict)
    for grain, spans in _grain_spans(reader, periods):
        flat = [span for ranges in spans for span in ranges]
        if not flat:
            continue
        period = day_bucket(roll.c.day, spans).label("p")
        first = min(first for first, _ in flat if first is not None)
        query = (
            sa.select(period, *(roll.c[c] for c in ("measure", "key", "bucket", "n", "total")))
            .where(where, roll.c.grain == grain, roll.c.day >= first)
            .where(roll.c.day < max(last for _, last in flat))
        )
        for idx, measure, key, bucket, n, total in reader.rows(query):
            if idx is not None:
                cells = hists[idx, measure, key]
                cell = cells.get(bucket)
                if cell is None:
                    cells[bucket] = [n, total]
                else:
                    cell[0] += n
                    cell[1] += total
    return hists


def _grain_spans(reader: Reader, periods: list[Period]) -> list[tuple[str, list[list[Span]]]]:
    """Per grain of ``rl_roll_dur``, each period's spans of it (quarters and weeks if built)."""
    plan = plan_ranges([(p.start, p.end) for p in periods])
    quarters: list[list[Span]] = []
    weeks: list[list[Span]] = []
    months, days = plan.months, plan.days
    if reader.has_grain("roll_dur", QUARTER):
        quarters, months = split_quarters(plan.months)
    if reader.has_grain("roll_dur", WEEK):
        weeks, days = split_weeks(plan.days)
    return [(QUARTER, quarters), (MONTH, months), (WEEK, weeks), (DAY, days)]


def _driver_sql(reader: Reader, table: str, by: str | None) -> tuple[str, str, str, str]:
    """Pieces of SQL for the driver: table name, source, group and parameter mark.

    They are ``table``'s quoted name; the table joined to its lead's current dimension row
    when split ``by`` (as ``l``); the group (with a parameter: the value of a missing one);
    and the driver's positional parameter mark.
    """
    dialect = reader.engine.dialect
    mark = driver_mark(dialect)
    quote = dialect.identifier_preparer
    name = quote.format_table(reader.tables[table])
    if not by:
        return name, name, "''", mark
    lead = quote.format_table(reader.tables["lead"])
    joined = f"{name} JOIN {lead} l ON l.lead_id = {name}.lead_id AND l.known_to = {FOREVER}"
    return name, joined, f"COALESCE(l.{quote.quote(by)}, {mark})", mark
