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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.events import Fact
from projections.report import Report

MATCHED = "matched"
MARKETING_ONLY = "marketing only"
SALES_ONLY = "sales only"
DEFAULT_SLA = timedelta(hours=24)
SlaOf = Callable[[datetime], timedelta]


@dataclass(frozen=True)
class Placement:
    """Where one lead lands: which counts it is in, and its class."""

    lead_id: str
    marketing: bool
    sales: bool
    side: str
    reason: str
    handed_off_at: datetime | None


def _of(facts: Iterable[Fact], kind: str) -> list[Fact]:
    return [f for f in facts if f.type_name == kind]


def place(
    lead_id: str, facts: list[Fact], span: tuple[datetime, datetime], sla_of: SlaOf
) -> Placement | None:
    """Classify one lead (its effective facts in business order); None if in neither count."""
    start, end = span
    handoffs = [f.occurred_at for f in _of(facts, "handed_off")]
    accepts = [f.occurred_at for f in _of(facts, "lead_accepted")]
    marketing = [t for t in handoffs if start <= t < end]
    sales = any(start <= t < end for t in accepts)
    if not marketing and not sales:
        return None
    first = marketing[0] if marketing else None
    if first is not None and sales:
        return Placement(
            lead_id, marketing=True, sales=True, side=MATCHED, reason=MATCHED, handed_off_at=first
        )
    if first is None:
        before = any(t < start for t in handoffs)
        reason = "handed off before the period" if before else "never handed off"
        return Placement(
            lead_id, marketing=False, sales=True, side=SALES_ONLY, reason=reason, handed_off_at=None
        )
    return Placement(
        lead_id,
        marketing=True,
        sales=False,
        side=MARKETING_ONLY,
        reason=_why(facts, first, end, sla_of),
        handed_off_at=first,
    )


def _why(facts: list[Fact], handed: datetime, end: datetime, sla_of: SlaOf) -> str:  # noqa: PLR0911 - one return per class, tried in order
    """Why a lead handed off at ``handed`` was not accepted in the period."""
    after = [f for f in facts if f.occurred_at >= handed]
    decisions = _of(after, "lead_rejected") + _of(after, "lead_disqualified")
    if any("duplicate" in str(getattr(f, "reason", "")).lower() for f in decisions):
        return "duplicate"
    if any(f.occurred_at >= end for f in _of(after, "lead_accepted")):
        return "accepted after the period"
    rejected = _of(after, "lead_rejected")
    if rejected:
        return f"rejected: {rejected[0].reason}"  # type: ignore[attr-defined]
    deadline = handed + sla_of(handed)
    acted = [f for f in _of(after, "sales_activity_recorded") if f.occurred_at <= deadline]
    if not acted:
        return "not acted on within SLA"
    if _of(after, "lead_disqualified"):
        return "disqualified"
    if _of(after, "lead_recycled"):
        return "recycled"
    return "still pending"


def reconcile(
    leads: Iterable[tuple[str, list[Fact]]],
    span: tuple[datetime, datetime],
    sla_of: SlaOf,
    *,
    per_lead: bool = False,
) -> Report:
    """The reconciliation summary (or, with ``per_lead``, every lead and its class)."""
    placements = [p for lead_id, facts in leads if (p := place(lead_id, facts, span, sla_of))]
    start, end = span
    notes = [
        (
            f"{start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive): marketing = leads handed off, "
            "sales = leads accepted; each lead is in exactly one class (docs/definitions.md)"
        )
    ]
    if per_lead:
        listing: list[list[Any]] = [
            [p.lead_id, p.side, p.reason, p.handed_off_at]
            for p in sorted(placements, key=lambda p: (p.side, p.reason, p.lead_id))
        ]
        columns = ["lead_id", "side", "class", "handed_off_at"]
        return Report("Reconcile: every lead", columns, listing, notes)
    marketing = sum(p.marketing for p in placements)
    sales = sum(p.sales for p in placements)
    classes = Counter((p.side, p.reason) for p in placements)
    rows: list[list[Any]] = [
        ["marketing count", "", marketing],
        ["sales count", "", sales],
        ["difference", "", marketing - sales],
    ]
    for side in (MATCHED, MARKETING_ONLY, SALES_ONLY):
        for (where, reason), count in sorted(classes.items()):
            if where == side:
                rows.append([side, reason, count])
    return Report("Reconcile: handed off vs accepted", ["line", "class", "leads"], rows, notes)
