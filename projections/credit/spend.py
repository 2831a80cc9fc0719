"""``report spend``: program spend against the pipeline and revenue credited to it, per period.

Spend comes from ``campaign_spend_recorded`` facts that occurred before the as-of cap. A spend
record covers the days ``period_start..period_end`` (inclusive); it is prorated by days over the
reporting periods it overlaps (exactly, largest remainder to the cent), and the days after the
as-of date are not shown. Pipeline and revenue are the credit of the chosen model
(:mod:`projections.credit.attribution`). With ``--by channel`` spend counts for the campaign's
channel and credit for the touch's channel. See docs/credit.md, "Spend".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa

from projections.credit.allocation import allocate
from projections.credit.credited import credit_sums
from projections.credit.data import check_tables, load_campaigns
from projections.gc_pause import without_gc
from projections.periods import Calendar
from projections.reading import Reader
from projections.report import Report
from projections.window import Window

RATIO = Decimal("0.01")
UNASSIGNED = "(unknown campaign)"


@dataclass(frozen=True)
class Spend:
    """One spend record of a campaign."""

    campaign_id: str
    amount: Decimal
    currency: str
    first_day: date
    last_day: date


def load_spend(reader: Reader, window: Window) -> list[Spend]:
    """Every spend record known at the window's ledger time that occurred before its cap."""
    spend = reader.tables["spend"]
    query = sa.select(
        spend.c.campaign_id, spend.c.amount, spend.c.currency, spend.c.first_day, spend.c.last_day
    ).where(window.known(spend), spend.c.at_us < window.cap)
    return [
        Spend(c, Decimal(a), cur, date.fromisoformat(f), date.fromisoformat(last))
        for c, a, cur, f, last in reader.rows(query)
    ]


def prorate(spend: Spend, calendar: Calendar, as_of: date) -> Iterator[tuple[date, Decimal]]:
    """(first day of period, amount) for each period the spend covers, up to the as-of date."""
    segments: list[tuple[date | None, int]] = []  # None: days after the as-of date
    for period in calendar.periods(spend.first_day, spend.last_day):
        first = max(spend.first_day, period.first_day)
        last = min(spend.last_day, calendar.following(period.first_day) - timedelta(days=1))
        shown = min(last, as_of)
        if shown >= first:
            segments.append((period.first_day, (shown - first).days + 1))
        if last > max(as_of, first - timedelta(days=1)):
            segments.append((None, (last - max(first, as_of + timedelta(days=1))).days + 1))
    parts = allocate(spend.amount, [Fraction(days) for _, days in segments])
    for (first_day, _), part in zip(segments, parts, strict=True):
        if first_day is not None:
            yield first_day, part


def _ratio(value: Decimal, spend: Decimal) -> Decimal | None:
    return (value / spend).quantize(RATIO) if spend else None


Sums = dict[tuple[int, str, str], list[Decimal]]  # (period, currency, key) -> spend, pipe, rev
Campaigns = dict[str, tuple[str, str]]


def _spend_sums(window: Window, spend: list[Spend], campaigns: Campaigns, sums: Sums) -> None:
    """Add the spend, prorated over the periods, per campaign (or its channel)."""
    index = {p.first_day: i for i, p in enumerate(window.periods)}
    for record in spend:
        key = record.campaign_id
        if window.options.credit.by == "channel":
            key = campaigns.get(record.campaign_id, (UNASSIGNED, UNASSIGNED))[1]
        for first_day, part in prorate(record, window.options.calendar, window.as_of):
            if first_day in index:
                sums[index[first_day], record.currency, key][0] += part


def _sums(reader: Reader, window: Window, campaigns: Campaigns) -> Sums:
    """Spend, pipeline credit and revenue credit per period, currency and campaign or channel."""
    sums: Sums = defaultdict(lambda: [Decimal(0)] * 3)
    _spend_sums(window, load_spend(reader, window), campaigns, sums)
    metrics = ("pipeline", "revenue")
    credited = credit_sums(reader, window, metrics, campaigns)
    for column, metric in enumerate(metrics, 1):
        for (period, currency, key), tally in credited[metric].rows.items():
            if currency is not None:
                sums[period, currency, key][column] += tally.amount
    return sums


def _overall(sums: Sums, target: Decimal) -> list[str]:
    """Per currency: all credit to spend, and the credit of the paid programs alone to spend."""
    paid = {(currency, key) for (_, currency, key), v in sums.items() if v[0]}
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 5)
    for (_, currency, key), (cost, pipeline, revenue) in sums.items():
        row = totals[currency]
        row[0] += cost
        row[1] += pipeline
        row[2] += revenue
        if (currency, key) in paid:
            row[3] += pipeline
            row[4] += revenue
    return [
        f"overall {currency}: spend {cost:,}; pipeline {pipe:,} ({_ratio(pipe, cost) or '-'}x), "
        f"revenue {rev:,} ({_ratio(rev, cost) or '-'}x); credited to programs with spend: "
        f"pipeline {paid_pipe:,} ({_ratio(paid_pipe, cost) or '-'}x), revenue {paid_rev:,} "
        f"({_ratio(paid_rev, cost) or '-'}x); target line {target}x pipeline-to-spend"
        for currency, (cost, pipe, rev, paid_pipe, paid_rev) in sorted(totals.items())
    ]


@without_gc
def spend(reader: Reader, window: Window) -> Report:
    """Spend, credited pipeline and revenue, and their ratios per period, campaign or channel."""
    options = window.options.credit
    by, target = options.by, options.target
    check_tables(reader)
    campaigns = load_campaigns(reader, window)
    sums = _sums(reader, window, campaigns)
    names = ["campaign", "name", "channel"] if by == "campaign" else ["channel"]
    report = Report(
        f"Pipeline and revenue to spend per {window.options.calendar.kind} and {by}",
        [
            "period",
            *names,
            "currency",
            "spend",
            "pipeline",
            "revenue",
            "pipeline_to_spend",
            "revenue_to_spend",
            "target",
            "pipeline_gap",
        ],
        notes=[*window.notes(), *options.notes()],
    )
    for i, currency, key in sorted(sums, key=lambda k: (k[0], k[1], -sums[k][0], k[2])):
        cost, pipeline, revenue = sums[i, currency, key]
        described = [key]
        if by == "campaign":
            described += list(campaigns.get(key, ("", "")))
        ratios = [_ratio(pipeline, cost), _ratio(revenue, cost)]
        gap = pipeline - target * cost
        values = [cost, pipeline, revenue, *ratios, target, gap]
        report.rows.append([window.periods[i].label, *described, currency, *values])
    report.notes += _overall(sums, target)
    return report
