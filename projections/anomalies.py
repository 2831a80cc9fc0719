"""Anomalies: per lead, every move or fact that breaks the funnel's expected shape.

Kinds and their exact conditions: docs/metrics.md, section "Anomalies".
"""

from __future__ import annotations

from projections.gc_pause import without_gc
from projections.periods import from_us
from projections.reading import Reader
from projections.report import Report
from projections.window import Window


@without_gc
def anomalies(reader: Reader, window: Window) -> Report:
    """Every anomaly whose business time falls in the report's periods, oldest first.

    One row object per anomaly (tens of thousands at 10M events): the cyclic collector would
    keep re-scanning them as they are made, a fifth of the report's time, so it is paused.
    """
    anomaly = reader.tables["anomaly"]
    grp = reader.group(window)
    by = window.options.by
    if not window.periods:
        return Report("Anomalies", _columns(by), notes=window.notes())
    c = anomaly.c
    columns = (c.at_us, c.lead_id, c.seq, grp, c.kind, c.stage, c.detail, c.source, c.source_id)
    # Ties in time go by lead and seq, the lead in code-point order on both databases.
    lead = c.lead_id.collate("C") if reader.engine.dialect.name == "postgresql" else c.lead_id
    query = (
        reader.known_rows(window, anomaly, *columns)
        .where(c.at_us >= window.periods[0].start, c.at_us < window.periods[-1].end)
        .order_by(c.at_us, lead, c.seq)
    )
    if window.options.stage:
        query = query.where(c.stage == window.options.stage)
    labels = [period.label for period in window.periods]
    ends = [period.end for period in window.periods]
    report = Report("Anomalies", _columns(by), notes=window.notes())
    rows = report.rows
    index = 0  # the rows come in time order, and the periods are contiguous
    for at, lead_id, _, g, *rest in reader.rows(query):
        while at >= ends[index]:
            index += 1
        if by:
            rows.append([labels[index], from_us(at), lead_id, g, *rest])
        else:
            rows.append([labels[index], from_us(at), lead_id, *rest])
    return report


def _columns(by: str | None) -> list[str]:
    """The report's columns, with the ``--by`` dimension after the lead."""
    return [
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
