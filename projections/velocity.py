"""Velocity: time in stage, age of open stays, stage-to-stage lag and sales cycle, in days.

SQL selects each measure's durations; they are counted, averaged and ranked (nearest-rank median
and p90) here. Definitions: docs/metrics.md, section "Velocity".
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sortedcontainers import SortedList

from projections.reading import Reader
from projections.report import Report
from projections.stages import PROGRESSION
from projections.window import DAY_US, PeriodIndex, Window

Samples = dict[tuple[int, str, str, str], list[int]]  # (period, group, measure, key) -> µs


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
    stage_filter = reader.tables["stay"].c.stage == wanted if wanted else sa.true()
    rows = _ranked(_completed(reader, window, stage_filter))
    rows += _open_ages(reader, window, stage_filter)
    lags = [
        (source, target)
        for source, target in itertools.pairwise(PROGRESSION)
        if wanted in (None, source, target)
    ]
    cycle = wanted in (None, "won")
    if lags or cycle:
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
    query = _stays(reader, window, stage_filter, stay.c.entered_us < ends[-1])
    query = query.where(stay.c.exited_us >= ends[0])
    entries: dict[tuple[str, str], list[int]] = defaultdict(list)
    exits: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for grp, stage, entered, exited in reader.stream(query):
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


def _completed(reader: Reader, window: Window, stage_filter: sa.ColumnElement[bool]) -> Samples:
    """Time in stage of the stays completed in each period (``start <= exited < end``)."""
    if not window.periods:
        return {}
    exited = reader.tables["stay"].c.exited_us
    query = _stays(reader, window, stage_filter, exited >= window.periods[0].start)
    query = query.where(exited < window.periods[-1].end)
    find = PeriodIndex(window)
    samples: Samples = defaultdict(list)
    for grp, stage, entered, exited in reader.stream(query):
        idx = find(exited)
        if idx is not None:
            samples[idx, grp, "time_in_stage", stage].append(exited - entered)
    return samples


def _lags(reader: Reader, window: Window, lags: list[tuple[str, str]], *, cycle: bool) -> Samples:
    """Lags A->B and the sales cycle, in the period of the first reach of B (``won``).

    A lag runs from the first entry into A to the first reach of B; the cycle from the first
    contact to the first reach of ``won``. Every lead's first entries and first reaches come
    from one grouped query over the stays of the leads that entered a stay in the window (the
    others' first reaches all precede it); leads that reached B before A are left out.
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
    source: sa.FromClause = stay
    if cycle:
        columns.append(sa.func.min(lead.c.first_contact_us).label("contact"))
        source = stay.outerjoin(lead, sa.and_(lead.c.lead_id == stay.c.lead_id, window.known(lead)))
    recent = stay.alias("recent")
    active = sa.select(recent.c.lead_id).where(
        window.known(recent),
        recent.c.entered_us >= window.periods[0].start,
        recent.c.entered_us < window.cap,
    )
    per_lead = (
        sa.select(*columns)
        .select_from(source)
        .where(window.known(stay), stay.c.entered_us < window.cap, stay.c.lead_id.in_(active))
        .group_by(stay.c.lead_id)
        .subquery("firsts")
    )
    query = sa.select(reader.group(window), *list(per_lead.c)[1:]).select_from(
        reader.with_lead(window, per_lead, per_lead.c.lead_id)
    )
    at = {column.name: i for i, column in enumerate(per_lead.c)}  # the group takes lead_id's 0
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
