"""What a report looks at: its options resolved into periods, a business-time cap and a ledger time.

See docs/metrics.md, sections "Periods and instants" and "Two timelines".
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from projections.credit.options import CreditOptions
from projections.errors import ReportError
from projections.periods import FOREVER, Calendar, Period, midnight, to_us
from projections.stages import check_stage

BY_FIELDS = ("lead_source", "segment", "country", "owner", "channel")
NONE_GROUP = "(none)"
DEFAULT_PERIODS = 12
DAY_US = 86_400_000_000
PERIODS_PER_QUERY = 200
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MONDAY = 4  # 1970-01-05, the first Monday of the epoch (day 0 was a Thursday)
# the grains of the roll-ups: UTC day, ISO week (keyed by its Monday), UTC month and quarter
# (keyed by their first day)
DAY, WEEK, MONTH, QUARTER = "d", "w", "m", "q"


def day_of(us: int) -> int:
    """The UTC day (days since 1970-01-01) holding the instant ``us`` (floored before 1970 too)."""
    return us // DAY_US


def month_of(day: int) -> int:
    """The first day of the UTC month holding ``day`` (month rows are keyed by it)."""
    return day - date.fromordinal(day + EPOCH_ORDINAL).day + 1


def next_month(day: int) -> int:
    """The first day of the UTC month after the one holding ``day``."""
    first = date.fromordinal(month_of(day) + EPOCH_ORDINAL)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following.toordinal() - EPOCH_ORDINAL


def week_of(day: int) -> int:
    """The Monday starting the ISO week holding the UTC ``day`` (week rows are keyed by it)."""
    return day - (day - MONDAY) % 7


def quarter_of(day: int) -> int:
    """The first day of the UTC quarter holding ``day`` (quarter rows are keyed by it)."""
    first = date.fromordinal(day + EPOCH_ORDINAL)
    return date(first.year, first.month - (first.month - 1) % 3, 1).toordinal() - EPOCH_ORDINAL


def grain_starts(day: int) -> tuple[tuple[str, int], ...]:
    """The roll-up rows holding the UTC ``day``: (grain, its first day) for every grain."""
    month = month_of(day)
    return (DAY, day), (WEEK, week_of(day)), (MONTH, month), (QUARTER, quarter_of(month))


def is_bound(day: int) -> bool:
    """Whether the UTC ``day`` starts a month or an ISO week (a Monday): ``rl_roll_ended``'s."""
    return week_of(day) == day or month_of(day) == day


def bounds_in(first: int, last: int) -> list[int]:
    """The UTC days from ``first`` to ``last`` (both included) that are bounds, in order."""
    mondays = range(week_of(first + 6), last + 1, 7)
    starts = []
    start = first if month_of(first) == first else next_month(first)
    while start <= last:
        starts.append(start)
        start = next_month(start)
    return sorted(set(mondays).union(starts)) if starts else list(mondays)


