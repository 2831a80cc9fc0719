"""Conversion: cohort-based (of those entering A in a period, who reached B) and period-based.

Definitions: docs/metrics.md, section "Conversion".
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from projections.balances import usable
from projections.flow import stage_flows, transitions
from projections.reading import Reader
from projections.report import Report
from projections.rollup import PREV_HORIZON
from projections.schema import COHORT_WITHIN
from projections.stages import (
    FORWARD,
    PROGRESSION,
    SKIP,
    first_reaches,
    later_stages,
    next_stage,
)
from projections.window import DAY_US, PeriodIndex, Window


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _sources(window: Window) -> list[str]:
    wanted = window.options.stage
    return [s for s in PROGRESSION[:-1] if wanted in (None, s)]


def cohort(reader: Reader, window: Window) -> Report:
    """Cohort conversion A -> B for every later B (next step and cumulative), per period."""
    by, within = window.options.by, window.options.within
    columns = [
        "period",
        *([by] if by else []),
        "from_stage",
        "to_stage",
        "step",
        "cohort",
        f"reached_{within}d",
        f"rate_{within}d",
        "reached_ever",
        "rate_ever",
        "via_skip",
    ]
    report = Report(
        f"Cohort conversion per {window.options.calendar.kind}", columns, notes=window.notes()
    )
    cohorts = _cohorts(reader, window, _sources(window))
    for (source, idx, g), (size, counts) in cohorts.items():
        targets = later_stages(source)
        for target, (near, ever, skipped) in zip(targets, counts, strict=True):
            step = "next" if target == next_stage(source) else "cumulative"
            report.rows.append(
                [
                    window.periods[idx].label,
                    *([g] if by else []),
                    source,
                    target,
                    step,
                    size,
                    near,
                    _rate(near, size),
                    ever,
                    _rate(ever, size),
                    skipped,
                ]
            )
    report.rows.sort(key=lambda row: (row[0], *row[1 : 3 if by else 2]))
    return report


Cohorts = dict[tuple[str, int, str], list[Any]]  # (source, period, group) -> [size, counts]
Row = tuple[str, str, int, int, str, str]  # lead, group, entered, seq, stage, skipped (",a,")


def _tally(
    counts: list[list[int]], later: list[Row], t0: int, where: dict[str, int], limit: int
) -> None:
    """Count one cohort member entered at ``t0``, given its stays from ``t0`` on, in order.

    ``where``: the position in ``counts`` of each later stage the member can reach.
    """
    reached, direct = first_reaches((at, stage, skipped) for _, _, at, _, stage, skipped in later)
    for stage, first in reached.items():
        position = where.get(stage)
        if position is not None:
            cell = counts[position]
            cell[0] += first - t0 <= limit
            cell[1] += 1
            cell[2] += stage not in direct


def _cohorts(reader: Reader, window: Window, sources: list[str]) -> Cohorts:
    """Per source stage, period and group: the cohort's size and, per later stage, who reached it.

    For each later stage: how many reached it within the window's days, ever (before the cap),
    and only by skipping it (no direct entry at or after the cohort entry). A cohort entry and
    every stay that can count after it were entered between the first period's start and the
    cap, so one read of those stays, a lead at a time, serves every source stage.

    With the roll-up (:func:`_rollable`): its sums, which count every later reach whatever its
    time; when some stay was entered at or after the cap, the leads with such a stay are read
    and counted twice, with every later stay (as the roll-up counted them) and with those
    before the cap only, and the difference is taken out (:func:`_capped`).
    """
    if not window.periods or not sources:
        return {}
    rollable = _rollable(reader, window)
    if rollable is not None:
        rolled = _rolled_cohorts(reader, window, sources)
        return rolled if rollable else _capped(reader, window, sources, rolled)
    stay = reader.tables["stay"]
    query = _stays(reader, window).where(stay.c.entered_us < window.cap)
    return _counted(reader.stream(query), window, sources, window.cap)


def _stays(reader: Reader, window: Window) -> sa.Select[Any]:
    """The stays (lead, group, entered, seq, stage, skipped) from the first period on, by lead."""
    stay = reader.tables["stay"]
    columns = (stay.c.entered_us, stay.c.seq, stay.c.stage, stay.c.skipped)
    return (
        reader.known_rows(window, stay, stay.c.lead_id, reader.group(window), *columns)
        .where(stay.c.entered_us >= window.periods[0].start)
        .order_by(stay.c.lead_id)
    )


def _capped(reader: Reader, window: Window, sources: list[str], rolled: Cohorts) -> Cohorts:
    """``rolled`` less what the leads with a stay at or after the cap reached only after it."""
    stay = reader.tables["stay"]
    later = sa.select(stay.c.lead_id).where(window.known(stay), stay.c.entered_us >= window.cap)
    rows = list(reader.stream(_stays(reader, window).where(stay.c.lead_id.in_(later))))
    for sign, cap in ((-1, None), (1, window.cap)):
        for key, (size, counts) in _counted(iter(rows), window, sources, cap).items():
            cohort = rolled.setdefault(key, [0, [[0, 0, 0] for _ in counts]])
            cohort[0] += sign * size
            for cell, delta in zip(cohort[1], counts, strict=True):
                for i, n in enumerate(delta):
                    cell[i] += sign * n
    return {key: cohort for key, cohort in rolled.items() if cohort[0]}


def _counted(rows: Iterator[Any], window: Window, sources: list[str], cap: int | None) -> Cohorts:
    """:func:`_cohorts` of ``rows`` (:func:`_stays`, by lead), counting the stays before ``cap``.

    ``cap`` None: every stay counts as a later reach (members are the entries of the window's
    periods, which end at the cap, either way).
    """
    out: Cohorts = {}
    limit = window.options.within * DAY_US
    find = PeriodIndex(window)
    positions = {s: {t: i for i, t in enumerate(later_stages(s))} for s in sources}
    for _, lead_rows in itertools.groupby(rows, key=itemgetter(0)):
        stays: list[Row] = sorted(lead_rows, key=itemgetter(2, 3))  # business order
        if cap is not None:
            stays = [row for row in stays if row[2] < cap]
        seen: set[tuple[str, int]] = set()  # (source, period) whose first entry is counted
        for _, grp, t0, _, source, _ in stays:
            where = positions.get(source)
            if where is None:
                continue
            idx = find(t0)
            if idx is None or (source, idx) in seen:
                continue
            seen.add((source, idx))
            cohort = out.get((source, idx, grp))
            if cohort is None:
                cohort = out[source, idx, grp] = [0, [[0, 0, 0] for _ in where]]
            cohort[0] += 1
            if len(stays) > 1:  # else it reaches nothing but its own stage
                start = bisect.bisect_left(stays, t0, key=itemgetter(2))  # same instant: counts
                _tally(cohort[1], stays[start:], t0, where, limit)
    return out


def _rollable(reader: Reader, window: Window) -> bool | None:
    """Whether ``rl_roll_cohort`` answers ``window`` exactly; None: it cannot answer it at all.

    It holds the current knowledge, counts every later reach whatever its time, and keys
    entries by UTC day. So: no ``--known-at``; a ``--within`` whose counts it keeps; periods
    that start and end at UTC midnights. It answers exactly (True) when no stay was entered at
    or after the cap (a report up to now); otherwise (False) the reaches after the cap of the
    leads with such stays must be taken out (:func:`_capped`).
    """
    if not usable(reader, window) or window.options.within not in COHORT_WITHIN:
        return None
    bounds = {window.cap, *(p.start for p in window.periods), *(p.end for p in window.periods)}
    if any(bound % DAY_US for bound in bounds):
        return None
    if any(p.end - p.start > PREV_HORIZON * DAY_US for p in window.periods):
        return None  # the roll-up keeps only the entries before within a quarter exact
    stay = reader.tables["stay"]
    latest = reader.rows(sa.select(sa.func.max(stay.c.entered_us)).where(window.known(stay)))
    return latest[0][0] is None or latest[0][0] < window.cap


def _rolled_cohorts(reader: Reader, window: Window, sources: list[str]) -> Cohorts:
    """:func:`_cohorts` from ``rl_roll_cohort``, one grouped range per period.

    A period's members are the entries of its days whose lead's entry into the same stage before
    falls before the period (or that have none); their target rows hold what they reached.
    """
    roll = reader.tables["roll_cohort"]
    near = roll.c[f"w{window.options.within}"]
    dim = window.options.by or ""
    positions = {s: {t: i for i, t in enumerate(later_stages(s))} for s in sources}
    out: Cohorts = {}
    for indexes in window.chunks():
        selects = []
        for idx in indexes:
            start, end = (window.periods[idx].start // DAY_US, window.periods[idx].end // DAY_US)
            selects.append(
                sa.select(
                    sa.literal(idx, sa.Integer).label("idx"),
                    roll.c.value,
                    roll.c.source,
                    roll.c.target,
                    sa.func.sum(roll.c.n),
                    sa.func.sum(near),
                    sa.func.sum(roll.c.skip),
                )
                .where(
                    roll.c.dim == dim,
                    roll.c.source.in_(sources),
                    roll.c.day >= start,
                    roll.c.day < end,
                    roll.c.prev < start,
                )
                .group_by(roll.c.value, roll.c.source, roll.c.target)
            )
        query = selects[0] if len(selects) == 1 else sa.union_all(*selects)
        rows = sorted(reader.rows(query), key=lambda row: row[3] != "")  # members first
        for idx, value, source, target, ever, within, skipped in rows:
            if target == "":
                out[source, idx, value] = [int(ever), [[0, 0, 0] for _ in positions[source]]]
                continue
            cell = out[source, idx, value][1][positions[source][target]]
            cell[:] = [int(within), int(ever), int(skipped)]
    return out


def period_based(reader: Reader, window: Window) -> Report:
    """Period conversion: moves A -> next(A) (and any forward move) / (start + inflow) of A."""
    by = window.options.by
    whole = window.without_stage()
    flows = stage_flows(reader, whole)
    moves = transitions(reader, whole)
    columns = [
        "period",
        *([by] if by else []),
        "from_stage",
        "to_stage",
        "start",
        "inflow",
        "to_next",
        "rate_next",
        "forward",
        "rate_forward",
        "cumulative_rate",
    ]
    report = Report(
        f"Period conversion per {window.options.calendar.kind}", columns, notes=window.notes()
    )
    groups = sorted({g for _, g, _ in flows}) or [""]
    for idx, period in enumerate(window.periods):
        for g in groups:
            cumulative: float | None = 1.0
            for source in PROGRESSION[:-1]:
                f = flows.get((idx, g, source))
                base = (f.start + f.inflow) if f else 0
                onward = {
                    t: n
                    for t, n in moves.items()
                    if (t.idx, t.group, t.source) == (idx, g, source)
                    and t.move in {FORWARD, SKIP}
                    and t.target != "lost"
                }
                direct = sum(n for t, n in onward.items() if t.target == next_stage(source))
                forward = sum(onward.values())
                rate = _rate(forward, base)
                cumulative = (
                    cumulative * rate if cumulative is not None and rate is not None else None
                )
                if window.options.stage in (None, source):
                    report.rows.append(
                        [
                            period.label,
                            *([g] if by else []),
                            source,
                            next_stage(source),
                            base - (f.inflow if f else 0),
                            f.inflow if f else 0,
                            direct,
                            _rate(direct, base),
                            forward,
                            rate,
                            cumulative,
                        ]
                    )
    return report


def conversion(reader: Reader, window: Window) -> Report:
    """The conversion report on the basis the options ask for (cohort by default)."""
    return (
        cohort(reader, window) if window.options.basis == "cohort" else period_based(reader, window)
    )
