"""Unit tests of reporting periods: timezones, weeks, fiscal quarters and labels."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from projections.errors import ReportError
from projections.periods import Calendar, parse_moment, to_us


def test_month_bounds_follow_the_reporting_timezone():
    """A Paris month starts at local midnight, 23:00 UTC the day before in winter."""
    period = Calendar("month", ZoneInfo("Europe/Paris")).period(date(2025, 1, 1))
    assert period.start == to_us(datetime(2024, 12, 31, 23, tzinfo=UTC))
    assert period.end == to_us(datetime(2025, 1, 31, 23, tzinfo=UTC))


def test_periods_across_dst_have_local_midnight_bounds():
    """The March period in New York ends at 04:00 UTC (EDT), starts at 05:00 UTC (EST)."""
    period = Calendar("month", ZoneInfo("America/New_York")).period(date(2025, 3, 1))
    assert period.start == to_us(datetime(2025, 3, 1, 5, tzinfo=UTC))
    assert period.end == to_us(datetime(2025, 4, 1, 4, tzinfo=UTC))


def test_fiscal_quarters_follow_the_fiscal_start_month():
    """With an April fiscal year, 15 Feb 2025 is in FY2025-Q4 starting 1 Jan 2025."""
    calendar = Calendar("quarter", fiscal_start=4)
    first = calendar.first_day(date(2025, 2, 15))
    assert first == date(2025, 1, 1)
    assert calendar.label(first) == "FY2025-Q4"
    assert calendar.label(calendar.first_day(date(2025, 4, 1))) == "FY2026-Q1"


def test_calendar_quarters_by_default():
    """January fiscal start gives calendar quarters."""
    calendar = Calendar("quarter")
    assert calendar.first_day(date(2025, 8, 31)) == date(2025, 7, 1)
    assert calendar.label(date(2025, 7, 1)) == "FY2025-Q3"


def test_weeks_start_on_monday_with_iso_labels():
    """ISO weeks: 2025-01-01 (a Wednesday) is in 2025-W01 starting Monday 2024-12-30."""
    calendar = Calendar("week")
    assert calendar.first_day(date(2025, 1, 1)) == date(2024, 12, 30)
    assert calendar.label(date(2024, 12, 30)) == "2025-W01"


def test_periods_cover_the_range_inclusive():
    """From mid-January to mid-March gives three months."""
    labels = [p.label for p in Calendar("month").periods(date(2025, 1, 15), date(2025, 3, 2))]
    assert labels == ["2025-01", "2025-02", "2025-03"]


def test_a_bare_date_as_known_at_means_the_end_of_that_day():
    """--known-at 2025-04-05 includes everything recorded that day."""
    moment = parse_moment("2025-04-05", "--known-at", ZoneInfo("UTC"))
    assert moment == datetime(2025, 4, 5, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "fiscal"), [("fortnight", 1), ("month", 13)])
def test_bad_calendars_are_refused(kind, fiscal):
    """Unknown kinds and months outside 1..12 raise ReportError."""
    with pytest.raises(ReportError):
        Calendar(kind, fiscal_start=fiscal)
