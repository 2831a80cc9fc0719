"""A business-time range splits into whole UTC months, weeks, days and sub-day pieces tiling it."""

from __future__ import annotations

import itertools
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from projections.balances import plan_ranges, split_quarters, split_weeks
from projections.rollup import DAY_US
from projections.window import (
    EPOCH_ORDINAL,
    bounds_in,
    is_bound,
    month_of,
    next_month,
    quarter_of,
    week_of,
)

EARLY, LATE = -40 * 365 * DAY_US, 80 * 365 * DAY_US
instants = st.integers(EARLY, LATE) | st.integers(-800, 800).map(lambda d: d * DAY_US)


def pieces(lo: int | None, hi: int) -> list[tuple[int, int]]:
    """The plan of ``[lo, hi)`` as microsecond intervals (``lo`` None: from EARLY)."""
    plan = plan_ranges([(lo, hi)])
    out = list(plan.partial[0])
    for first, last in plan.months[0]:
        assert first is None or month_of(first) == first
        assert month_of(last) == last
        out.append(((-(10**6) if first is None else first) * DAY_US, last * DAY_US))
    for first, last in plan.days[0]:
        out.append(((-(10**6) if first is None else first) * DAY_US, last * DAY_US))
    return sorted(out)


@given(instants, instants)
def test_the_pieces_tile_the_range_exactly(a: int, b: int) -> None:
    """No gap, no overlap, nothing outside; sub-day pieces are shorter than a day."""
    lo, hi = min(a, b), max(a, b)
    if lo == hi:
        return
    tiles = pieces(lo, hi)
    assert tiles[0][0] == lo
    assert tiles[-1][1] == hi
    for (_, end), (start, _) in itertools.pairwise(tiles):
        assert end == start
    assert all(p_hi - p_lo < DAY_US for p_lo, p_hi in plan_ranges([(lo, hi)]).partial[0])


@given(instants)
def test_since_the_beginning_ends_exactly_at_the_bound(b: int) -> None:
    """(-inf, b): months and days up to b's day, then the rest of the day from the stays."""
    tiles = pieces(None, max(b, EARLY + DAY_US))
    assert tiles[-1][1] == max(b, EARLY + DAY_US)


def test_months_are_keyed_by_their_first_day() -> None:
    """Month keys and the next month, around a year end and before 1970."""
    day = date(2025, 12, 17).toordinal() - EPOCH_ORDINAL
    assert month_of(day) == date(2025, 12, 1).toordinal() - EPOCH_ORDINAL
    assert next_month(day) == date(2026, 1, 1).toordinal() - EPOCH_ORDINAL
    assert month_of(-1) == date(1969, 12, 1).toordinal() - EPOCH_ORDINAL


def test_a_utc_month_is_one_month_row() -> None:
    """A calendar month in UTC needs neither day rows nor the stay table."""
    lo = (date(2025, 3, 1).toordinal() - EPOCH_ORDINAL) * DAY_US
    hi = (date(2025, 4, 1).toordinal() - EPOCH_ORDINAL) * DAY_US
    plan = plan_ranges([(lo, hi)])
    assert len(plan.months[0]) == 1
    assert plan.days == [[]]
    assert plan.partial == [[]]


@given(st.integers(-800, 30_000), st.integers(0, 400))
def test_bounds_are_the_mondays_and_first_days_of_a_range(first: int, length: int) -> None:
    """``bounds_in`` lists, in order and once each, the days starting an ISO week or a month."""
    last = first + length
    days = [date.fromordinal(day + EPOCH_ORDINAL) for day in range(first, last + 1)]
    want = [first + i for i, d in enumerate(days) if d.weekday() == 0 or d.day == 1]
    assert bounds_in(first, last) == want
    assert [day for day in range(first, last + 1) if is_bound(day)] == want
    assert bounds_in(last + 1, last) == []


@given(st.integers(-800, 800), st.integers(1, 60), st.booleans())
def test_day_spans_split_into_whole_weeks_and_days(
    first: int,
    length: int,
    open_start: bool,  # noqa: FBT001 (drawn by hypothesis)
) -> None:
    """Weeks run Monday to Monday; with the days left over they hold each day once."""
    start = None if open_start else first
    weeks, days = split_weeks([[(start, first + length)], []])
    assert weeks[1] == days[1] == []
    covered: list[int] = []
    for monday, end in weeks[0]:
        assert week_of(monday) == monday
        assert week_of(end) == end
        assert monday < end
        assert date.fromordinal(monday + EPOCH_ORDINAL).isoweekday() == 1
        covered += range(monday, end)
    for lo, hi in days[0]:
        assert lo is None or lo < hi
        covered += range(first - 1000 if lo is None else lo, hi)
    assert sorted(covered) == list(range(first - 1000 if open_start else first, first + length))
    if not open_start:
        assert sum(hi - lo for lo, hi in days[0] if lo is not None) < 13  # under a week each side


def _month_start(index: int) -> int:
    """The first day of the ``index``-th month after January 1970 (negative: before it)."""
    year, month = divmod(index, 12)
    return date(1970 + year, month + 1, 1).toordinal() - EPOCH_ORDINAL


@given(st.integers(-300, 300), st.integers(1, 30), st.booleans())
def test_month_spans_split_into_whole_quarters_and_months(
    first: int,
    length: int,
    open_start: bool,  # noqa: FBT001 (drawn by hypothesis)
) -> None:
    """Quarters start in January, April, July and October.

    With the months left over they hold each month once; at most two are left at either end
    of the quarters.
    """
    start, last = _month_start(first), _month_start(first + length)
    quarters, months = split_quarters([[(None if open_start else start, last)]])
    covered: list[int] = []
    for lo, hi in quarters[0]:
        assert quarter_of(lo) == lo
        assert quarter_of(hi) == hi
        assert date.fromordinal(lo + EPOCH_ORDINAL).month in {1, 4, 7, 10}
        covered += range(lo, hi)
    for lo, hi in months[0]:
        assert lo is None or month_of(lo) == lo < hi
        covered += range(start - 1000 if lo is None else lo, hi)
    assert sorted(covered) == list(range(start - 1000 if open_start else start, last))
    if quarters[0] and not open_start:  # two months at most before and after the quarters
        assert all(hi - lo <= 62 for lo, hi in months[0] if lo is not None)
    elif not open_start:  # no whole quarter: at most five months, from a quarter's second
        assert last - start <= 153
