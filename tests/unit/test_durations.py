"""Velocity's kept durations: the histogram buckets and one lead's durations."""

from __future__ import annotations

import random

from projections.durations import (
    CYCLE,
    LAG,
    SUB_BUCKETS,
    TIME_IN_STAGE,
    bucket_of,
    lead_durations,
)
from projections.periods import FOREVER

H = 3_600_000_000  # an hour in microseconds


def test_buckets_are_ordered_and_narrow() -> None:
    """A longer duration never has a lower bucket; a bucket spans at most an eighth of its start."""
    rng = random.Random(7)  # noqa: S311 (test data)
    durations = sorted({*range(200), *(rng.randrange(1, 2**50) for _ in range(5_000)), 2**62})
    buckets = [bucket_of(d) for d in durations]
    assert buckets == sorted(buckets)
    assert [bucket_of(d) for d in range(16)] == list(range(16))
    lowest: dict[int, int] = {}
    highest: dict[int, int] = {}
    for duration, bucket in zip(durations, buckets, strict=True):
        lowest.setdefault(bucket, duration)
        highest[bucket] = duration
    for bucket, low in lowest.items():
        assert highest[bucket] - low <= low // SUB_BUCKETS
    assert len({bucket_of(d) for d in range(2**20, 2**21)}) == SUB_BUCKETS


def test_a_leads_times_in_stage_lags_and_cycle() -> None:
    """Completed stays; first entries and first reaches (skips included); no negative spans."""
    rows = [  # (entered, seq, stage, skipped, exited), in business order
        (10 * H, 0, "inquiry", "", 10 * H),
        (10 * H, 1, "mql", "", 20 * H),  # entered at the same instant: a lag of 0
        (20 * H, 2, "sql", ",sal,", 30 * H),  # skips sal: reaches it
        (30 * H, 3, "mql", "", 40 * H),  # a re-entry does not move the first entry
        (40 * H, 4, "won", ",sqo,", 50 * H),
        (50 * H, 5, "sal", "", FOREVER),  # entered after it was reached; never ends
    ]
    assert lead_durations(rows, 4 * H) == [
        (TIME_IN_STAGE, "inquiry", 10 * H, 0, 0),
        (TIME_IN_STAGE, "mql", 20 * H, 10 * H, 1),
        (TIME_IN_STAGE, "sql", 30 * H, 10 * H, 2),
        (TIME_IN_STAGE, "mql", 40 * H, 10 * H, 3),
        (TIME_IN_STAGE, "won", 50 * H, 10 * H, 4),
        (LAG, "inquiry->mql", 10 * H, 0, 0),
        (LAG, "mql->sal", 20 * H, 10 * H, 0),
        # sal->sql: sal was first entered (50 h) after sql was reached (20 h): left out
        (LAG, "sql->sqo", 40 * H, 20 * H, 0),
        # sqo->won: sqo was only skipped, never entered: no lag
        (CYCLE, "won", 40 * H, 36 * H, 0),
    ]
    assert lead_durations(rows, None)[-1][0] == LAG  # no first contact: no cycle
    assert lead_durations(rows, 41 * H)[-1][0] == LAG  # contact after the win: none
    assert lead_durations(rows[-1:], 0) == []  # one stay that never ended
