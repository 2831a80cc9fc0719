"""Flow: the stage transitions in each period, and start/inflow/outflow/end per stage.

Definitions: docs/metrics.md, section "Flow". ``end = start + inflow - outflow`` holds for
every stage and period because every transition is the entry of exactly one stay.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa

from projections import balances
from projections.inventory import Counts, lead_inventory, stage_order
from projections.reading import Reader
from projections.report import Report
from projections.stages import BACKWARD, NEW, SKIP
from projections.window import Window

NEW_LEAD = "(new)"


@dataclass(frozen=True)
class Transition:
    """One kind of move counted in one period and group."""

    idx: int
    group: str
    source: str  # the previous stage, or (new) for a lead's first stage
    target: str
    move: str  # new, forward, skip, backward, side
    reentry: bool


def transitions(reader: Reader, window: Window) -> Counter[Transition]:
    """Transitions (stay entries) per period: entered_us in [period start, period end)."""
    if balances.usable(reader, window):
        return _rolled_up_transitions(balances.balances(reader, window))
    stay = reader.tables["stay"]
    grp = reader.group(window)

    def build(periods: sa.CTE) -> sa.Select[tuple[int, str, str | None, str, str, bool, int]]:
        source = reader.with_lead(window, stay, stay.c.lead_id).join(
            periods,
            sa.and_(stay.c.entered_us >= periods.c.p_start, stay.c.entered_us < periods.c.p_end),
        )
        columns = (periods.c.idx, grp, stay.c.prev_stage, stay.c.stage, stay.c.move, stay.c.reentry)
        return (
            sa.select(*columns, sa.func.count())
            .select_from(source)
            .where(window.known(stay))
            .group_by(*columns)
        )

    out: Counter[Transition] = Counter()
    for idx, g, prev, stage, move, reentry, n in reader.per_period(window, build):
        out[Transition(idx, g, prev or NEW_LEAD, stage, move, bool(reentry))] += n
    return out


@dataclass
class StageFlow:
    """The balance of one stage over one period."""

    start: int = 0
    inflow: int = 0
    outflow: int = 0
    end: int = 0
    new: int = 0
    backward_in: int = 0
    skips_in: int = 0
    reentries: int = 0


def _rolled_up_transitions(found: balances.Balances) -> Counter[Transition]:
    out: Counter[Transition] = Counter()
    for idx, sums in enumerate(found.periods):
        for (g, prev, stage, move, reentry), n in sums.entries.items():
            if n:
                out[Transition(idx, g, prev or NEW_LEAD, stage, move, reentry)] += n
    return out


def stage_flows(reader: Reader, window: Window) -> dict[tuple[int, str, str], StageFlow]:
    """Start, inflow, outflow and end of every (period, group, stage)."""
    if balances.usable(reader, window):
        found = balances.balances(reader, window)  # one pass serves all three
        starts: Counts = _by_period(found.at_start)
        ends: Counts = _by_period(found.at_end)
        moves = _rolled_up_transitions(found)
    else:
        starts = lead_inventory(reader, window, at_start=True)
        ends = lead_inventory(reader, window)
        moves = transitions(reader, window)
    flows: dict[tuple[int, str, str], StageFlow] = {}
    for key, n in starts.items():
        flows.setdefault(key, StageFlow()).start = n
    for key, n in ends.items():
        flows.setdefault(key, StageFlow()).end = n
    for t, n in moves.items():
        into = flows.setdefault((t.idx, t.group, t.target), StageFlow())
        into.inflow += n
        into.new += n if t.move == NEW else 0
        into.backward_in += n if t.move == BACKWARD else 0
        into.skips_in += n if t.move == SKIP else 0
        into.reentries += n if t.reentry else 0
        if t.source != NEW_LEAD:
            flows.setdefault((t.idx, t.group, t.source), StageFlow()).outflow += n
    return flows


def _by_period(counts: list[Counter[tuple[str, str]]]) -> Counts:
    return {(idx, g, stage): n for idx, c in enumerate(counts) for (g, stage), n in c.items()}


def flow(reader: Reader, window: Window) -> Report:
    """The flow report: per-stage balances, or with ``matrix`` the from->to transitions."""
    if window.options.matrix:
        return _matrix(reader, window)
    by, wanted = window.options.by, window.options.stage
    flows = stage_flows(reader, window.without_stage())
    columns = [
        "period",
        *([by] if by else []),
        "stage",
        "start",
        "inflow",
        "outflow",
        "end",
        "new",
        "backward_in",
        "skips_in",
        "reentries",
    ]
    report = Report(f"Stage flow per {window.options.calendar.kind}", columns, notes=window.notes())
    stages = [s for s in stage_order({s for _, _, s in flows}) if wanted in (None, s)]
    groups = sorted({g for _, g, _ in flows}) or [""]
    for idx, period in enumerate(window.periods):
        for g in groups:
            for stage in stages:
                f = flows.get((idx, g, stage), StageFlow())
                report.rows.append(
                    [
                        period.label,
                        *([g] if by else []),
                        stage,
                        f.start,
                        f.inflow,
                        f.outflow,
                        f.end,
                        f.new,
                        f.backward_in,
                        f.skips_in,
                        f.reentries,
                    ]
                )
    return report


def _matrix(reader: Reader, window: Window) -> Report:
    by, wanted = window.options.by, window.options.stage
    moves = transitions(reader, window.without_stage())
    totals: Counter[tuple[int, str, str, str, str]] = Counter()
    reentries: Counter[tuple[int, str, str, str, str]] = Counter()
    for t, n in moves.items():
        if wanted in (None, t.source, t.target):
            totals[(t.idx, t.group, t.source, t.target, t.move)] += n
            reentries[(t.idx, t.group, t.source, t.target, t.move)] += n if t.reentry else 0
    columns = [
        "period",
        *([by] if by else []),
        "from_stage",
        "to_stage",
        "move",
        "count",
        "reentries",
    ]
    report = Report(
        f"Stage transitions per {window.options.calendar.kind}", columns, notes=window.notes()
    )
    for key in sorted(totals):
        idx, g, source, target, move = key
        report.rows.append(
            [
                window.periods[idx].label,
                *([g] if by else []),
                source,
                target,
                move,
                totals[key],
                reentries[key],
            ]
        )
    return report
