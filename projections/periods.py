"""Reporting periods: days, weeks, months and fiscal quarters in a reporting timezone.

Business time is stored as integer microseconds since the Unix epoch (UTC). A period is the
half-open interval ``[start, end)`` between two local midnights of the reporting timezone; see
docs/metrics.md, section "Periods and instants".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from projections.errors import ReportError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
FOREVER = 2**62  # the end of an open interval, in microseconds
KINDS = ("day", "week", "month", "quarter")
UTC_ZONE = ZoneInfo("UTC")  # the default reporting timezone


def to_us(moment: datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the epoch (exact)."""
    return (moment - EPOCH) // MICROSECOND


def from_us(micros: int) -> datetime:
    """Integer microseconds since the epoch as a UTC datetime."""
    return EPOCH + timedelta(microseconds=micros)


def zone(name: str) -> ZoneInfo:
    """The reporting timezone called ``name`` (an IANA name such as Europe/Paris)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError(
            f"unknown timezone {name!r}; use an IANA name such as UTC or Europe/Paris"
        ) from None


def parse_day(text: str, option: str) -> date:
    """Parse a YYYY-MM-DD option value."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(f"{option}: {text!r} is not a date (YYYY-MM-DD)") from None


def parse_moment(text: str, option: str, tz: ZoneInfo) -> datetime:
    """Parse a timestamp option; a bare date means the end of that day, no offset means ``tz``."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return midnight(day + timedelta(days=1), tz) - MICROSECOND
        moment = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{option}: {text!r} is not a timestamp (e.g. 2025-04-05T17:00:00Z or 2025-04-05)"
        raise ReportError(msg) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant (UTC) at which ``day`` starts in ``tz``."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """One reporting period: a label and its ``[start, end)`` bounds in epoch microseconds."""

    label: str
    first_day: date
    start: int
    end: int


@dataclass(frozen=True)
class Calendar:
    """How business time is cut into periods: kind, reporting timezone, fiscal-year start month."""

    kind: str = "month"
    tz: ZoneInfo = UTC_ZONE
    fiscal_start: int = 1

    def __post_init__(self) -> None:
        """Refuse kinds and months that do not exist."""
        if self.kind not in KINDS:
            raise ReportError(f"unknown period {self.kind!r}; expected one of {', '.join(KINDS)}")
        if not 1 <= self.fiscal_start <= 12:
            raise ReportError(f"fiscal year start month {self.fiscal_start} is not in 1..12")

    def first_day(self, day: date) -> date:
        """The first day of the period containing ``day``."""
        if self.kind == "day":
            return day
        if self.kind == "week":
            return day - timedelta(days=day.weekday())
        if self.kind == "month":
            return day.replace(day=1)
        offset = (day.month - self.fiscal_start) % 12 // 3 * 3
        month0 = (self.fiscal_start - 1 + offset) % 12 + 1
        year = day.year if month0 <= day.month else day.year - 1
        return date(year, month0, 1)

    def following(self, first: date) -> date:
        """The first day of the period after the one starting on ``first``."""
        if self.kind == "day":
            return first + timedelta(days=1)
        if self.kind == "week":
            return first + timedelta(days=7)
        months = 1 if self.kind == "month" else 3
        index = first.year * 12 + first.month - 1 + months
        return date(index // 12, index % 12 + 1, 1)

    def label(self, first: date) -> str:
        """A period's name: 2025-03-05, 2025-W10, 2025-03, FY2025-Q1 (FY named by its end year)."""
        if self.kind == "day":
            return first.isoformat()
        if self.kind == "week":
            year, week, _ = first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "month":
            return f"{first.year:04d}-{first.month:02d}"
        quarter = (first.month - self.fiscal_start) % 12 // 3 + 1
        end_year = first.year + (
            1 if self.fiscal_start > 1 and first.month >= self.fiscal_start else 0
        )
        return f"FY{end_year}-Q{quarter}"

    def period(self, first: date) -> Period:
        """The period starting on ``first``."""
        after = self.following(first)
        return Period(
            self.label(first),
            first,
            to_us(midnight(first, self.tz)),
            to_us(midnight(after, self.tz)),
        )

    def periods(self, start: date, end: date) -> list[Period]:
        """The periods that cover the days ``start`` to ``end`` (inclusive), in order."""
        if end < start:
            raise ReportError(f"--to {end} is before --from {start}")
        out: list[Period] = []
        first = self.first_day(start)
        while first <= end:
            out.append(self.period(first))
            first = self.following(first)
        return out

    def bucket(self, micros: int) -> date:
        """The first day of the period containing the instant ``micros``."""
        return self.first_day(from_us(micros).astimezone(self.tz).date())
