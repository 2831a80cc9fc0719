"""Anomalies: per lead, every move or fact that breaks the funnel's expected shape.

Kinds and their exact conditions: docs/metrics.md, section "Anomalies".
"""

from __future__ import annotations

import sqlalchemy as sa

from projections.periods import from_us
from projections.reading import Reader
from projections.report import Report
from projections.window import Window


def anomalies(reader: Reader, window: Window) -> Report:
    """Every anomaly whose business time falls in the report's periods, oldest first."""
    anomaly = reader.tables["anomaly"]
    grp = reader.group(window)
    by = window.options.by

    def build(periods: sa.CTE) -> sa.Select[tuple[object, ...]]:
        source = reader.with_lead(window, anomaly, anomaly.c.lead_id).join(
            periods,
            sa.and_(anomaly.c.at_us >= periods.c.p_start, anomaly.c.at_us < periods.c.p_end),
        )
        query = (
            sa.select(
                periods.c.idx,
                anomaly.c.at_us,
                anomaly.c.lead_id,
                grp,
                anomaly.c.seq,
                anomaly.c.kind,
                anomaly.c.stage,
                anomaly.c.detail,
                anomaly.c.source,
                anomaly.c.source_id,
            )
            .select_from(source)
            .where(window.known(anomaly))
        )
        if window.options.stage:
            query = query.where(anomaly.c.stage == window.options.stage)
        return query

    rows = sorted(reader.per_period(window, build), key=lambda r: (r.at_us, r.lead_id, r.seq))
    columns = [
        "period",
        "at",
        "lead_id",
        *([by] if by else []),
        "kind",
        "stage",
        "detail",
        "source",
        "source_id",
    ]
    report = Report("Anomalies", columns, notes=window.notes())
    for r in rows:
        report.rows.append(
            [
                window.periods[r.idx].label,
                from_us(r.at_us),
                r.lead_id,
                *([r.grp] if by else []),
                r.kind,
                r.stage,
                r.detail,
                r.source,
                r.source_id,
            ]
        )
    return report
