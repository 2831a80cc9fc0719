"""Finding nearest ranks from a histogram, and the cells of rl_roll_rank (projections/ranks.py)."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from projections.durations import bucket_of
from projections.ranks import cell_days, cell_of, locate, nearest_ranks, sample_cells
from projections.window import DAY, EPOCH_ORDINAL, MONTH, QUARTER, WEEK

GRAINS = (DAY, WEEK, MONTH, QUARTER)


def _day(text: str) -> int:
    return date.fromisoformat(text).toordinal() - EPOCH_ORDINAL


@given(st.lists(st.integers(0, 10**13), min_size=1, max_size=300))
def test_the_located_ranks_are_the_nearest_rank_median_and_p90(durations: list[int]) -> None:
    """The bucket and the rank within it name the same duration as sorting them all."""
    ordered = sorted(durations)
    counts: dict[int, int] = {}
    for duration in durations:
        counts[bucket_of(duration)] = counts.get(bucket_of(duration), 0) + 1
    found = locate(sorted(counts.items()), len(durations))
    median, p90 = nearest_ranks(len(durations))
    assert len(found) == 2
    in_bucket = [sorted(d for d in durations if bucket_of(d) == b)[r] for b, r in found]
    assert in_bucket == [ordered[median - 1], ordered[p90 - 1]]


def test_nearest_ranks_round_up() -> None:
    """⌈n/2⌉ and ⌈0.9·n⌉, as docs/metrics.md defines the median and the p90."""
    assert [nearest_ranks(n) for n in (1, 2, 9, 10, 11, 20)] == [
        (1, 1),
        (1, 2),
        (5, 9),
        (5, 9),
        (6, 10),
        (10, 18),
    ]


@given(st.integers(_day("1969-01-01"), _day("2040-12-31")), st.sampled_from(GRAINS))
def test_a_cell_is_the_days_it_spans_and_nothing_else(day: int, grain: str) -> None:
    """The days of the cell holding ``day`` are that cell; a day more or less is none."""
    first = next(c for g, c, *_ in sample_cells([("m", "k", 0, day)]) if g == grain)
    start, after = cell_days(grain, first)
    assert start <= day < after
    assert cell_of(start, after, GRAINS) == (grain, first)
    if grain != DAY:
        assert cell_of(start, after - 1, GRAINS) is None
        assert cell_of(start + 1, after, GRAINS) is None
    assert cell_of(start, after, [g for g in GRAINS if g != grain]) is None


def test_the_cells_of_a_sample_at_each_grain() -> None:
    """A Wednesday in May: its day, its week's Monday, May and the second quarter."""
    cells = sample_cells([("lag", "mql->sql", 12, _day("2025-05-14"), 99, "L1", 0, 0)])
    assert cells == {
        (DAY, _day("2025-05-14"), "lag", "mql->sql"),
        (WEEK, _day("2025-05-12"), "lag", "mql->sql"),
        (MONTH, _day("2025-05-01"), "lag", "mql->sql"),
        (QUARTER, _day("2025-04-01"), "lag", "mql->sql"),
    }
    assert cell_days(QUARTER, _day("2025-04-01")) == (_day("2025-04-01"), _day("2025-07-01"))
    assert cell_days(MONTH, _day("2024-02-01")) == (_day("2024-02-01"), _day("2024-03-01"))
