"""Anomalies: per lead, every move or fact that breaks the funnel's expected shape.

Kinds and their exact conditions: docs/metrics.md, section "Anomalies".
"""

from __future__ import annotations

from operator import itemgetter

from projections.gc_pause import without_gc
from projections.periods import from_us
from projections.reading import Reader
from projections.report import Report
from projections.window import PeriodIndex, Window


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
    query = (
        reader.known_rows(window, anomaly, *columns)
        .where(c.at_us >= window.periods[0].start, c.at_us < window.periods[-1].end)
        .order_by(c.at_us)  # then by lead and seq below, in code-point order everywhere
    )
    if window.options.stage:
        query = query.where(c.stage == window.options.stage)
    find = PeriodIndex(window)
    labels = [period.label for period in window.periods]
    report = Report("Anomalies", _columns(by), notes=window.notes())
    for at, lead_id, _, g, *rest in sorted(reader.rows(query), key=itemgetter(0, 1, 2)):
        idx = find(at)
        if idx is not None:  # always: the periods are contiguous
            report.rows.append([labels[idx], from_us(at), lead_id, *([g] if by else []), *rest])
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
