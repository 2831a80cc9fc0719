"""Companies and the people at them: accounts ``A000123`` in three segments, and their leads.

Larger companies send more leads (about 1.3 per small business, 2.5 per mid-market account and 5
per enterprise, concentrated on a few popular accounts). An account is derived from its number
and the seed alone, so nothing about it is kept in memory between leads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from random import Random

from adapters.synthetic.reference import (
    COUNTRIES,
    COUNTRY_WEIGHTS,
    EMPLOYEES,
    FIRST_NAMES,
    FIT_GRADES,
    FIT_WEIGHTS,
    ICP_INDUSTRIES,
    INDUSTRIES,
    JUNIOR_TITLES,
    LAST_NAMES,
    LEADS_PER_ACCOUNT,
    NAME_ENDS,
    NAME_KINDS,
    NAME_STARTS,
    SEGMENT_LEAD_SHARE,
    SEGMENTS,
    TITLE_NAMES,
    TITLE_WEIGHTS,
)

POPULARITY = 1.6  # >1 concentrates leads on the first accounts of a segment
STRIDE = 7_919  # a prime: numbers accounts so that segments are interleaved
ACCOUNT_CACHE = 4_096


@dataclass(frozen=True)
class Account:
    """A company: its segment, firmographics and fit with the ideal customer profile."""

    id: str
    name: str
    domain: str
    segment: str
    industry: str
    employees: int
    country: str
    region: str
    fit: str


@dataclass(frozen=True)
class Person:
    """A lead's person: name, e-mail, title, and fit grade (account fit, lowered for juniors)."""

    name: str
    email: str
    title: str
    fit: str


class AccountBook:
    """The accounts of a run of ``leads`` leads, sized per segment."""

    def __init__(self, leads: int, seed: int) -> None:
        """Size each segment's account pool for the number of leads."""
        self.seed = seed
        self.sizes = tuple(
            max(1, math.ceil(leads * share / per))
            for share, per in zip(SEGMENT_LEAD_SHARE, LEADS_PER_ACCOUNT, strict=True)
        )
        self.offsets = (0, self.sizes[0], self.sizes[0] + self.sizes[1])
        self.total = sum(self.sizes)
        self.stride = STRIDE
        while math.gcd(self.stride, self.total) != 1:
            self.stride += 2
        self.account = lru_cache(maxsize=ACCOUNT_CACHE)(self._account)

    def pick(self, rng: Random) -> Account:
        """Pick a new lead's account: a segment by lead share, then a (popular) account in it."""
        segment = rng.choices(range(3), weights=SEGMENT_LEAD_SHARE)[0]
        index = int(self.sizes[segment] * rng.random() ** POPULARITY)
        number = (self.offsets[segment] + index) * self.stride % self.total + 1
        return self.account(number, segment)

    def _account(self, number: int, segment: int) -> Account:
        rng = Random(f"{self.seed}:account:{number}")  # noqa: S311 - synthetic data, not secrets
        start, end = rng.choice(NAME_STARTS), rng.choice(NAME_ENDS)
        country, region, _, tld = rng.choices(COUNTRIES, weights=COUNTRY_WEIGHTS)[0]
        industry = rng.choice(INDUSTRIES)
        low, high = EMPLOYEES[segment]
        return Account(
            id=f"A{number:06d}",
            name=f"{start}{end} {rng.choice(NAME_KINDS)}",
            domain=f"{start}{end}.{tld}".lower(),
            segment=SEGMENTS[segment],
            industry=industry,
            employees=round(low * (high / low) ** rng.random()),
            country=country,
            region=region,
            fit=rng.choices(FIT_GRADES, weights=FIT_WEIGHTS[industry in ICP_INDUSTRIES])[0],
        )


def person_at(account: Account, rng: Random) -> Person:
    """Draw a new person at ``account``."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    title = rng.choices(TITLE_NAMES, weights=TITLE_WEIGHTS)[0]
    fit = account.fit
    if title in JUNIOR_TITLES and fit != "D":
        fit = FIT_GRADES[FIT_GRADES.index(fit) + 1]
    return Person(f"{first} {last}", f"{first}.{last}@{account.domain}".lower(), title, fit)
