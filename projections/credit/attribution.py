"""``report attribution``: pipeline, revenue or deals credited to campaigns or channels per period.

Each deal whose credited milestone falls in a period (opportunity creation for pipeline and
deals, the win for revenue) shares its value between the touches of its journey under the
chosen model, exactly to the cent (docs/credit.md). Amounts never mix currencies.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from projections.credit.data import UNIT, CreditData, Deal, load
from projections.credit.journeys import NO_TOUCH, Share, credit
from projections.reading import Reader
from projections.report import Report
from projections.window import Window

NO_CAMPAIGN = "(no campaign)"


@dataclass(frozen=True)
class Credited:
    """One touch's (or ``(no touch)``'s) part of one deal's value in one period."""

    period: int
    deal: Deal
    currency: str | None
    share: Share
    part: Decimal


def period_index(window: Window, at: int) -> int | None:
    """The index of the window's period containing ``at`` (None when outside every period)."""
    starts = [p.start for p in window.periods]
    i = bisect.bisect_right(starts, at) - 1
    return i if i >= 0 and at < window.periods[i].end else None


def credited_parts(data: CreditData, window: Window, metric: str) -> Iterator[Credited]:
    """Every part of every deal credited in the window, for ``metric``."""
    options = window.options.credit
    for deal in data.deals.values():
        if deal.opp_type not in options.opportunity_types:
            continue
        journey = data.journey(deal, metric, options.lookback_days)
        if journey is None:
            continue
        index = period_index(window, journey.milestone_us)
        if index is None:
            continue
        amount, currency = deal.value(metric)
        for share, part in credit(options.model, journey, amount, UNIT[metric]):
            yield Credited(index, deal, currency, share, part)


def credit_key(share: Share, by: str) -> str:
    """The campaign id or channel a share counts for (``(no touch)``, ``(no campaign)``)."""
    touch = share.touch
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

    def add(self, c: Credited) -> None:
        """Count one credited part."""
        self.amount += c.part
        self.touches += c.share.touch is not None
        self.deals.add(c.deal.opportunity_id)


def totals_note(totals: dict[str | None, Tally], what: str) -> list[str]:
    """The check a reader can do: credit adds up to the credited value, per currency."""
    return [
        f"Σ credit = Σ {what}{f' {c}' if c else ''} = {t.amount:,} over {len(t.deals)} deals"
        for c, t in sorted(totals.items(), key=lambda kv: str(kv[0]))
    ]


def attribution(reader: Reader, window: Window) -> Report:
    """Credit per period and campaign (or channel), per currency."""
    options = window.options.credit
    metric, by = options.metric, options.by
    data = load(reader, window)
    rows: dict[tuple[int, str | None, str], Tally] = defaultdict(Tally)
    periods: dict[tuple[int, str | None], Decimal] = defaultdict(Decimal)
    totals: dict[str | None, Tally] = defaultdict(Tally)
    untouched: set[str] = set()
    for c in credited_parts(data, window, metric):
        totals[c.currency].add(c)
        if not c.part:
            continue  # a touch the model gives no weight (or a deal worth nothing) has no row
        rows[c.period, c.currency, credit_key(c.share, by)].add(c)
        periods[c.period, c.currency] += c.part
        if c.share.touch is None:
            untouched.add(c.deal.opportunity_id)
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
            names += [data.campaign_name(key), data.campaigns.get(key, ("", ""))[1]]
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
