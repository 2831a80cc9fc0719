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
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from projections.credit.data import Reading, Wanted, check_tables, select_deals
from projections.credit.journeys import DAY_US
from projections.gc_pause import without_gc
from projections.reading import Reader
from projections.report import Report
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


def _arr(reader: Reader, window: Window) -> list[tuple[int, str, Decimal, str]]:
    arr = reader.tables["arr"]
    if not window.periods:
        return []
    query = sa.select(arr.c.at_us, arr.c.kind, arr.c.amount, arr.c.currency).where(
        window.known(arr), arr.c.at_us >= window.periods[0].start, arr.c.at_us < window.cap
    )
    return [
        (at, kind, Decimal(amount), currency) for at, kind, amount, currency in reader.rows(query)
    ]


@without_gc
def revenue(reader: Reader, window: Window) -> Report:
    """Bookings, ARR movements, net new ARR, win rate, deal size, cycle and pipeline velocity."""
    check_tables(reader)
    months: dict[tuple[int, str], Month] = defaultdict(Month)
    find = PeriodIndex(window)
    wanted = Wanted(closed=("won", "lost"), journeys=False)  # opened, or finally closed, in it
    with reader.engine.connect() as conn:
        deals = select_deals(Reading(conn, reader, window, wanted))
    for deal in deals.values():
        opened = find(deal.opened_us)
        if deal.opp_type == "new" and opened is not None:
            months[opened, deal.currency].opened += 1
        closed = None if deal.closed_us is None else find(deal.closed_us)
        if closed is None:
            continue
        if deal.outcome == "won" and deal.won_currency and deal.won_amount is not None:
            month = months[closed, deal.won_currency]
            month.bookings[deal.opp_type] += deal.won_amount
            if deal.opp_type == "new":
                month.won += 1
                month.won_amount += deal.won_amount
                month.cycle_us += deal.closed_us - deal.opened_us  # type: ignore[operator]
        elif deal.outcome == "lost" and deal.opp_type == "new":
            months[closed, deal.currency].lost += 1
    for at, kind, amount, currency in _arr(reader, window):
        index = find(at)
        if index is not None:
            months[index, currency].arr[kind] += amount
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
