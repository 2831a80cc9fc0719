"""Business time inside the generated window, kept as whole seconds since the window opened.

Month ``k`` of the window is ``[start + k months, start + k + 1 months)``: calendar months when
``start`` is the first of a month (the default). Leads arrive with seasonality (quiet summers and
Decembers, busy autumns), fewer at weekends and with slow growth; people act in the business hours
of their region; systems act at any hour.
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import math
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from random import Random

DAY = 86_400
HOUR = 3_600
WEEKDAY_WEIGHTS = (1.0, 1.05, 1.05, 1.0, 0.85, 0.22, 0.18)  # Monday to Sunday
SEASON = (1.05, 1.0, 1.1, 1.0, 1.0, 0.92, 0.78, 0.72, 1.1, 1.15, 1.0, 0.68)  # January to December
GROWTH_PER_YEAR = 0.15
BUSINESS_HOURS = {"NA": (13, 22), "EMEA": (8, 17), "APAC": (0, 9)}  # UTC hours, open to close
P_CAPTURE_IN_HOURS = 0.75  # the rest of the inquiries arrive at any hour


def add_months(day: date, months: int) -> date:
    """Return the same day of the month ``months`` later (clamped to the month's last day)."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def lognormal(rng: Random, median: float, sigma: float) -> float:
    """Draw from a lognormal distribution with the given median (how long things take)."""
    return median * math.exp(sigma * rng.gauss())


class Clock:
    """The window ``[start, start + months)``: month bounds, formatting and working hours."""

    def __init__(self, start: date, months: int) -> None:
        """Lay out the window's months and days."""
        self.start = start
        self.bounds = tuple(add_months(start, k) for k in range(months + 1))
        self.month_starts = tuple((b - start).days * DAY for b in self.bounds)
        self.end = self.month_starts[-1]
        days = self.end // DAY
        self._labels = tuple((start + timedelta(d)).isoformat() for d in range(days))
        self._weekday = start.weekday()
        weights = (self._day_weight(d) for d in range(days))
        self._cumulative = list(itertools.accumulate(weights))

    def _day_weight(self, offset: int) -> float:
        day = self.start + timedelta(offset)
        trend = 1 + GROWTH_PER_YEAR * offset / 365
        return SEASON[day.month - 1] * WEEKDAY_WEIGHTS[day.weekday()] * trend

    def iso(self, t: int) -> str:
        """Format second ``t`` (inside the window) as an RFC 3339 UTC timestamp."""
        day, second = divmod(t, DAY)
        hour, second = divmod(second, HOUR)
        minute, second = divmod(second, 60)
        return f"{self._labels[day]}T{hour:02d}:{minute:02d}:{second:02d}Z"

    def date_label(self, t: int) -> str:
        """Format the date of second ``t``, inside the window or not, as YYYY-MM-DD."""
        return (self.start + timedelta(t // DAY)).isoformat()

    def month_of(self, t: int) -> int:
        """Return the index of the month that holds second ``t``."""
        return bisect.bisect_right(self.month_starts, t) - 1

    def capture_time(self, position: float, region: str, rng: Random) -> int:
        """Return when the lead at ``position`` (0 to 1) of the seasonal arrival curve arrives."""
        day = bisect.bisect_left(self._cumulative, position * self._cumulative[-1])
        day = min(day, len(self._cumulative) - 1)
        if rng.random() < P_CAPTURE_IN_HOURS:
            opens, closes = BUSINESS_HOURS[region]
            second = opens * HOUR + rng.randrange((closes - opens) * HOUR)
        else:
            second = rng.randrange(DAY)
        return day * DAY + second

    def business(self, t: float, region: str, rng: Random) -> int:
        """Return the first working second at or after ``t`` in ``region`` (morning backlog too)."""
        opens, closes = BUSINESS_HOURS[region]
        day, second = divmod(int(t), DAY)
        if second >= closes * HOUR:
            day += 1
            second = -1
        moved = second < opens * HOUR
        while (self._weekday + day) % 7 >= 5:
            day += 1
            moved = True
        if moved:
            second = opens * HOUR + rng.randrange(2 * HOUR)
        return day * DAY + second