@dataclass(frozen=True)
class ReportOptions:
    """Everything a report can be asked (the CLI's options, typed); ``credit``: credit reports."""

    calendar: Calendar = field(default_factory=Calendar)
    start: date | None = None
    end: date | None = None
    as_of: date | None = None
    known_at: datetime | None = None
    stage: str | None = None
    by: str | None = None
    within: int = 30
    basis: str = "cohort"
    matrix: bool = False
    credit: CreditOptions = field(default_factory=CreditOptions)

    def __post_init__(self) -> None:
        """Refuse unknown stages, fields and bases, and negative windows."""
        if self.stage is not None:
            check_stage(self.stage)
        if self.by is not None and self.by not in BY_FIELDS:
            raise ReportError(f"cannot split by {self.by!r}; use one of {', '.join(BY_FIELDS)}")
        if self.basis not in {"cohort", "period"}:
            raise ReportError(f"unknown conversion basis {self.basis!r}; use cohort or period")
        if self.within < 0:
            raise ReportError(f"--within {self.within}: the number of days must be 0 or more")
        if self.known_at is not None and self.known_at.tzinfo is None:
            raise ReportError("--known-at needs a timezone")

    def replace(self, **changes: object) -> ReportOptions:
        """A copy with some options changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Window:
    """Resolved options: the periods (clipped at the as-of cap) and the ledger time to read at."""

    options: ReportOptions
    periods: Sequence[Period]
    cap: int  # business-time cap (exclusive): the end of the as-of day
    as_of: date
    known_at: int | None  # None: as known now

    @classmethod
    def resolve(cls, options: ReportOptions, now: datetime | None = None) -> Window:
        """Fill in defaults: as of today, up to 12 periods ending on the as-of date."""
        calendar = options.calendar
        today = (now or datetime.now(UTC)).astimezone(calendar.tz).date()
        as_of = options.as_of or today
        end = min(options.end or as_of, as_of)
        start = options.start
        if start is None:
            first = calendar.first_day(end)
            for _ in range(DEFAULT_PERIODS - 1):
                first = calendar.first_day(first - timedelta(days=1))
            start = first
        if start > as_of:
            raise ReportError(f"--from {start} is after the as-of date {as_of}")
        cap = to_us(midnight(as_of + timedelta(days=1), calendar.tz))
        periods = [
            dataclasses.replace(p, end=min(p.end, cap)) for p in calendar.periods(start, end)
        ]
        known = to_us(options.known_at) if options.known_at is not None else None
        return cls(options, periods, cap, as_of, known)

    def without_stage(self) -> Window:
        """The same window with the ``--stage`` filter lifted (for balances of every stage)."""
        return dataclasses.replace(self, options=self.options.replace(stage=None))

    def known(self, table: sa.FromClause) -> sa.ColumnElement[bool]:
        """Rows of ``table`` as the ledger knew them at the window's ledger time."""
        if self.known_at is None:
            return table.c.known_to == FOREVER
        return sa.and_(table.c.known_from <= self.known_at, table.c.known_to > self.known_at)

    def chunks(self) -> list[range]:
        """Period indexes in runs short enough for one query (SQLite caps compound SELECTs)."""
        size = PERIODS_PER_QUERY
        return [
            range(i, min(i + size, len(self.periods))) for i in range(0, len(self.periods), size)
        ]

    def periods_cte(self, indexes: range, name: str = "periods") -> sa.CTE:
        """The periods ``indexes`` as a table ``(idx, p_start, p_end)`` usable in joins."""
        selects = [
            sa.select(
                sa.literal(i, sa.Integer).label("idx"),
                sa.literal(p.start, sa.BigInteger).label("p_start"),
                sa.literal(p.end, sa.BigInteger).label("p_end"),
            )
            for i in indexes
            for p in (self.periods[i],)
        ]
        return sa.union_all(*selects).cte(name) if len(selects) > 1 else selects[0].cte(name)

    def notes(self) -> list[str]:
        """Human-readable statement of what the report shows."""
        cal = self.options.calendar
        known = (
            f"as known at {self.options.known_at:%Y-%m-%d %H:%M:%S%z}"
            if self.options.known_at
            else "as known now"
        )
        return [
            (
                f"as of {self.as_of} (end of day, {cal.tz.key}), {known}; "
                f"periods by {cal.kind}, fiscal year from month {cal.fiscal_start}; "
                "definitions: docs/metrics.md"
            )
        ]


class PeriodIndex:
    """Finds the window's period containing an instant."""

    def __init__(self, window: Window) -> None:
        """Index the window's periods by their start."""
        self.starts = [p.start for p in window.periods]
        self.ends = [p.end for p in window.periods]

    def __call__(self, at: int) -> int | None:
        """The index of the period containing ``at`` (None when outside every period)."""
        i = bisect.bisect_right(self.starts, at) - 1
        return i if i >= 0 and at < self.ends[i] else None
