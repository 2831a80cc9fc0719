"""Inventory: how many leads are in each stage at each period end, and the open pipeline value.

Definitions: docs/metrics.md, sections "Inventory" and "Open pipeline value".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import sqlalchemy as sa

from projections import balances
from projections.opportunities import from_units
from projections.periods import from_us
from projections.reading import Reader
from projections.report import Report
from projections.stages import STAGES
from projections.window import Window

Counts = dict[tuple[int, str, str], int]  # (period index, group, stage) -> leads


def lead_inventory(reader: Reader, window: Window, *, at_start: bool = False) -> Counts:
    """inventory(stage, t) at each period's end (or start): stays with entered < t <= exited."""
    if balances.usable(reader, window):
        found = balances.balances(reader, window)
        wanted = window.options.stage
        return {
            (idx, g, stage): n
            for idx, counts in enumerate(found.at_start if at_start else found.at_end)
            for (g, stage), n in counts.items()
            if wanted in (None, stage)
        }
    stay = reader.tables["stay"]
    grp = reader.group(window)

    def build(periods: sa.CTE) -> sa.Select[tuple[int, str, str, int]]:
        instant = periods.c.p_start if at_start else periods.c.p_end
        source = reader.with_lead(window, stay, stay.c.lead_id).join(
            periods, sa.and_(stay.c.entered_us < instant, stay.c.exited_us >= instant)
        )
        query = (
            sa.select(periods.c.idx, grp, stay.c.stage, sa.func.count())
            .select_from(source)
            .where(window.known(stay))
            .group_by(periods.c.idx, grp, stay.c.stage)
        )
        if window.options.stage:
            query = query.where(stay.c.stage == window.options.stage)
        return query

    return {(idx, g, stage): n for idx, g, stage, n in reader.per_period(window, build)}


def stage_order(names: Iterable[str]) -> list[str]:
    """Known stages in funnel order, then any others alphabetically."""
    names = set(names)
    return [s for s in STAGES if s in names] + sorted(names - set(STAGES))


def inventory(reader: Reader, window: Window) -> Report:
    """Leads per stage at every period end, and open opportunities per stage (count and value)."""
    counts = lead_inventory(reader, window)
    by = window.options.by
    asked = {window.options.stage} if window.options.stage else set()
    stages = stage_order({s for _, _, s in counts} | asked)
    groups = sorted({g for _, g, _ in counts}) or [""]
    columns = [
        "period",
        "period_end",
        *([by] if by else []),
        "kind",
        "stage",
        "count",
        "value",
        "currency",
    ]
    report = Report(
        f"Inventory per {window.options.calendar.kind} end", columns, notes=window.notes()
    )
    pipeline = open_pipeline(reader, window) if not (by or window.options.stage) else {}
    for idx, period in enumerate(window.periods):
        end = from_us(period.end - 1).astimezone(window.options.calendar.tz).date()
        for g in groups:
            for stage in stages:
                n = counts.get((idx, g, stage), 0)
                report.rows.append(
                    [period.label, end, *([g] if by else []), "lead", stage, n, None, None]
                )
        for (i, stage, currency), (n, units) in sorted(pipeline.items()):
            if i == idx:
                row = [period.label, end, "opportunity", stage, n, from_units(units), currency]
                report.rows.append(row)
    return report


def open_pipeline(reader: Reader, window: Window) -> dict[tuple[int, str, str], tuple[int, int]]:
    """Open opportunities per (period, opportunity stage, currency): count and amount units."""
    if balances.usable(reader, window):
        return balances.open_pipeline(reader, window)
    opp = reader.tables["opp"]

    def build(periods: sa.CTE) -> sa.Select[tuple[int, str, str, int, int]]:
        joined = opp.join(
            periods,
            sa.and_(opp.c.valid_from_us < periods.c.p_end, opp.c.valid_to_us >= periods.c.p_end),
        )
        return (
            sa.select(
                periods.c.idx,
                opp.c.stage,
                opp.c.currency,
                sa.func.count(),
                sa.func.sum(opp.c.amount_units),
            )
            .select_from(joined)
            .where(window.known(opp), opp.c.is_open.is_(True))
            .group_by(periods.c.idx, opp.c.stage, opp.c.currency)
        )

    out: dict[tuple[int, str, str], tuple[int, int]] = defaultdict(lambda: (0, 0))
    for idx, stage, currency, n, units in reader.per_period(window, build):
        out[(idx, stage, currency)] = (n, int(units))
    return dict(out)
