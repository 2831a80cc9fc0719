"""Velocity: time in stage, age of open stays, stage-to-stage lag and sales cycle, in days.

SQL selects each measure's durations; they are counted, averaged and ranked (nearest-rank median
and p90) here. Definitions: docs/metrics.md, section "Velocity".
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Callable

import sqlalchemy as sa
from sortedcontainers import SortedList

from projections.reading import Reader
from projections.report import Report
from projections.stages import PROGRESSION
from projections.window import DAY_US, Window

Durations = sa.Subquery  # columns: idx, grp, measure, key, dur (microseconds)


def _statistics(n: int, total: int, median: int, p90: int) -> list[object]:
    """Count, mean, median and p90 in days, from microsecond totals and nearest-rank values."""
    return [n, total / n / DAY_US, median / DAY_US, p90 / DAY_US]


def _summarise(
    reader: Reader, window: Window, build: Callable[[sa.CTE], Durations]
) -> list[list[object]]:
    """Run ``build(periods)`` and reduce each (period, group, measure, key) to statistics.

    The durations are ranked here rather than with SQL window functions: reading them and
    sorting each group's integers costs a fraction of ranking them in the database.
    """

    def query(periods: sa.CTE) -> sa.Select[tuple[object, ...]]:
        durations = build(periods)
        return sa.select(
            durations.c.idx, durations.c.grp, durations.c.measure, durations.c.key, durations.c.dur
        )

    samples: dict[tuple[int, str, str, str], list[int]] = defaultdict(list)
    for idx, grp, measure, key, dur in reader.per_period(window, query):
        samples[int(idx), grp, measure, key].append(int(dur))
    rows: list[list[object]] = []
    for (idx, grp, measure, key), durations in samples.items():
        durations.sort()
        n = len(durations)
        median, p90 = durations[(n + 1) // 2 - 1], durations[(9 * n + 9) // 10 - 1]
        rows.append([idx, grp, measure, key, *_statistics(n, sum(durations), median, p90)])
    return rows


def velocity(reader: Reader, window: Window) -> Report:
    """Time in stage, open-stay age, stage-to-stage lag and sales cycle per period."""
    stay = reader.tables["stay"]
    grp = reader.group(window)
    wanted = window.options.stage
    stage_filter = stay.c.stage == wanted if wanted else sa.true()

    def completed(periods: sa.CTE) -> Durations:
        source = reader.with_lead(window, stay, stay.c.lead_id).join(
            periods,
            sa.and_(stay.c.exited_us >= periods.c.p_start, stay.c.exited_us < periods.c.p_end),
        )
        return (
            sa.select(
                periods.c.idx,
                grp,
                sa.literal("time_in_stage").label("measure"),
                stay.c.stage.label("key"),
                (stay.c.exited_us - stay.c.entered_us).label("dur"),
            )
            .select_from(source)
            .where(window.known(stay), stage_filter)
            .subquery()
        )

    rows = _summarise(reader, window, completed)
    rows += _open_ages(reader, window, stage_filter)
    lags = [
        (source, target)
        for source, target in itertools.pairwise(PROGRESSION)
        if wanted in (None, source, target)
    ]
    cycle = wanted in (None, "won")
    if lags or cycle:
        rows += _summarise(reader, window, _firsts(reader, window, lags, cycle=cycle))
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


def _open_ages(
    reader: Reader, window: Window, stage_filter: sa.ColumnElement[bool]
) -> list[list[object]]:
    """Age of the stays open at each period's end (``entered < end <= exited``), in one pass.

    Stays that are open at some period end are read once (entered before the last end, not
    exited before the first) instead of once per period: terminal stays (won, lost) never
    close, so they would be ranked again at every period end. Each group's stays are swept
    through the period ends in order, keeping the open stays' entry times in a sorted list: the
    k-th shortest age at ``end`` is ``end`` minus the k-th latest entry.
    """
    ends = [period.end for period in window.periods]
    if not ends:
        return []
    stay = reader.tables["stay"]
    query = (
        sa.select(reader.group(window), stay.c.stage, stay.c.entered_us, stay.c.exited_us)
        .select_from(reader.with_lead(window, stay, stay.c.lead_id))
        .where(
            window.known(stay),
            stage_filter,
            stay.c.entered_us < ends[-1],
            stay.c.exited_us >= ends[0],
        )
    )
    entries: dict[tuple[str, str], list[int]] = defaultdict(list)
    exits: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for grp, stage, entered, exited in reader.rows(query):
        entries[grp, stage].append(entered)
        if exited < ends[-1]:  # else still open at the last end: never leaves the sweep
            exits[grp, stage].append((exited, entered))
    rows: list[list[object]] = []
    for (grp, stage), entered in entries.items():
        entered.sort()
        leaving = sorted(exits[grp, stage])
        open_stays = SortedList()
        total = added = removed = 0
        for idx, end in enumerate(ends):
            upto = bisect.bisect_left(entered, end)
            open_stays.update(entered[added:upto])
            total += sum(entered[added:upto])
            added = upto
            while removed < len(leaving) and leaving[removed][0] < end:
                open_stays.remove(leaving[removed][1])
                total -= leaving[removed][1]
                removed += 1
            n = len(open_stays)
            if n:
                median = end - open_stays[n - (n + 1) // 2]
                p90 = end - open_stays[n - (9 * n + 9) // 10]
                statistics = _statistics(n, n * end - total, median, p90)
                rows.append([idx, grp, "open_age", stage, *statistics])
    return rows


def _firsts(
    reader: Reader, window: Window, lags: list[tuple[str, str]], *, cycle: bool
) -> Callable[[sa.CTE], Durations]:
    """Lags A->B and the sales cycle, bucketed by the period of the first reach of B (``won``).

    A lag runs from the first entry into A to the first reach of B; the cycle from the first
    contact to the first reach of ``won``. Every lead's first entries and first reaches come
    from one pass over the stays (one grouped query, used by every measure); leads that reached
    B before A are left out.
    """
    stay, lead = reader.tables["stay"], reader.tables["lead"]

    def reaches(stage: str) -> sa.ColumnElement[bool]:
        return sa.or_(stay.c.stage == stage, stay.c.skipped.contains(f",{stage},"))

    sources = sorted({source for source, _ in lags})
    targets = sorted({target for _, target in lags} | ({"won"} if cycle else set()))
    entered = {s: f"e{i}" for i, s in enumerate(sources)}
    reached = {t: f"r{i}" for i, t in enumerate(targets)}
    columns: list[sa.ColumnElement[object]] = [stay.c.lead_id]
    columns += [
        sa.func.min(sa.case((stay.c.stage == s, stay.c.entered_us))).label(entered[s])
        for s in sources
    ]
    columns += [
        sa.func.min(sa.case((reaches(t), stay.c.entered_us))).label(reached[t]) for t in targets
    ]
    source: sa.FromClause = stay
    if cycle:
        columns.append(sa.func.min(lead.c.first_contact_us).label("contact"))
        source = stay.outerjoin(lead, sa.and_(lead.c.lead_id == stay.c.lead_id, window.known(lead)))
    start = window.periods[0].start if window.periods else window.cap
    per_lead = (
        sa.select(*columns)
        .select_from(source)
        .where(window.known(stay), stay.c.entered_us < window.cap)
        .group_by(stay.c.lead_id)
        .having(sa.func.max(stay.c.entered_us) >= start)  # else every first reach precedes P
        .cte("firsts")
    )
    pairs = [(per_lead.c[entered[s]], per_lead.c[reached[t]], "lag", f"{s}->{t}") for s, t in lags]
    if cycle:
        pairs.append((per_lead.c.contact, per_lead.c[reached["won"]], "sales_cycle", "won"))
    grp = reader.group(window)

    def build(periods: sa.CTE) -> Durations:
        branches = [
            sa.select(
                periods.c.idx,
                grp,
                sa.literal(measure).label("measure"),
                sa.literal(key).label("key"),
                (t1 - t0).label("dur"),
            )
            .select_from(
                reader.with_lead(window, per_lead, per_lead.c.lead_id).join(
                    periods, sa.and_(t1 >= periods.c.p_start, t1 < periods.c.p_end)
                )
            )
            .where(t0.is_not(None), t1 >= t0)
            for t0, t1, measure, key in pairs
        ]
        return sa.union_all(*branches).subquery("durations")

    return build
