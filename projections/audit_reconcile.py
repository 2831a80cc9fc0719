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
known now. The listing of every lead (:func:`read_reconcile`) reads those of the period and
classifies them here (:func:`place`); the summary (:func:`read_summary`) has the database
classify and count them with the same rules, so that only the classes' counts cross.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa

from projections.periods import FOREVER, from_us
from projections.report import Report
from projections.schema import Tables

MATCHED = "matched"
MARKETING_ONLY = "marketing only"
SALES_ONLY = "sales only"
DEFAULT_SLA = timedelta(hours=24)
SlaOf = Callable[[int], int]  # hand-off time -> its SLA, both in microseconds


class Handoff(NamedTuple):
    """A hand-off in the period, with what followed it (at or after it) for its lead."""

    lead_id: str
    at_us: int
    acted_us: int | None  # the first sales activity
    duplicate: bool  # rejected or disqualified as a duplicate
    rejected: str | None  # the first rejection's reason
    disqualified: bool
    recycled: bool
    later: bool  # the lead was accepted at or after the period's end


class Accepted(NamedTuple):
    """A lead accepted in the period."""

    lead_id: str
    before: bool  # the lead was handed off before the period


@dataclass(frozen=True)
class Placement:
    """Where one lead lands: which counts it is in, and its class."""

    lead_id: str
    marketing: bool
    sales: bool
    side: str
    reason: str
    handed_off_at: datetime | None


def read_reconcile(
    conn: sa.Connection, t: Tables, span: tuple[int, int]
) -> tuple[list[Handoff], list[Accepted]]:
    """The period's hand-offs and acceptances (as known now), from ``rl_handoff``/``rl_accept``."""
    start, end = span
    handoff, accept = t["handoff"], t["accept"]
    later = (
        sa.exists()
        .where(accept.c.lead_id == handoff.c.lead_id)
        .where(accept.c.known_to == FOREVER, accept.c.at_us >= end)
    )
    handoffs = sa.select(
        handoff.c.lead_id,
        handoff.c.at_us,
        handoff.c.acted_us,
        handoff.c.duplicate,
        handoff.c.rejected,
        handoff.c.disqualified,
        handoff.c.recycled,
        later.label("later"),
    ).where(handoff.c.known_to == FOREVER, handoff.c.at_us >= start, handoff.c.at_us < end)
    before = (
        sa.exists()
        .where(handoff.c.lead_id == accept.c.lead_id)
        .where(handoff.c.known_to == FOREVER, handoff.c.at_us < start)
    )
    accepted = (
        sa.select(accept.c.lead_id, before.label("before"))
        .where(accept.c.known_to == FOREVER, accept.c.at_us >= start, accept.c.at_us < end)
        .distinct()
    )
    return (
        [Handoff(*row) for row in conn.execute(handoffs)],
        [Accepted(*row) for row in conn.execute(accepted)],
    )


