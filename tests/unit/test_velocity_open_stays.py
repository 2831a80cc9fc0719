"""The open stays of a velocity sweep, as a sorted multiset, against a plain sorted list."""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st

from projections.velocity import _day_holding, _DayCounts, _sweep

stays = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 12)).map(lambda s: (s[0], s[0] + s[1])),
    max_size=60,
)  # (entered, exited): few distinct times, so equal entries and equal exits are common


@given(stays, st.lists(st.integers(1, 60), min_size=1, max_size=6, unique=True))
def test_the_sweep_gives_the_open_stays_at_every_end(spans, ends):
    """Count, sum, every rank, and the entries in any range equal those of the stays open."""
    ends.sort()
    kept = [(entered, exited) for entered, exited in spans if exited >= ends[0]]
    leaving: list[list[int]] = [[] for _ in ends]  # by the first end each is gone at
    for entered, exited in kept:
        if exited < ends[-1]:
            leaving[bisect.bisect_right(ends, exited)].append(entered)
    swept = _sweep([entered for entered, _ in kept], leaving, ends)
    for idx, end, open_stays, total in swept:
        want = sorted(entered for entered, exited in kept if entered < end <= exited)
        assert (idx, len(open_stays), total) == (ends.index(end), len(want), sum(want))
        assert [open_stays[rank] for rank in range(len(want))] == want
        for start in range(0, 45, 7):
            inside = [entered for entered in want if start <= entered < start + 7]
            assert open_stays.between(start, start + 7) == inside
            assert open_stays.below(start) == sum(1 for e in want if e < start)


@given(
    st.lists(st.lists(st.integers(0, 30), max_size=40), min_size=1, max_size=3),
    st.integers(0, 10**6),
)
def test_the_day_holding_a_rank_is_found_among_several_day_counts(parts, pick):
    """Each rank's day, and its rank within that day, over the entries of every part together."""
    counted = []
    for entries in parts:
        counts = _DayCounts()
        for day in sorted(set(entries)):
            counts.add(day, entries.count(day), 0)
        counted.append(counts)
    together = sorted(day for entries in parts for day in entries)
    if not together:
        return
    bound = together[-1] + 1 + pick % 3
    rank = pick % len(together)
    day, within = _day_holding([c for c in counted if c.days], bound, rank)
    assert day == together[rank]
    assert within == rank - together.index(day)
