"""``report revenue``: bookings, recurring-revenue movements and sales metrics per period.

Per period and currency (docs/credit.md, "Revenue"; docs/metrics.md for the sales metrics):

- bookings by opportunity type: Σ won amount of opportunities won in the period;
- ARR movements from contract facts: new (``contract_started.arr``), expansion, contraction,
  churn; ``net_new_arr = new + expansion - contraction - churn``;
- new-business sales metrics: ``opened`` (qualified opportunities opened), ``won``/``lost``
  (closed in the period, by each deal's final close at the cap), ``win_rate = won / (won + lost)``,
  ``avg_deal_size = won amount / won``, ``cycle_days`` = mean days from opened to won,
  ``pipeline_velocity = opened * win_rate * avg_deal_size / cycle_days`` (per day).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from projections.balances import usable
from projections.credit.data import Reading, Wanted, check_tables
from projections.credit.dealroll import outcome_closes, read_rolled
from projections.credit.journeys import DAY_US
from projections.gc_pause import without_gc
from projections.reading import Reader
from projections.report import Report
from projections.rollup import LOST, WON
from projections.window import PeriodIndex, Window

CENT = Decimal("0.01")
TYPES = ("new", "expansion", "renewal")
MOVES = ("new", "expansion", "contraction", "churn")


@dataclass
class Month:
    """One period's numbers in one currency."""

    bookings: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(TYPES, Decimal(0)))
    arr: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(MOVES, Decimal(0)))
    opened: int = 0
    won: int = 0
    lost: int = 0
    won_amount: Decimal = Decimal(0)
    cycle_us: int = 0

    def row(self) -> list[object]:
        """The report columns after period and currency."""
        closed = self.won + self.lost
        rate = self.won / closed if closed else None
        size = (self.won_amount / self.won).quantize(CENT) if self.won else None
        cycle = self.cycle_us / self.won / DAY_US if self.won else None
        velocity = None
        if cycle:  # opened * won/(won+lost) * amount/won / cycle, in exact decimals
            per_day = Decimal(self.opened) * self.won_amount / closed / Decimal(repr(cycle))
            velocity = per_day.quantize(CENT)
        a = self.arr
        net = a["new"] + a["expansion"] - a["contraction"] - a["churn"]
        return [
            *self.bookings.values(),
            *a.values(),
            net,
            self.opened,
            self.won,
            self.lost,
            rate,
            size,
            cycle,
            velocity,
        ]


class _Tally:
    """The report's sums per (period, currency), added to from the roll-up or from table rows."""

    def __init__(self, window: Window) -> None:
        self.find = PeriodIndex(window)
        self.months: dict[tuple[int, str], Month] = defaultdict(Month)

    def opened(self, index: int, opp_type: str, currency: str, n: int) -> None:
        """``n`` deals of ``opp_type`` opened in the period."""
        if opp_type == "new":
            self.months[index, currency].opened += n

    def won(  # noqa: PLR0913, PLR0917 - one argument per summed column
        self, index: int, opp_type: str, currency: str, n: int, amount: Decimal, cycle_us: int
    ) -> None:
        """``n`` deals won in the period, for ``amount`` in all, ``cycle_us`` after opening."""
        month = self.months[index, currency]
        month.bookings[opp_type] += amount
        if opp_type == "new":
            month.won += n
            month.won_amount += amount
            month.cycle_us += cycle_us

    def lost(self, index: int, opp_type: str, currency: str, n: int) -> None:
        """``n`` deals lost in the period."""
        if opp_type == "new":
            self.months[index, currency].lost += n

    def arr(self, index: int, kind: str, currency: str, amount: Decimal) -> None:
        """An ARR movement of ``kind`` in the period."""
        self.months[index, currency].arr[kind] += amount


