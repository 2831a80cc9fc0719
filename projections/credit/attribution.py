"""``report attribution``: pipeline, revenue or deals credited to campaigns or channels per period.

Each deal whose credited milestone falls in a period (opportunity creation for pipeline and
deals, the win for revenue) shares its value between the touches of its journey under the
chosen model, exactly to the cent (docs/credit.md). Amounts never mix currencies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from projections.credit.data import (
    UNIT,
    CreditData,
    Deal,
    Wanted,
    check_tables,
    load_campaigns,
    read,
)
from projections.credit.journeys import NO_TOUCH, Crediting, Touch
from projections.credit.options import CreditOptions
from projections.gc_pause import without_gc
from projections.reading import Reader
from projections.report import Report
from projections.window import PeriodIndex, Window

NO_CAMPAIGN = "(no campaign)"
Parts = list[tuple[Touch | None, Decimal]]


class Credited(NamedTuple):
    """One deal's value in one period, in parts: each touch's (or ``(no touch)``'s)."""

    period: int
    deal: Deal
    currency: str | None
    parts: Parts


def wanted(options: CreditOptions, metrics: tuple[str, ...]) -> Wanted:
    """The deals whose credit for ``metrics`` can fall in the window, with their journeys.

    A deal counts in the period of its milestone: opened for pipeline and deals, won for revenue.
    """
    return Wanted(
        opened=any(m != "revenue" for m in metrics),
        closed=("won",) if "revenue" in metrics else (),
        types=options.opportunity_types,
        lookback_days=options.lookback_days,
    )


def credited_parts(
    data: CreditData, window: Window, metric: str, periods: PeriodIndex | None = None
) -> Iterator[Credited]:
    """Every deal of ``data`` credited in the window for ``metric``, with its parts."""
    options = window.options.credit
    periods = periods or PeriodIndex(window)
    crediting = Crediting(options.model)
    unit = UNIT[metric]
    for deal in data.deals.values():
        if deal.opp_type not in options.opportunity_types:
            continue
        milestone = deal.milestone(metric)
        index = None if milestone is None else periods(milestone)
        if index is None:
            continue
        journey = data.journey(deal, metric, options.lookback_days)
        assert journey is not None
        amount, currency = deal.value(metric)
        yield Credited(index, deal, currency, crediting.split(journey, amount, unit))


def credit_key(touch: Touch | None, by: str) -> str:
    """The campaign id or channel a touch counts for (``(no touch)``, ``(no campaign)``)."""
    if touch is None:
        return NO_TOUCH
    if by == "channel":
        return touch.channel
    return touch.campaign_id or NO_CAMPAIGN


@dataclass
class Tally:
    """Credit summed over the parts of one row: amount, touches credited, deals behind it."""

    amount: Decimal = Decimal(0)
    touches: int = 0
    deals: set[str] = field(default_factory=set)


def totals_note(totals: dict[str | None, Tally], what: str) -> list[str]:
    """The check a reader can do: credit adds up to the credited value, per currency."""
    return [
        f"Σ credit = Σ {what}{f' {c}' if c else ''} = {t.amount:,} over {len(t.deals)} deals"
        for c, t in sorted(totals.items(), key=lambda kv: str(kv[0]))
    ]


@without_gc
def attribution(reader: Reader, window: Window) -> Report:
    """Credit per period and campaign (or channel), per currency."""
    options = window.options.credit
    metric, by = options.metric, options.by
    check_tables(reader)
    campaigns = load_campaigns(reader, window)
    rows: dict[tuple[int, str | None, str], Tally] = defaultdict(Tally)
    periods: dict[tuple[int, str | None], Decimal] = defaultdict(Decimal)
    totals: dict[str | None, Tally] = defaultdict(Tally)
    untouched: set[str] = set()
    find = PeriodIndex(window)
    for data in read(reader, window, wanted(options, (metric,)), campaigns):
        for period, deal, currency, parts in credited_parts(data, window, metric, find):
            opportunity = deal.opportunity_id
            total = totals[currency]
            total.deals.add(opportunity)
            for touch, part in parts:
                total.amount += part
                if not part:
                    continue  # a touch the model gives no weight (or a deal worth nothing): no row
                tally = rows[period, currency, credit_key(touch, by)]
                tally.amount += part
                tally.deals.add(opportunity)
                periods[period, currency] += part
                if touch is None:
                    untouched.add(opportunity)
                else:
                    tally.touches += 1
    money = metric != "deals"
    columns = ["period", *(["campaign", "name", "channel"] if by == "campaign" else ["channel"])]
    columns += [*(["currency"] if money else []), metric, "share", "touches", "opportunities"]
    report = Report(
        f"Attribution of {metric} per {window.options.calendar.kind} and {by}",
        columns,
        notes=[*window.notes(), *options.notes()],
    )
    order = sorted(rows.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), -kv[1].amount, kv[0][2]))
    for (index, currency, key), tally in order:
        names = [key]
        if by == "campaign":
            names += list(campaigns.get(key, ("", "")))
        whole = periods[index, currency]
        report.rows.append(
            [
                window.periods[index].label,
                *names,
                *([currency] if money else []),
                tally.amount,
                float(tally.amount / whole) if whole else None,
                tally.touches,
                len(tally.deals),
            ]
        )
    report.notes += totals_note(totals, metric)
    if untouched:
        report.notes.append(
            f"{len(untouched)} opportunities had no credited touch in their window: {NO_TOUCH}"
        )
    return report
