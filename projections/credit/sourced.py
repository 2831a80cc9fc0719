"""``report sourced``: marketing-sourced vs sales-sourced deals, pipeline and revenue per period.

The rule (:class:`projections.credit.options.SourcedRule`, shown in the report) looks at the
earliest-captured lead linked to the opportunity that was captured at or before it opened: the
channel of that lead's first touch (else its ``lead_source``) decides. Opened deals and pipeline
count in the period the opportunity opened, won deals and revenue in the period it was won.
See docs/credit.md, "Sourced".
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from projections.credit.attribution import wanted
from projections.credit.data import Contact, CreditData, Deal, check_tables, read
from projections.credit.options import SourcedRule
from projections.gc_pause import without_gc
from projections.periods import from_us
from projections.reading import Reader
from projections.report import Report
from projections.window import PeriodIndex, Window

MARKETING, SALES = "marketing", "sales"


@dataclass(frozen=True)
class Decision:
    """Who sourced a deal, and the facts that decided it."""

    sourced: str
    reason: str


def _deciding(data: CreditData, deal: Deal) -> tuple[Contact, bool] | None:
    """The earliest-captured linked lead captured by the opening; whether it was touched by then.

    A lead's first touch (kept with the lead, :mod:`projections.credit.derive`) is its first
    touch at or before the opening exactly when it is at or before the opening.
    """
    captured = min(
        (
            (contact.captured_us, lead)
            for lead in data.linked(deal)
            if (contact := data.contacts.get(lead)) is not None
            and contact.captured_us is not None
            and contact.captured_us <= deal.opened_us
        ),
        default=None,
    )
    if captured is None:
        return None
    contact = data.contacts[captured[1]]
    first = contact.first_touch_us
    return contact, first is not None and first <= deal.opened_us


def _channel(contact: Contact, *, touched: bool) -> str | None:
    """The channel the rule looks at: the first touch's, else the lead's ``lead_source``."""
    return contact.first_channel if touched else contact.lead_source


def sourced_side(data: CreditData, deal: Deal, rule: SourcedRule) -> str:
    """Who sourced ``deal`` under ``rule`` (:func:`sourced_by` without the reason)."""
    found = _deciding(data, deal)
    if found is None:
        return SALES
    channel = _channel(found[0], touched=found[1])
    return SALES if channel is None or channel in rule.sales_channels else MARKETING


def sourced_by(data: CreditData, deal: Deal, rule: SourcedRule) -> Decision:
    """Apply ``rule`` to ``deal``."""
    found = _deciding(data, deal)
    if found is None:
        return Decision(SALES, "no linked lead was captured before the opportunity opened")
    contact, touched = found
    lead = contact.lead_id
    when = f"{from_us(contact.captured_us or 0):%Y-%m-%d %H:%M}Z"
    channel = _channel(contact, touched=touched)
    how = f"first touch {contact.first_touch_type}" if touched else "lead_source (no touch)"
    if channel is None:
        return Decision(SALES, f"lead {lead} (captured {when}) has no touch and no lead_source")
    side = SALES if channel in rule.sales_channels else MARKETING
    kind = "a sales" if side == SALES else "a marketing"
    how = f"{how} on {channel}, {kind} channel"
    return Decision(side, f"lead {lead} ({data.linked(deal)[lead]}, captured {when}): {how}")


@dataclass
class Totals:
    """One row's numbers: deals opened and their pipeline, deals won and their revenue."""

    opened: int = 0
    pipeline: Decimal = Decimal(0)
    won: int = 0
    revenue: Decimal = Decimal(0)


@without_gc
def sourced(reader: Reader, window: Window) -> Report:
    """Deals opened and pipeline, deals won and revenue, by who sourced them."""
    options = window.options.credit
    check_tables(reader)
    find = PeriodIndex(window)
    sums: dict[tuple[int, str, str], Totals] = defaultdict(Totals)
    leads_only = dataclasses.replace(wanted(options, ("pipeline", "revenue")), journeys=False)
    found = read(reader, window, leads_only, {})
    for data in found:
        for deal in data.deals.values():
            if deal.opp_type not in options.opportunity_types:
                continue
            side = sourced_side(data, deal, options.sourced)
            opened = find(deal.opened_us)
            if opened is not None:
                totals = sums[opened, deal.currency, side]
                totals.opened += 1
                totals.pipeline += deal.amount
            won = deal.milestone("revenue")
            index = None if won is None else find(won)
            if index is not None and deal.won_currency is not None and deal.won_amount is not None:
                totals = sums[index, deal.won_currency, side]
                totals.won += 1
                totals.revenue += deal.won_amount
    report = Report(
        f"Marketing- and sales-sourced deals per {window.options.calendar.kind}",
        ["period", "sourced", "currency", "opened", "pipeline", "won", "revenue", "pipeline_share"],
        notes=[
            *window.notes(),
            f"rule: {options.sourced.text()}",
            f"opportunity types: {', '.join(options.opportunity_types)}",
        ],
    )
    pipeline: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for (i, currency, _), totals in sums.items():
        pipeline[i, currency] += totals.pipeline
    for (i, currency, side), t in sorted(sums.items()):
        whole = pipeline[i, currency]
        share = float(t.pipeline / whole) if whole else None
        report.rows.append(
            [window.periods[i].label, side, currency, t.opened, t.pipeline, t.won, t.revenue, share]
        )
    return report
