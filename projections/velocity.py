"""Velocity: time in stage, age of open stays, stage-to-stage lag and sales cycle, in days.

Every measure is aggregated in SQL (count, mean, and nearest-rank median and p90 through window
functions). Definitions: docs/metrics.md, section "Velocity".
"""

from __future__ import annotations

import sqlalchemy as sa

from projections.reading import Reader
from projections.report import Report
from projections.stages import PROGRESSION, next_stage
from projections.window import DAY_US, Window

Durations = sa.Subquery  # columns: idx, grp, key, dur (microseconds)


def _summarise(reader: Reader, window: Window, measure: str, build: object) -> list[list[object]]:
    """Run ``build(periods) -> Durations`` and reduce each (period, group, key) to statistics."""

    def query(periods: sa.CTE) -> sa.Select[tuple[object, ...]]:
        durations: Durations = build(periods)  # type: ignore[operator]
        part = (durations.c.idx, durations.c.grp, durations.c.key)
        ranked = sa.select(
            *part,
            durations.c.dur,
            sa.func.row_number().over(partition_by=part, order_by=durations.c.dur).label("rn"),
            sa.func.count().over(partition_by=part).label("n"),
        ).subquery("ranked")
        n, rn, dur = ranked.c.n, ranked.c.rn, ranked.c.dur
        return sa.select(
            ranked.c.idx,
            ranked.c.grp,
            ranked.c.key,
            sa.func.max(n),
            sa.func.avg(dur),
            sa.func.max(sa.case((rn == (n + 1) // 2, dur))),
            sa.func.max(sa.case((rn == (9 * n + 9) // 10, dur))),
        ).group_by(ranked.c.idx, ranked.c.grp, ranked.c.key)

    return [
        [idx, g, measure, key, int(n), float(mean) / DAY_US, median / DAY_US, p90 / DAY_US]
        for idx, g, key, n, mean, median, p90 in reader.per_period(window, query)
    ]


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
                stay.c.stage.label("key"),
                (stay.c.exited_us - stay.c.entered_us).label("dur"),
            )
            .select_from(source)
            .where(window.known(stay), stage_filter)
            .subquery()
        )

    def open_age(periods: sa.CTE) -> Durations:
        source = reader.with_lead(window, stay, stay.c.lead_id).join(
            periods,
            sa.and_(stay.c.entered_us < periods.c.p_end, stay.c.exited_us >= periods.c.p_end),
        )
        return (
            sa.select(
                periods.c.idx,
                grp,
                stay.c.stage.label("key"),
                (periods.c.p_end - stay.c.entered_us).label("dur"),
            )
            .select_from(source)
            .where(window.known(stay), stage_filter)
            .subquery()
        )

    rows = _summarise(reader, window, "time_in_stage", completed)
    rows += _summarise(reader, window, "open_age", open_age)
    for source in PROGRESSION[:-1]:
        target = next_stage(source)
        assert target is not None
        if wanted in (None, source, target):
            rows += _summarise(reader, window, "lag", _firsts(reader, window, source, target))
    if wanted in (None, "won"):
        rows += _summarise(reader, window, "sales_cycle", _firsts(reader, window, None, "won"))
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


def _firsts(reader: Reader, window: Window, source: str | None, target: str) -> object:
    """Durations from the first entry into ``source`` (first contact if None) to first reaching ``target``.

    Bucketed by the period in which ``target`` is first reached; leads that reached ``target``
    before ``source`` are left out.
    """
    stay, lead = reader.tables["stay"], reader.tables["lead"]
    reaches = sa.or_(stay.c.stage == target, stay.c.skipped.contains(f",{target},"))
    first_target = sa.func.min(sa.case((reaches, stay.c.entered_us))).label("t1")
    firsts = sa.select(stay.c.lead_id, first_target).where(
        window.known(stay), stay.c.entered_us < window.cap
    )
    if source is None:
        firsts = firsts.add_columns(sa.func.min(lead.c.first_contact_us).label("t0")).join(
            lead, sa.and_(lead.c.lead_id == stay.c.lead_id, window.known(lead))
        )
    else:
        firsts = firsts.add_columns(
            sa.func.min(sa.case((stay.c.stage == source, stay.c.entered_us))).label("t0")
        )
    per_lead = firsts.group_by(stay.c.lead_id).subquery("firsts")
    key = f"{source}->{target}" if source else target
    grp = reader.group(window)

    def build(periods: sa.CTE) -> Durations:
        source_ = reader.with_lead(window, per_lead, per_lead.c.lead_id).join(
            periods, sa.and_(per_lead.c.t1 >= periods.c.p_start, per_lead.c.t1 < periods.c.p_end)
        )
        return (
            sa.select(
                periods.c.idx,
                grp,
                sa.literal(key).label("key"),
                (per_lead.c.t1 - per_lead.c.t0).label("dur"),
            )
            .select_from(source_)
            .where(per_lead.c.t0.is_not(None), per_lead.c.t1 >= per_lead.c.t0)
            .subquery()
        )

    return build
