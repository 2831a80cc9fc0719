"""Velocity's durations kept per lead, so the report ranks histograms rather than every duration.

A lead's completed stays (time in stage, in the period of the exit), its lags (first entry into
a stage to the first reach of the next, along the progression) and its sales cycle (first
contact to the first reach of ``won``), each in the period of its reach, depend only on its own
current stays and first contact. They are kept twice:

- ``rl_roll_dur``: per (measure, key, grain, day of the exit or reach, bucket)
  how many durations and their sum in microseconds, at grains ``d`` (UTC day), ``w`` (ISO
  week, keyed by its Monday), ``m`` (UTC month) and ``q`` (UTC quarter, both keyed by their
  first day), for every lead together (a report split ``--by`` reads the stay table: kept per
  group, the histograms and the lookups cost as much as that read). ``bucket``
  (:func:`bucket_of`) cuts durations into 8 buckets per doubling, so a period's counts per
  bucket are a histogram, and the bucket that holds a rank, and the rank within it, come from
  it;
- ``rl_dur_sample``: every duration, indexed by (measure, key, bucket, UTC day, duration), so
  the duration of a rank within a bucket is one short range of that index: exact nearest-rank
  medians and p90s read a few rows each.

A rebuild appends every lead's samples, then aggregates the histograms from them in SQL
(``rollup.build``); a catch-up moves a re-derived lead's samples and sums (:class:`DurationDelta`).
Each cell of ``rl_roll_dur`` (a grain's day, measure and key) also has its count, sum, median and
p90 kept in ``rl_roll_rank`` (projections/ranks.py).

Definitions: docs/metrics.md, section "Velocity"; the read side: projections/velocity.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

from projections.periods import FOREVER
from projections.stages import PROGRESSION, first_reaches
from projections.window import DAY_US, grain_starts, month_of

TIME_IN_STAGE, LAG, CYCLE = "time_in_stage", "lag", "sales_cycle"
LAG_KEYS = tuple(f"{source}->{target}" for source, target in pairwise(PROGRESSION))
SUB_BUCKETS = 8  # buckets per doubling of a duration
DUR_KEY = ("measure", "key", "grain", "day", "bucket")
DUR_MEASURES = ("n", "total")
SAMPLE_KEY = ("measure", "key", "bucket", "day", "duration_us", "lead_id", "seq", "month")

Sample = tuple[str, str, int, int, int]  # (measure, key, ended at, duration µs, stay seq or 0)
Stay = tuple[int, int, str, str, int]  # (entered, seq, stage, skipped, exited)
DurKey = tuple[str, str, str, int, int]
SampleKey = tuple[str, str, int, int, int, str, int, int]


def bucket_of(duration: int) -> int:
    """The histogram bucket of a duration in microseconds (non-decreasing in it).

    Durations under 16 µs have one bucket each; above, each doubling is cut in
    :data:`SUB_BUCKETS` by the three bits after the leading one, so a bucket spans at most an
    eighth of its lower bound.
    """
    if duration < 2 * SUB_BUCKETS:
        return duration
    shift = duration.bit_length() - 4
    return shift * SUB_BUCKETS + (duration >> shift)


def lead_durations(rows: Sequence[Stay], contact: int | None) -> list[Sample]:
    """One lead's times in stage, lags and sales cycle, from its current stays and first contact.

    ``rows``: (entered, seq, stage, skipped, exited) in business order. A completed stay's time
    in stage runs from its entry to its exit. A lag A->B runs from the first entry into A to the
    first reach of B (entered or skipped over), the sales cycle from the first contact to the
    first reach of ``won``; neither is kept when it would be negative.
    """
    out: list[Sample] = [
        (TIME_IN_STAGE, stage, exited, exited - entered, seq)
        for entered, seq, stage, _, exited in rows
        if exited < FOREVER
    ]
    firsts: dict[str, int] = {}
    for entered, _, stage, _, _ in rows:
        firsts.setdefault(stage, entered)
    reached, _ = first_reaches((row[0], row[2], row[3]) for row in rows)
    for key, (source, target) in zip(LAG_KEYS, pairwise(PROGRESSION), strict=True):
        t0, t1 = firsts.get(source), reached.get(target)
        if t0 is not None and t1 is not None and t1 >= t0:
            out.append((LAG, key, t1, t1 - t0, 0))
    won = reached.get("won")
    if contact is not None and won is not None and won >= contact:
        out.append((CYCLE, "won", won, won - contact, 0))
    return out


def sample_keys(samples: Iterable[Sample], lead_id: str) -> Iterable[SampleKey]:
    """The ``rl_dur_sample`` rows of one lead's ``samples``."""
    for measure, key, at, duration, seq in samples:
        day = at // DAY_US
        yield (measure, key, bucket_of(duration), day, duration, lead_id, seq, month_of(day))


def add_sums(sums: dict[DurKey, list[int]], samples: Iterable[Sample], sign: int = 1) -> None:
    """Add (``sign`` -1: take out) ``samples``' counts and sums at every grain."""
    for measure, key, at, duration, _ in samples:
        bucket = bucket_of(duration)
        day = at // DAY_US
        for grain, when in grain_starts(day):
            sums_of = sums.get((measure, key, grain, when, bucket))
            if sums_of is None:
                sums_of = sums[measure, key, grain, when, bucket] = [0, 0]
            sums_of[0] += sign
            sums_of[1] += sign * duration


def lead_rows(stays: Iterable[Mapping[Any, Any]]) -> dict[str, list[Stay]]:
    """Current stay rows grouped by lead, as :data:`Stay` tuples in business order."""
    by_lead: dict[str, list[Stay]] = {}
    for stay in stays:
        by_lead.setdefault(stay["lead_id"], []).append(
            (stay["entered_us"], stay["seq"], stay["stage"], stay["skipped"], stay["exited_us"])
        )
    for rows in by_lead.values():
        rows.sort()
    return by_lead


class DurationDelta:
    """The change re-derivations make to ``rl_roll_dur`` and ``rl_dur_sample``."""

    def __init__(self) -> None:
        """Nothing changed yet."""
        self.sums: dict[DurKey, list[int]] = {}
        self.samples: Counter[SampleKey] = Counter()

    def update(
        self,
        by_lead: Mapping[str, Sequence[Stay]],
        leads: Mapping[Any, Mapping[Any, Any]],
        sign: int,
    ) -> None:
        """Add (``sign`` 1) or take out (-1) the durations of each lead's current rows."""
        for lead_id, rows in by_lead.items():
            lead = leads.get(lead_id)
            contact = None if lead is None else lead["first_contact_us"]
            samples = lead_durations(rows, contact)
            add_sums(self.sums, samples, sign)
            for key in sample_keys(samples, lead_id):
                self.samples[key] += sign

    def rows(self) -> tuple[list[dict[str, Any]], list[SampleKey], list[SampleKey]]:
        """The net sums as rows, and the samples to delete and to insert."""
        sums = [
            {**dict(zip(DUR_KEY, key, strict=True)), "n": n, "total": total}
            for key, (n, total) in sorted(self.sums.items())
            if n or total
        ]
        gone = sorted(key for key, n in self.samples.items() if n < 0)
        new = sorted(key for key, n in self.samples.items() if n > 0)
        self.sums.clear()
        self.samples.clear()
        return sums, gone, new