def read_summary(
    conn: sa.Connection,
    t: Tables,
    span: tuple[int, int],
    slas: Sequence[tuple[int, int]],
    default_sla: int,
) -> Counter[tuple[str, str]]:
    """How many leads of each (side, class) the period has: :func:`place`'s rules, in SQL.

    ``slas``: (from, SLA) of each version in the order they take effect, the last one taken by
    ``from`` in force (``default_sla`` before any), all in microseconds.
    """
    start, end = span
    handoff, accept = t["handoff"], t["accept"]
    in_span = sa.and_(
        handoff.c.known_to == FOREVER, handoff.c.at_us >= start, handoff.c.at_us < end
    )
    order = sa.func.row_number().over(
        partition_by=handoff.c.lead_id, order_by=(handoff.c.at_us, handoff.c.seq)
    )
    columns = [handoff.c[name] for name in Handoff._fields if name != "later"]  # all stored
    ranked = sa.select(*columns, order.label("rank")).where(in_span).subquery()
    first = ranked.c

    def accepted(*where: sa.ColumnElement[bool]) -> sa.Exists:
        return sa.exists().where(
            accept.c.lead_id == first.lead_id, accept.c.known_to == FOREVER, *where
        )

    sla = (
        sa.case(
            *((first.at_us >= since, value) for since, value in reversed(slas)), else_=default_sla
        )
        if slas
        else sa.literal(default_sla)
    )
    reason = sa.case(
        (accepted(accept.c.at_us >= start, accept.c.at_us < end), MATCHED),
        (first.duplicate, "duplicate"),
        (accepted(accept.c.at_us >= end), "accepted after the period"),
        (first.rejected.is_not(None), sa.literal("rejected: ") + first.rejected),
        (
            sa.or_(first.acted_us.is_(None), first.acted_us > first.at_us + sla),
            "not acted on within SLA",
        ),
        (first.disqualified, "disqualified"),
        (first.recycled, "recycled"),
        else_="still pending",
    )
    marketing = (
        sa.select(reason.label("reason")).select_from(ranked).where(first.rank == 1).subquery()
    )
    leads = (
        sa.select(accept.c.lead_id)
        .where(accept.c.known_to == FOREVER, accept.c.at_us >= start, accept.c.at_us < end)
        .distinct()
        .subquery()
    )
    handed = sa.and_(handoff.c.lead_id == leads.c.lead_id, handoff.c.known_to == FOREVER)
    before = sa.exists().where(handed, handoff.c.at_us < start)
    sales = (
        sa.select(
            sa.case((before, "handed off before the period"), else_="never handed off").label(
                "reason"
            )
        )
        .select_from(leads)
        .where(~sa.exists().where(handed, handoff.c.at_us >= start, handoff.c.at_us < end))
        .subquery()
    )
    counts: Counter[tuple[str, str]] = Counter()
    for query, side in ((marketing, None), (sales, SALES_ONLY)):
        grouped = sa.select(query.c.reason, sa.func.count()).group_by(query.c.reason)
        for found, n in conn.execute(grouped):
            where = side or (MATCHED if found == MATCHED else MARKETING_ONLY)
            counts[(where, found)] += n
    return counts


def place(
    handoffs: Iterable[Handoff], accepted: Iterable[Accepted], sla_of: SlaOf
) -> list[Placement]:
    """Classify every lead of either count (see the module doc)."""
    first: dict[str, Handoff] = {}
    for handoff in handoffs:
        known = first.get(handoff.lead_id)
        if known is None or handoff.at_us < known.at_us:
            first[handoff.lead_id] = handoff
    sales = {row.lead_id: row.before for row in accepted}
    placements = []
    for lead_id, handoff in first.items():
        at = from_us(handoff.at_us)
        if lead_id in sales:
            placements.append(
                Placement(
                    lead_id,
                    marketing=True,
                    sales=True,
                    side=MATCHED,
                    reason=MATCHED,
                    handed_off_at=at,
                )
            )
        else:
            reason = _why(handoff, sla_of)
            placements.append(
                Placement(
                    lead_id,
                    marketing=True,
                    sales=False,
                    side=MARKETING_ONLY,
                    reason=reason,
                    handed_off_at=at,
                )
            )
    for lead_id, before in sales.items():
        if lead_id not in first:
            reason = "handed off before the period" if before else "never handed off"
            placements.append(
                Placement(
                    lead_id,
                    marketing=False,
                    sales=True,
                    side=SALES_ONLY,
                    reason=reason,
                    handed_off_at=None,
                )
            )
    return placements


def _why(handoff: Handoff, sla_of: SlaOf) -> str:  # noqa: PLR0911 - one return per class, tried in order
    """Why a lead first handed off in the period at ``handoff`` was not accepted in it."""
    if handoff.duplicate:
        return "duplicate"
    if handoff.later:
        return "accepted after the period"
    if handoff.rejected is not None:
        return f"rejected: {handoff.rejected}"
    deadline = handoff.at_us + sla_of(handoff.at_us)
    if handoff.acted_us is None or handoff.acted_us > deadline:
        return "not acted on within SLA"
    if handoff.disqualified:
        return "disqualified"
    if handoff.recycled:
        return "recycled"
    return "still pending"


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
