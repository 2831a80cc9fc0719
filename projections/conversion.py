"""Conversion: cohort-based (of those entering A in a period, who reached B) and period-based.

Definitions: docs/metrics.md, section "Conversion".
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from projections.flow import stage_flows, transitions
from projections.reading import Reader
from projections.report import Report
from projections.stages import FORWARD, PROGRESSION, SKIP, later_stages, next_stage
from projections.window import DAY_US, Window


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
    for source in _sources(window):
        targets = later_stages(source)
        for idx, g, size, counts in _cohort_counts(reader, window, source, targets):
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


def _cohort_counts(
    reader: Reader, window: Window, source: str, targets: tuple[str, ...]
) -> list[tuple[int, str, int, list[tuple[int, int, int]]]]:
    """Per period and group: the cohort entering ``source`` and, per target, who reached it.

    For each of ``targets``: how many reached it within the window's days, ever, and only by
    skipping it. One query for every target: each cohort member's later stays are read once.
    """
    stay, later = reader.tables["stay"], reader.tables["stay"].alias("later")
    grp = reader.group(window)
    limit = window.options.within * DAY_US
    one = sa.literal(1)

    def build(periods: sa.CTE) -> sa.Select[tuple[object, ...]]:
        entered = (
            sa.select(
                periods.c.idx, grp, stay.c.lead_id, sa.func.min(stay.c.entered_us).label("t0")
            )
            .select_from(
                reader.with_lead(window, stay, stay.c.lead_id).join(
                    periods,
                    sa.and_(
                        stay.c.entered_us >= periods.c.p_start, stay.c.entered_us < periods.c.p_end
                    ),
                )
            )
            .where(window.known(stay), stay.c.stage == source)
            .group_by(periods.c.idx, grp, stay.c.lead_id)
            .subquery("entered")
        )
        firsts: list[sa.ColumnElement[object]] = []
        for i, target in enumerate(targets):
            reaches = sa.or_(later.c.stage == target, later.c.skipped.contains(f",{target},"))
            firsts.append(sa.func.min(sa.case((reaches, later.c.entered_us))).label(f"r{i}"))
            direct = sa.case((later.c.stage == target, later.c.entered_us))
            firsts.append(sa.func.min(direct).label(f"d{i}"))
        reached = (
            sa.select(entered.c.idx, entered.c.grp, entered.c.t0, *firsts)
            .select_from(
                entered.outerjoin(
                    later,
                    sa.and_(
                        later.c.lead_id == entered.c.lead_id,
                        window.known(later),
                        later.c.entered_us >= entered.c.t0,
                        later.c.entered_us < window.cap,
                    ),
                )
            )
            .group_by(entered.c.idx, entered.c.grp, entered.c.lead_id, entered.c.t0)
            .subquery("reached")
        )
        counts: list[sa.ColumnElement[Any]] = []
        for i in range(len(targets)):
            t1, first_direct = reached.c[f"r{i}"], reached.c[f"d{i}"]
            near = sa.case((t1 - reached.c.t0 <= limit, one), else_=0)
            skipped = sa.case((sa.and_(t1.is_not(None), first_direct.is_(None)), one), else_=0)
            counts += [
                sa.func.coalesce(sa.func.sum(near), 0),
                sa.func.count(t1),
                sa.func.coalesce(sa.func.sum(skipped), 0),
            ]
        return sa.select(reached.c.idx, reached.c.grp, sa.func.count(), *counts).group_by(
            reached.c.idx, reached.c.grp
        )

    out = []
    for idx, g, size, *values in reader.per_period(window, build):
        numbers = [int(v) for v in values]
        triples = [tuple(numbers[i : i + 3]) for i in range(0, len(numbers), 3)]
        out.append((int(idx), g, int(size), triples))
    return out  # type: ignore[return-value]


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
