"""The open stays of a velocity sweep, as a sorted multiset, against a plain sorted list."""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st

from projections.velocity import _sweep

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
