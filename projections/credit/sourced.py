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

from projections.balances import usable
from projections.credit.credited import wanted
from projections.credit.data import CreditData, Deal, Reading, Wanted, check_tables, read
from projections.credit.dealroll import outcome_closes, read_rolled
from projections.credit.decide import deciding, key_channel, rule_channel
from projections.credit.options import SourcedRule
from projections.gc_pause import without_gc
from projections.periods import from_us
from projections.reading import Reader
from projections.report import Report
from projections.rollup import WON, stored_channels
from projections.window import PeriodIndex, Window

MARKETING, SALES = "marketing", "sales"


@dataclass(frozen=True)
class Decision:
    """Who sourced a deal, and the facts that decided it."""

    sourced: str
    reason: str


def sourced_side(data: CreditData, deal: Deal, rule: SourcedRule) -> str:
    """Who sourced ``deal`` under ``rule`` (:func:`sourced_by` without the reason)."""
    found = deciding(data, deal)
    if found is None:
        return SALES
    return side_of(rule_channel(found[0], touched=found[1]), rule)


def sourced_by(data: CreditData, deal: Deal, rule: SourcedRule) -> Decision:
    """Apply ``rule`` to ``deal``."""
    found = deciding(data, deal)
    if found is None:
        return Decision(SALES, "no linked lead was captured before the opportunity opened")
    contact, touched = found
    lead = contact.lead_id
    when = f"{from_us(contact.captured_us or 0):%Y-%m-%d %H:%M}Z"
    channel = rule_channel(contact, touched=touched)
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


def side_of(channel: str | None, rule: SourcedRule) -> str:
    """Who sourced a deal whose deciding channel is ``channel`` (None: none) under ``rule``."""
    return SALES if channel is None or channel in rule.sales_channels else MARKETING


Sums = dict[tuple[int, str, str], Totals]  # (period, currency, side) -> totals


def _exact(reader: Reader, window: Window, lo: int, hi: int, sums: Sums) -> None:
    """Add the deals opened, and the deals won, in ``[lo, hi)``, read from the tables."""
    options = window.options.credit
    find = PeriodIndex(window)
    span = dataclasses.replace(
        window, periods=[dataclasses.replace(window.periods[0], start=lo, end=hi)]
    )
    leads_only = dataclasses.replace(wanted(options, ("pipeline", "revenue")), journeys=False)
    for data in read(reader, span, leads_only, {}):
        for deal in data.deals.values():
            if deal.opp_type not in options.opportunity_types:
                continue
            side = sourced_side(data, deal, options.sourced)
            opened = find(deal.opened_us) if lo <= deal.opened_us < hi else None
            if opened is not None:
                totals = sums[opened, deal.currency, side]
                totals.opened += 1
                totals.pipeline += deal.amount
            won = deal.milestone("revenue")
            index = None if won is None or not lo <= won < hi else find(won)
            if index is not None and deal.won_currency is not None and deal.won_amount is not None:
                totals = sums[index, deal.won_currency, side]
                totals.won += 1
                totals.revenue += deal.won_amount


def _rolled(reader: Reader, window: Window, sums: Sums) -> bool:
    """Add the sums from ``rl_roll_deal`` (whole UTC days) and the tables (the rest).

    False (nothing added) when the roll-up cannot answer exactly (an amount finer than a
    ten-thousandth in the window).
    """
    options = window.options.credit
    rule, types = options.sourced, options.opportunity_types
    with reader.engine.connect() as conn:
        reading = Reading(conn, reader, window, Wanted())
        rolled = read_rolled(reading, ("opened", WON), by_channel=True)
        if rolled is None:
            return False
        straddling = []
        if rolled.following is not None:
            periods = window.periods
            query = outcome_closes(reading, periods[0].start, periods[-1].end, rolled.following)
            straddling = [row for row in conn.execute(query) if row[1] == WON]
            kept = stored_channels(conn, reader.tables, {row[7] for row in straddling})
    for row in rolled.rows:
        if row.type not in types:
            continue
        totals = sums[row.period, row.currency, side_of(key_channel(row.channel), rule)]
        if row.what == WON:
            totals.won += row.n
            totals.revenue += row.amount
        else:
            totals.opened += row.n
            totals.pipeline += row.amount
    find = PeriodIndex(window)
    for at, _, amount, currency, opp_type, _, _, opp in straddling:
        index = find(at)
        if index is None or opp_type not in types or not rolled.whole(at):
            continue
        totals = sums[index, currency, side_of(key_channel(kept[opp]), rule)]
        totals.won += 1
        totals.revenue += Decimal(amount)
    for lo, hi in rolled.pieces:
        _exact(reader, window, lo, hi, sums)
    return True


@without_gc
def sourced(reader: Reader, window: Window) -> Report:
    """Deals opened and pipeline, deals won and revenue, by who sourced them.

    From the per-day roll-up (``rl_roll_deal``, by deciding channel) when it can answer, else
    from the tables.
    """
    options = window.options.credit
    check_tables(reader)
    sums: Sums = defaultdict(Totals)
    if window.periods and not (usable(reader, window) and _rolled(reader, window, sums)):
        _exact(reader, window, window.periods[0].start, window.periods[-1].end, sums)
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
