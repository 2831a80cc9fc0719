"""Credit per period, currency and campaign (or channel): what attribution and spend report.

Each deal whose credited milestone falls in a period (opportunity creation for pipeline and
deals, the win for revenue) shares its value between the touches of its journey under the
chosen model (docs/credit.md). Under the default model the projection keeps those parts summed
per UTC day (``rl_roll_credit``, :mod:`projections.credit.kept`): whole UTC days come from it,
and the tables answer the rest, as for the revenue report (:mod:`projections.credit.dealroll`):
the partial days at either end of a period, and the wins whose next close falls on the cap's
UTC day but after the cap. Other models, lookbacks and ledger times read the tables throughout.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

import sqlalchemy as sa

from projections.balances import usable
from projections.credit.data import (
    UNIT,
    CreditData,
    Deal,
    Reading,
    Wanted,
    batches,
    read,
    select_deals,
)
from projections.credit.dealroll import Days, exact_sum, on_whole_day, outcome_closes, split_days
from projections.credit.journeys import Crediting, Touch, credit_key
from projections.credit.kept import TOTAL, kept
from projections.credit.options import CreditOptions
from projections.reading import Reader
from projections.schema import CREDIT_MEASURES
from projections.window import PeriodIndex, Window

Parts = list[tuple[Touch | None, Decimal]]
IDS_PER_QUERY = 500


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


@dataclass
class Tally:
    """Credit summed over the parts of one row: amount, touches credited, deals behind it."""

    amount: Decimal = Decimal(0)
    touches: int = 0
    deals: int = 0

    def add(self, amount: Decimal, touches: int, deals: int) -> None:
        """Add a part, or a sum of parts."""
        self.amount += amount
        self.touches += touches
        self.deals += deals


@dataclass
class Credit:
    """One metric's credit in a window.

    ``rows``: per (period, currency, campaign or channel), the nonzero parts; ``totals``: per
    currency, every part (zero ones too) and every deal credited; ``untouched``: the deals with
    a part credited to ``(no touch)``. A deal is credited in one period only, so the deal counts
    of the roll-up's days and of the deals read from the tables add up.
    """

    rows: defaultdict[tuple[int, str | None, str], Tally] = field(
        default_factory=lambda: defaultdict(Tally)
    )
    totals: defaultdict[str | None, Tally] = field(default_factory=lambda: defaultdict(Tally))
    untouched: int = 0

    def add_deal(self, period: int, currency: str | None, parts: Parts, by: str) -> None:
        """Add one credited deal's parts."""
        total = self.totals[currency]
        total.deals += 1
        keys: set[str] = set()
        untouched = False
        for touch, part in parts:
            total.amount += part
            if not part:
                continue  # a touch the model gives no weight (or a deal worth nothing): no row
            key = credit_key(touch, by)
            self.rows[period, currency, key].add(part, touch is not None, 0)
            keys.add(key)
            untouched = untouched or touch is None
        for key in keys:
            self.rows[period, currency, key].deals += 1
        self.untouched += untouched


Credits = dict[str, Credit]  # per metric


def credit_sums(
    reader: Reader, window: Window, metrics: tuple[str, ...], campaigns: dict[str, tuple[str, str]]
) -> Credits:
    """The window's credit for each of ``metrics``: from the roll-up when it can answer."""
    options = window.options.credit
    if window.periods and kept(options) and usable(reader, window):
        with reader.engine.connect() as conn:
            reading = Reading(conn, reader, window, wanted(options, metrics))
            found = _rolled(reading, metrics, campaigns)
        if found is not None:
            return found
    out = {metric: Credit() for metric in metrics}
    find = PeriodIndex(window)
    for data in read(reader, window, wanted(options, metrics), campaigns):
        _add(out, data, window, find, lambda _: True)
    return out


def _add(
    out: Credits,
    data: CreditData,
    window: Window,
    find: PeriodIndex,
    keep: Callable[[int], bool],
) -> None:
    """Add the credit of ``data``'s deals whose milestone ``keep`` keeps."""
    by = window.options.credit.by
    for metric, credit in out.items():
        for period, deal, currency, parts in credited_parts(data, window, metric, find):
            milestone = deal.milestone(metric)
            if milestone is not None and keep(milestone):
                credit.add_deal(period, currency, parts, by)


def _from_tables(
    reading: Reading,
    out: Credits,
    campaigns: dict[str, tuple[str, str]],
    keep: Callable[[int], bool],
) -> None:
    """Add the credit of the deals ``reading`` wants (read from the tables) that ``keep`` keeps."""
    find = PeriodIndex(reading.window)
    for data in batches(reading, select_deals(reading), campaigns):
        _add(out, data, reading.window, find, keep)


def _rolled(
    reading: Reading, metrics: tuple[str, ...], campaigns: dict[str, tuple[str, str]]
) -> Credits | None:
    """The credit from ``rl_roll_credit`` (whole UTC days) and the tables (the rest).

    None when a part finer than a ten-thousandth falls in the window (the report then reads
    the tables).
    """
    window = reading.window
    days = split_days(window)
    out = {metric: Credit() for metric in metrics}
    if days.whole and not _add_rolled(reading, days, out):
        return None
    if days.pieces:  # one read for every partial day of the window
        spans = dataclasses.replace(reading.wanted, spans=tuple(days.pieces))
        pieces = Reading(reading.conn, reading.reader, window, spans)
        _from_tables(pieces, out, campaigns, lambda at: not on_whole_day(days.pieces, at))
    if days.following is not None and "revenue" in out:
        first, last = window.periods[0].start, window.periods[-1].end
        query = outcome_closes(reading, first, last, days.following)
        ids = sorted({row[7] for row in reading.conn.execute(query) if row[1] == "won"})
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = tuple(ids[start : start + IDS_PER_QUERY])
            wins = dataclasses.replace(
                reading.wanted, opened=False, closed=(), opportunity_ids=chunk
            )
            revenue = {"revenue": out["revenue"]}
            following = Reading(reading.conn, reading.reader, window, wins)
            _from_tables(following, revenue, campaigns, lambda at: on_whole_day(days.pieces, at))
    return out


def _add_rolled(reading: Reading, days: Days, out: Credits) -> bool:
    """Add the roll-up's sums over the whole days; False when a part is too fine for it."""
    options = reading.window.options.credit
    roll = reading.table("roll_credit")
    keys = (days.bucket(roll.c.day), roll.c.metric, roll.c.split, roll.c.currency, roll.c.key)
    query = (
        sa.select(*keys, *(sa.func.sum(roll.c[m]) for m in CREDIT_MEASURES))
        .where(
            roll.c.metric.in_(tuple(out)),
            roll.c.split.in_((options.by, TOTAL)),
            roll.c.type.in_(options.opportunity_types),
            *days.where(roll.c.day),
            roll.c.until >= days.cap_day,
        )
        .group_by(*keys)
    )
    for index, metric, split, stored, key, *sums in reading.conn.execute(query):
        if index is None:
            continue
        deals, touches, units, *counts = (int(x) for x in sums)
        amount = exact_sum(units, counts)
        if amount is None:
            return False
        credit, currency = out[metric], stored or None
        if split == TOTAL:
            credit.totals[currency].add(amount, 0, deals)
            credit.untouched += touches
        else:
            credit.rows[index, currency, key].add(amount, touches, deals)
    return True
