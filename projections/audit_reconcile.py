"""Reconcile marketing's number with sales' number for a period, lead by lead.

- **marketing**: leads handed off to sales (``handed_off``) in the period;
- **sales**: leads accepted (``lead_accepted``) in the period.

Every lead in either count lands in exactly one class (docs/definitions.md, "Reconcile"):
``matched`` (in both), one of the marketing-only classes, tried in this order after the lead's
first hand-off in the period — ``duplicate`` (rejected or disqualified as a duplicate),
``accepted after the period``, ``rejected: <reason>``, ``not acted on within SLA`` (no sales
activity within the SLA of the definition in force at the hand-off), ``disqualified``,
``recycled``, ``still pending`` — or one of the sales-only classes: ``handed off before the
period`` or ``never handed off``. Hence marketing = matched + marketing-only classes and
sales = matched + sales-only classes, exactly.

The leads' facts are not read: each lead's hand-offs, with what followed each of them, and its
acceptances are projected rows (``rl_handoff``, ``rl_accept``; :mod:`projections.leads`), as
known now, each naming its neighbours. A lead's first hand-off in the period is the row in the
period whose previous hand-off is before it; the lead was accepted in the period when the first
acceptance at or after that hand-off is before the end, or the last one before it is in the
period; a lead accepted in the period but not handed off in it is the row of its first
acceptance in the period whose hand-offs around it are both outside the period. So the database
classifies every lead reading one range of each table (:func:`classified`), and the summary
(:func:`read_summary`) sends back only the classes' counts.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from projections.periods import FOREVER, from_us
from projections.report import Report
from projections.schema import Tables

MATCHED = "matched"
MARKETING_ONLY = "marketing only"
SALES_ONLY = "sales only"
DEFAULT_SLA = timedelta(hours=24)
DEFAULT_SLA_US = DEFAULT_SLA // timedelta(microseconds=1)


@dataclass(frozen=True)
class Placement:
    """Where one lead lands: its side, its class, and its first hand-off in the period."""

    lead_id: str
    side: str
    reason: str
    handed_off_at: datetime | None


def sla_at(at: int, slas: Sequence[tuple[int, int]], default_sla: int) -> int:
    """The SLA in force at ``at``: :func:`sla_in_force`, in Python (microseconds)."""
    index = bisect_right(slas, at, key=itemgetter(0))  # the last one in force by then
    return slas[index - 1][1] if index else default_sla


def sla_in_force(
    at: sa.ColumnElement[int], slas: Sequence[tuple[int, int]], default_sla: int
) -> sa.ColumnElement[int]:
    """The SLA in force at ``at``, in SQL: ``slas`` (from, SLA) in the order they take effect.

    The last one taken effect by ``at`` is in force, ``default_sla`` before any (microseconds).
    """
    if not slas:
        return sa.literal(default_sla)
    return sa.case(*((at >= since, value) for since, value in reversed(slas)), else_=default_sla)


def classified(
    t: Tables, span: tuple[int, int], slas: Sequence[tuple[int, int]], default_sla: int
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """Every lead of either count with its class, as two queries (see the module doc).

    The first gives (lead_id, reason, at_us) of the leads handed off in the period (``matched``
    or a marketing-only class; ``at_us`` the first hand-off), the second (lead_id, reason) of
    the sales-only ones. ``span`` is [start, end) and ``slas`` (from, SLA) of each definition
    version in the order they take effect, the last one taken by ``from`` in force
    (``default_sla`` before any), all in microseconds.
    """
    start, end = span
    handoff, accept = t["handoff"], t["accept"]
    h, a = handoff.c, accept.c
    sla = sla_in_force(h.at_us, slas, default_sla)
    reason = sa.case(
        (sa.or_(h.accepted_from_us < end, h.accepted_before_us >= start), MATCHED),
        (h.duplicate, "duplicate"),
        (h.accepted_last_us >= end, "accepted after the period"),
        (h.rejected.is_not(None), sa.literal("rejected: ") + h.rejected),
        (sa.or_(h.acted_us.is_(None), h.acted_us > h.at_us + sla), "not acted on within SLA"),
        (h.disqualified, "disqualified"),
        (h.recycled, "recycled"),
        else_="still pending",
    )
    marketing = sa.select(h.lead_id, reason.label("reason"), h.at_us).where(
        h.known_to == FOREVER,
        h.at_us >= start,
        h.at_us < end,
        sa.or_(h.prev_us.is_(None), h.prev_us < start),  # the lead's first in the period
    )
    before = sa.case(
        (a.handed_before_us.is_not(None), "handed off before the period"),
        else_="never handed off",
    )
    sales = sa.select(a.lead_id, before.label("reason")).where(
        a.known_to == FOREVER,
        a.at_us >= start,
        a.at_us < end,
        sa.or_(a.prev_us.is_(None), a.prev_us < start),  # the lead's first in the period
        sa.or_(a.handed_before_us.is_(None), a.handed_before_us < start),
        sa.or_(a.handed_from_us.is_(None), a.handed_from_us >= end),  # none in the period
    )
    return marketing, sales


def read_summary(
    conn: sa.Connection, queries: tuple[sa.Select[Any], sa.Select[Any]]
) -> Counter[tuple[str, str]]:
    """How many leads of each (side, class) the period has, counted by the database.

    ``queries``: what :func:`classified` gives for the period.
    """
    counts: Counter[tuple[str, str]] = Counter()
    marketing, sales = queries
    for query, side in ((marketing, None), (sales, SALES_ONLY)):
        rows = query.subquery()
        grouped = sa.select(rows.c.reason, sa.func.count()).group_by(rows.c.reason)
        for found, n in conn.execute(grouped):
            where = side or (MATCHED if found == MATCHED else MARKETING_ONLY)
            counts[(where, found)] += n
    return counts


def read_placements(
    conn: sa.Connection, queries: tuple[sa.Select[Any], sa.Select[Any]]
) -> list[Placement]:
    """Every lead of either count and where it lands (``queries``: :func:`classified`'s)."""
    marketing, sales = queries
    placements = [
        Placement(lead, MATCHED if reason == MATCHED else MARKETING_ONLY, reason, from_us(at))
        for lead, reason, at in conn.execute(marketing)
    ]
    placements += [
        Placement(lead, SALES_ONLY, reason, None) for lead, reason in conn.execute(sales)
    ]
    return placements


def listing(placements: Iterable[Placement], span: tuple[datetime, datetime]) -> Report:
    """Every lead of either count and its class (``audit reconcile --leads``)."""
    rows: list[list[Any]] = [
        [p.lead_id, p.side, p.reason, p.handed_off_at]
        for p in sorted(placements, key=lambda p: (p.side, p.reason, p.lead_id))
    ]
    columns = ["lead_id", "side", "class", "handed_off_at"]
    return Report("Reconcile: every lead", columns, rows, _notes(span))


def summary(classes: Counter[tuple[str, str]], span: tuple[datetime, datetime]) -> Report:
    """The counts, their difference, and how many leads of each (side, class) make them."""
    marketing = sum(n for (side, _), n in classes.items() if side != SALES_ONLY)
    sales = sum(n for (side, _), n in classes.items() if side != MARKETING_ONLY)
    rows: list[list[Any]] = [
        ["marketing count", "", marketing],
        ["sales count", "", sales],
        ["difference", "", marketing - sales],
    ]
    for side in (MATCHED, MARKETING_ONLY, SALES_ONLY):
        for (where, reason), count in sorted(classes.items()):
            if where == side:
                rows.append([side, reason, count])
    return Report(
        "Reconcile: handed off vs accepted", ["line", "class", "leads"], rows, _notes(span)
    )


def _notes(span: tuple[datetime, datetime]) -> list[str]:
    start, end = span
    return [
        (
            f"{start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive): marketing = leads handed off, "
            "sales = leads accepted; each lead is in exactly one class (docs/definitions.md)"
        )
    ]