def _add_closes(
    reading: Reading, query: sa.Select[Any], tally: _Tally, keep: Callable[[int], bool]
) -> None:
    """Add the closes ``query`` finds (and ``keep`` keeps) to ``tally``."""
    for at, kind, amount, currency, opp_type, deal_currency, opened, _ in reading.conn.execute(
        query
    ):
        index = tally.find(at)
        if index is None or not keep(at):
            continue
        if kind == LOST:
            tally.lost(index, opp_type, deal_currency, 1)
        elif amount is not None and currency:
            tally.won(index, opp_type, currency, 1, Decimal(amount), at - opened)


def _exact(reading: Reading, lo: int, hi: int, tally: _Tally) -> None:
    """Add everything in ``[lo, hi)`` to ``tally``, from the deal, close and ARR tables."""
    window = reading.window
    deal, arr = reading.table("deal"), reading.table("arr")
    opened = sa.select(deal.c.opened_us, deal.c.opp_type, deal.c.currency).where(
        window.known(deal), deal.c.opp_type == "new", deal.c.opened_us >= lo, deal.c.opened_us < hi
    )
    for at, opp_type, currency in reading.conn.execute(opened):
        index = tally.find(at)
        if index is not None:
            tally.opened(index, opp_type, currency, 1)
    _add_closes(reading, outcome_closes(reading, lo, hi), tally, lambda _: True)
    moves = sa.select(arr.c.at_us, arr.c.kind, arr.c.amount, arr.c.currency).where(
        window.known(arr), arr.c.at_us >= lo, arr.c.at_us < hi
    )
    for at, kind, amount, currency in reading.conn.execute(moves):
        index = tally.find(at)
        if index is not None:
            tally.arr(index, kind, currency, Decimal(amount))


def _rolled(reading: Reading) -> _Tally | None:
    """The sums from ``rl_roll_deal`` (whole UTC days) and the tables (the rest); None: odd."""
    rolled = read_rolled(reading, ("opened", WON, LOST, "arr"), by_channel=False)
    if rolled is None:
        return None
    tally = _Tally(reading.window)
    for row in rolled.rows:
        if row.what == "opened":
            tally.opened(row.period, row.type, row.currency, row.n)
        elif row.what == LOST:
            tally.lost(row.period, row.type, row.currency, row.n)
        elif row.what == WON:
            tally.won(row.period, row.type, row.currency, row.n, row.amount, row.cycle_us)
        else:
            tally.arr(row.period, row.type, row.currency, row.amount)
    for lo, hi in rolled.pieces:
        _exact(reading, lo, hi, tally)
    if rolled.following is not None:
        periods = reading.window.periods
        query = outcome_closes(reading, periods[0].start, periods[-1].end, rolled.following)
        _add_closes(reading, query, tally, rolled.whole)
    return tally


@without_gc
def revenue(reader: Reader, window: Window) -> Report:
    """Bookings, ARR movements, net new ARR, win rate, deal size, cycle and pipeline velocity.

    From the per-day roll-up (``rl_roll_deal``) when it can answer, else from the tables.
    """
    check_tables(reader)
    tally = None
    with reader.engine.connect() as conn:
        reading = Reading(conn, reader, window, Wanted())
        if window.periods:
            if usable(reader, window):
                tally = _rolled(reading)
            if tally is None:
                tally = _Tally(window)
                _exact(reading, window.periods[0].start, window.periods[-1].end, tally)
    months = {} if tally is None else tally.months
    report = Report(
        f"Revenue per {window.options.calendar.kind}",
        [
            "period",
            "currency",
            *(f"bookings_{t}" for t in TYPES),
            *(f"arr_{m}" for m in MOVES),
            "net_new_arr",
            "opened",
            "won",
            "lost",
            "win_rate",
            "avg_deal_size",
            "cycle_days",
            "pipeline_velocity",
        ],
        notes=[
            *window.notes(),
            (
                "bookings: won amounts by opportunity type; arr_*: contract facts; "
                "net_new_arr = new + expansion - contraction - churn; opened/won/lost, win rate, "
                "deal size, cycle (opened to won, days) and velocity (per day): new business only"
            ),
        ],
    )
    for (i, currency), month in sorted(months.items()):
        report.rows.append([window.periods[i].label, currency, *month.row()])
    return report
