"""The marketing calendar: always-on programs, webinars, events, paid flights and syndication.

For 24 months that is 44 campaigns over nine channels. Each campaign is created before it starts
and records its spend month by month while it runs (paid media synced from the ad platforms,
the rest from invoices). Spend is stated for a company of 20,000 leads in 24 months and scales
with the lead volume, so pipeline-to-spend stays realistic at any size.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.synthetic.clock import DAY, HOUR, Clock
from adapters.synthetic.facts import CURRENCY, Block, Record, money
from adapters.synthetic.reference import DOMAIN, FINANCE, MARKETING_OPS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from random import Random

REFERENCE_LEADS_PER_MONTH = 20_000 / 24
SPEND_JITTER = (0.85, 1.15)


@dataclass(frozen=True)
class Program:
    """A kind of campaign: its channel, spend per month, and pull on new and known leads."""

    channel: str
    kind: str
    monthly_spend: int  # cents, at the reference lead volume; 0 = no program spend
    capture_weight: float  # share of new inquiries it brings
    touch_weight: float  # share of later touches on known leads


ALWAYS_ON = (
    ("Google Ads - Brand", Program("paid_search", "always_on", 3_000_000, 0.07, 0.04)),
    ("Google Ads - Non-Brand", Program("paid_search", "always_on", 9_000_000, 0.15, 0.06)),
    ("LinkedIn Ads - Always-On", Program("paid_social", "always_on", 5_000_000, 0.08, 0.06)),
    ("Website - Organic", Program("organic", "inbound", 0, 0.15, 0.20)),
    ("Newsletter", Program("email", "newsletter", 400_000, 0.03, 0.12)),
    ("Nurture Program", Program("email", "nurture", 300_000, 0.03, 0.18)),
    ("Partner Referrals", Program("partner", "partner", 2_000_000, 0.04, 0.01)),
    ("SDR Outbound", Program("outbound", "outbound", 0, 0.05, 0.05)),
)
WEBINAR = Program("webinar", "webinar", 1_500_000, 0.06, 0.08)
EVENT = Program("event", "conference", 12_000_000, 0.20, 0.06)
FLIGHT = Program("paid_social", "paid_flight", 4_000_000, 0.06, 0.04)
SYNDICATION = Program("content_syndication", "syndication", 6_000_000, 0.14, 0.01)
WEBINAR_TOPICS = (
    "Pipeline Forecasting 101", "Attribution Without Tears", "Is the MQL Dead?",
    "RevOps Benchmarks", "ABM at Scale", "Building a Lead SLA", "Win-Rate Deep Dive",
    "Data Hygiene for CRMs", "Buying Committees", "Planning Next Year's Demand",
    "Intent Data in Practice", "Net Revenue Retention",
)  # fmt: skip
EVENTS = (
    "SaaStr Annual", "B2B Marketing Exchange", "Pavilion CMO Summit", "Dreamforce",
    "RevOps Live", "Web Summit", "Forrester B2B Summit", "INBOUND",
)  # fmt: skip
SYNDICATORS = ("TechTarget", "Integrate", "NetLine", "Madison Logic")
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Campaign:
    """A campaign that runs for months ``[first, last)`` of the window."""

    id: str
    name: str
    program: Program
    first: int
    last: int


def _calendar(months: int, clock: Clock) -> Iterator[tuple[int, int, str, Program]]:
    """(first month, last month, name, program) of every campaign, in no particular order."""
    for name, program in ALWAYS_ON:
        yield 0, months, name, program
    for k in range(0, months, 2):
        label = f"{MONTH_NAMES[clock.bounds[k].month - 1]} {clock.bounds[k].year}"
        yield k, min(k + 2, months), f"Webinar: {WEBINAR_TOPICS[k // 2 % 12]} ({label})", WEBINAR
    for k in range(0, months, 3):
        day = clock.bounds[k]
        quarter = f"Q{(day.month - 1) // 3 + 1} {day.year}"
        last = min(k + 3, months)
        yield k, last, f"LinkedIn ABM Flight {quarter}", FLIGHT
        yield k, last, f"Syndication: {SYNDICATORS[k // 3 % 4]} {quarter}", SYNDICATION
        if k + 1 < months:
            event = f"{EVENTS[k // 3 % 8]} {clock.bounds[k + 1].year}"
            yield k + 1, k + 2, event, EVENT


def plan_campaigns(months: int, clock: Clock) -> tuple[Campaign, ...]:
    """Every campaign of the window, numbered ``CMP001``... in order of start."""
    planned = sorted(_calendar(months, clock), key=lambda c: c[0])
    return tuple(
        Campaign(f"CMP{n:03d}", name, program, first, last)
        for n, (first, last, name, program) in enumerate(planned, start=1)
    )


def campaign_records(
    campaigns: tuple[Campaign, ...], clock: Clock, rng: Random, scale: float
) -> list[Record]:
    """Write the ``campaign_created`` and monthly ``campaign_spend_recorded`` facts, by time."""
    timed: list[tuple[int, Record]] = []
    for campaign in campaigns:
        block = Block(clock)  # one per campaign: its ids count from 1
        key = f"campaign:{campaign.id}"
        launch = max(clock.month_starts[campaign.first] - 14 * DAY, 0)
        created = clock.business(launch, "NA", rng)
        program = campaign.program
        owner = f"{rng.choice(MARKETING_OPS)}@{DOMAIN}"
        block.add(
            created,
            "campaign_created",
            "hubspot",
            key,
            owner,
            campaign_id=campaign.id,
            name=campaign.name,
            channel=program.channel,
            campaign_type=program.kind,
        )
        if program.monthly_spend:
            for month in range(campaign.first, campaign.last):
                amount = round(program.monthly_spend * scale * rng.uniform(*SPEND_JITTER))
                _spend(block, clock, campaign, month, amount)
        timed.extend(block.items)
    timed.sort(key=lambda item: item[0])
    return [record for _, record in timed]


def _spend(block: Block, clock: Clock, campaign: Campaign, month: int, amount: int) -> None:
    synced = campaign.program.channel in {"paid_search", "paid_social"}
    source, actor = ("hubspot", "system:ads-sync") if synced else ("manual", f"{FINANCE}@{DOMAIN}")
    last_day = clock.month_starts[month + 1] - DAY
    block.add(
        last_day + 20 * HOUR,
        "campaign_spend_recorded",
        source,
        f"campaign:{campaign.id}",
        actor,
        campaign_id=campaign.id,
        amount=money(amount),
        currency=CURRENCY,
        period_start=clock.bounds[month].isoformat(),
        period_end=clock.date_label(last_day),
    )


class CampaignPicker:
    """Chooses the campaign behind a new inquiry or a later touch, among those running then."""

    def __init__(self, campaigns: tuple[Campaign, ...], months: int) -> None:
        """Index the running campaigns and their cumulative weights, month by month."""
        self._running: list[tuple[Campaign, ...]] = []
        self._capture: list[list[float]] = []
        self._touch: list[list[float]] = []
        for month in range(months):
            running = tuple(c for c in campaigns if c.first <= month < c.last)
            self._running.append(running)
            self._capture.append(list(itertools.accumulate(_weights(running, capture=True))))
            self._touch.append(list(itertools.accumulate(_weights(running, capture=False))))

    def capture(self, month: int, rng: Random) -> Campaign:
        """Pick the campaign that brought in a new inquiry during ``month``."""
        return rng.choices(self._running[month], cum_weights=self._capture[month])[0]

    def touch(self, month: int, rng: Random) -> Campaign:
        """Pick the campaign behind a later touch on a known lead during ``month``."""
        return rng.choices(self._running[month], cum_weights=self._touch[month])[0]


def _weights(running: tuple[Campaign, ...], *, capture: bool) -> Iterator[float]:
    """Each running campaign's weight: its program's share split over that program's runs."""
    for campaign in running:
        program = campaign.program
        peers = sum(1 for c in running if c.program == program)
        share = program.capture_weight if capture else program.touch_weight
        yield share / peers
