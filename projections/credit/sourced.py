"""``report sourced``: marketing-sourced vs sales-sourced deals, pipeline and revenue per period.

The rule (:class:`projections.credit.options.SourcedRule`, shown in the report) looks at the
earliest-captured lead linked to the opportunity that was captured at or before it opened: the
channel of that lead's first touch (else its ``lead_source``) decides. Opened deals and pipeline
count in the period the opportunity opened, won deals and revenue in the period it was won.
See docs/credit.md, "Sourced".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from projections.credit.attribution import period_index
from projections.credit.data import CreditData, Deal, load
from projections.credit.options import SourcedRule
from projections.periods import from_us
from projections.reading import Reader
from projections.report import Report
from projections.window import Window

MARKETING, SALES = "marketing", "sales"


@dataclass(frozen=True)
class Decision:
    """Who sourced a deal, and the facts that decided it."""

    sourced: str
    reason: str


def sourced_by(data: CreditData, deal: Deal, rule: SourcedRule) -> Decision:
    """Apply ``rule`` to ``deal``."""
    linked = data.linked(deal)
    captured = sorted(
        (contact.captured_us, lead)
        for lead in linked
        if (contact := data.contacts.get(lead)) is not None
        and contact.captured_us is not None
        and contact.captured_us <= deal.opened_us
    )
    if not captured:
        return Decision(SALES, "no linked lead was captured before the opportunity opened")
    at, lead = captured[0]
    when = f"{from_us(at):%Y-%m-%d %H:%M}Z"
    touches = [t for t in data.touches.get(lead, ()) if t.at_us <= deal.opened_us]
    channel: str | None
    if touches:
        channel, how = touches[0].channel, f"first touch {touches[0].touch_type}"
    else:
        channel, how = data.contacts[lead].lead_source, "lead_source (no touch)"
    if channel is None:
        return Decision(SALES, f"lead {lead} (captured {when}) has no touch and no lead_source")
    side = SALES if channel in rule.sales_channels else MARKETING
    kind = "a sales" if side == SALES else "a marketing"
    why = f"lead {lead} ({linked[lead]}, captured {when}): {how} on {channel}, {kind} channel"
    return Decision(side, why)


@dataclass
class Totals:
    """One row's numbers: deals opened and their pipeline, deals won and their revenue."""

    opened: int = 0
    pipeline: Decimal = Decimal(0)
    won: int = 0
    revenue: Decimal = Decimal(0)


def sourced(reader: Reader, window: Window) -> Report:
    """Deals opened and pipeline, deals won and revenue, by who sourced them."""
    options = window.options.credit
    data = load(reader, window)
    sums: dict[tuple[int, str, str], Totals] = defaultdict(Totals)
    for deal in data.deals.values():
        if deal.opp_type not in options.opportunity_types:
            continue
        side = sourced_by(data, deal, options.sourced).sourced
        opened = period_index(window, deal.opened_us)
        if opened is not None:
            totals = sums[opened, deal.currency, side]
            totals.opened += 1
            totals.pipeline += deal.amount
        won = deal.milestone("revenue")
        index = None if won is None else period_index(window, won)
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
