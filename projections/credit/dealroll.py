"""Reading ``rl_roll_deal``, the per-day roll-up of deals, closes and ARR movements.

The revenue and sourced reports read whole UTC days from the roll-up (:mod:`projections.rollup`)
and the rest from the tables: the partial days at either end of a period (a timezone whose
midnight is not UTC's), and the closes whose next close falls on the cap's UTC day but not
before the cap (the roll-up keys a close by its next close's day, not its instant). Amount sums
come back as exact decimals with the decimal places of the amounts summed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa

from projections.balances import day_bucket, plan_ranges
from projections.credit.data import Reading
from projections.credit.journeys import DAY_US
from projections.opportunities import SCALE
from projections.rollup import LOST, WON
from projections.schema import DEAL_MEASURES
from projections.window import Window


class RolledRow(NamedTuple):
    """One roll-up sum over the whole UTC days of a period."""

    period: int  # the period's index
    what: str  # opened | won | lost | arr
    type: str  # opportunity type, or ARR kind
    currency: str
    channel: str  # the deciding channel key (opened, won), else ""
    n: int
    amount: Decimal
    cycle_us: int


@dataclass(frozen=True)
class Rolled:
    """A window's whole-day sums, and what the report reads from the tables instead."""

    rows: list[RolledRow]
    pieces: list[tuple[int, int]]  # the partial days, [lo, hi)
    following: tuple[int, int] | None  # next closes in here (after the cap) leave outcomes

    def whole(self, at: int) -> bool:
        """Whether ``at`` falls on a whole day the roll-up answered."""
        return on_whole_day(self.pieces, at)


def on_whole_day(pieces: list[tuple[int, int]], at: int) -> bool:
    """Whether ``at`` falls outside the partial days ``pieces``: on a whole day of a roll-up."""
    return not any(lo <= at < hi for lo, hi in pieces)


def max_places(counts: list[int]) -> int:
    """The most decimal places among summed amounts, from the counts with 1, 2, 3 and 4."""
    return max((places for places, n in enumerate(counts, 1) if n), default=0)


def exact_sum(units: int, counts: list[int]) -> Decimal | None:
    """A roll-up's amount sum from its units and counts (odd, then 1 to 4 decimal places).

    None when an amount finer than a ten-thousandth is among those summed.
    """
    odd, *places = counts
    return None if odd else decimal_sum(units, max_places(places))


def decimal_sum(units: int, places: int) -> Decimal:
    """A sum of amounts from its ten-thousandths, with as many decimal places as its amounts."""
    return (Decimal(units) / SCALE).quantize(Decimal(1).scaleb(-places))


@dataclass(frozen=True)
class Days:
    """A window split for a per-day roll-up: its whole UTC days, and what the tables answer."""

    spans: list[list[tuple[int | None, int]]]  # per period, its whole-day ranges
    pieces: list[tuple[int, int]]  # the partial days, [lo, hi)
    cap_day: int  # a close whose next close is on or after this UTC day is an outcome
    following: tuple[int, int] | None  # next closes in here (after the cap) leave outcomes

    @property
    def whole(self) -> list[tuple[int | None, int]]:
        """Every whole-day range, of every period."""
        return [span for ranges in self.spans for span in ranges]

    def where(self, day: sa.ColumnElement[int]) -> list[sa.ColumnElement[bool]]:
        """Conditions on a roll-up's ``day`` column that keep the whole days' range."""
        whole = self.whole
        return [
            day >= min(first for first, _ in whole if first is not None),
            day < max(last for _, last in whole),
        ]

    def bucket(self, day: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
        """The index of the period whose whole days hold ``day`` (NULL when none does)."""
        return day_bucket(day, self.spans).label("bucket")


def split_days(window: Window) -> Days:
    """The window's periods as whole UTC days and partial days, and the cap's day."""
    plan = plan_ranges([(p.start, p.end) for p in window.periods])
    spans = [[*months, *days] for months, days in zip(plan.months, plan.days, strict=True)]
    cap_day = -(-window.cap // DAY_US)
    pieces = [piece for ranges in plan.partial for piece in ranges]
    following = None
    if window.cap < cap_day * DAY_US and any(spans):
        following = (window.cap, cap_day * DAY_US)
    return Days(spans, pieces, cap_day, following)


def read_rolled(reading: Reading, whats: tuple[str, ...], *, by_channel: bool) -> Rolled | None:
    """The window's sums of ``whats`` per period, type and currency (and channel) from the roll-up.

    None when an amount finer than a ten-thousandth falls in the window: its exact sum is not in
    the roll-up, and the report reads the tables instead.
    """
    days = split_days(reading.window)
    rows: list[RolledRow] = []
    if days.whole:
        roll = reading.table("roll_deal")
        channel = roll.c.channel if by_channel else sa.literal("", sa.String)
        keys = (days.bucket(roll.c.day), roll.c.what, roll.c.type, roll.c.currency)
        query = (
            sa.select(*keys, channel, *(sa.func.sum(roll.c[m]) for m in DEAL_MEASURES))
            .where(roll.c.what.in_(whats), *days.where(roll.c.day), roll.c.until >= days.cap_day)
            .group_by(*keys, *([channel] if by_channel else []))
        )
        for index, what, kind, currency, key, *sums in reading.conn.execute(query):
            if index is None:
                continue
            n, units, cycle, *counts = (int(x) for x in sums)
            amount = exact_sum(units, counts)
            if amount is None:
                return None
            rows.append(RolledRow(index, what, kind, currency, key, n, amount, cycle))
    return Rolled(rows, days.pieces, days.following)


def outcome_closes(
    reading: Reading, lo: int, hi: int, following: tuple[int, int] | None = None
) -> sa.Select[Any]:
    """The won and lost closes in ``[lo, hi)`` that are their deal's outcome at the cap.

    A close is the outcome until the deal's next close, so it is one at the cap when no close
    follows it before the cap. ``following``: instead, only the closes whose next close falls
    in that range (at or after the cap). Columns: the close's instant, kind, amount and
    currency, then the deal's type, currency, opening instant and id.
    """
    window = reading.window
    deal, close = reading.table("deal"), reading.table("close")
    after = close.alias("next_close")
    joined = close.join(
        deal, sa.and_(deal.c.opportunity_id == close.c.opportunity_id, window.known(deal))
    )
    linked = [
        after.c.opportunity_id == close.c.opportunity_id,
        after.c.seq == close.c.seq + 1,
        window.known(after),
    ]
    where = [
        window.known(close),
        close.c.kind.in_((WON, LOST)),
        close.c.at_us >= lo,
        close.c.at_us < hi,
    ]
    if following is None:
        joined = joined.outerjoin(after, sa.and_(*linked, after.c.at_us < window.cap))
        where.append(after.c.opportunity_id.is_(None))
    else:
        joined = joined.join(after, sa.and_(*linked))
        where += [after.c.at_us >= following[0], after.c.at_us < following[1]]
    return (
        sa.select(
            close.c.at_us,
            close.c.kind,
            close.c.amount,
            close.c.currency,
            deal.c.opp_type,
            deal.c.currency,
            deal.c.opened_us,
            deal.c.opportunity_id,
        )
        .select_from(joined)
        .where(*where)
    )
