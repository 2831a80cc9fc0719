"""What every story shares: the window, the campaigns, the accounts, the sales team, the ids.

Each story draws from its own random generator, seeded from the run's seed and the story's name,
so a lead's story does not depend on the leads before it; the only state carried from lead to
lead is the opportunity and contract numbering.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING

from adapters.synthetic.accounts import AccountBook
from adapters.synthetic.campaigns import (
    REFERENCE_LEADS_PER_MONTH,
    CampaignPicker,
    campaign_records,
    plan_campaigns,
)
from adapters.synthetic.clock import Clock
from adapters.synthetic.reference import (
    ACCOUNT_MANAGERS,
    AE_TEAMS,
    DOMAIN,
    SCORING_CUTOVER_MONTH,
    SCORING_MODELS,
    SDR_TEAMS,
)

if TYPE_CHECKING:
    from datetime import date

    from adapters.synthetic.facts import Block, Record

Seller = tuple[str, str]  # (e-mail, team)


@dataclass(frozen=True)
class Scene:
    """Where a story is written: the shared world, the story's facts and its random generator."""

    world: World
    block: Block
    rng: Random


class World:
    """The shared setting of one run: ``leads`` leads over ``months`` months from ``start``."""

    def __init__(self, leads: int, seed: int, start: date, months: int) -> None:
        """Lay out the window, the campaign calendar and the account pools."""
        self.leads = leads
        self.seed = seed
        self.clock = Clock(start, months)
        self.campaigns = plan_campaigns(months, self.clock)
        self.picker = CampaignPicker(self.campaigns, months)
        self.accounts = AccountBook(leads, seed)
        self.spend_scale = leads / (months * REFERENCE_LEADS_PER_MONTH)
        self.cutover = (
            self.clock.month_starts[SCORING_CUTOVER_MONTH]
            if months > SCORING_CUTOVER_MONTH
            else self.clock.end
        )
        self._numbers = {"O": 0, "CTR": 0}

    def rng(self, *name: object) -> Random:
        """Return the random generator of the story called ``name`` (stable for a given seed)."""
        return Random(":".join(map(str, (self.seed, *name))))  # noqa: S311 - not for secrets

    def campaign_records(self) -> list[Record]:
        """Return the campaigns' own facts."""
        return campaign_records(self.campaigns, self.clock, self.rng("campaigns"), self.spend_scale)

    def next_id(self, prefix: str, width: int) -> str:
        """Return the next opportunity (``O0000001``) or contract (``CTR000001``) id."""
        self._numbers[prefix] += 1
        return f"{prefix}{self._numbers[prefix]:0{width}d}"

    def model(self, t: int) -> str:
        """Return the scoring model in effect at second ``t``."""
        return SCORING_MODELS[t >= self.cutover]


def sdr(region: str, rng: Random, *, besides: str | None = None) -> Seller:
    """Pick an SDR of the region's team (other than ``besides``, when the team has one)."""
    team, names = SDR_TEAMS[region]
    choices = [n for n in names if f"{n}@{DOMAIN}" != besides] or list(names)
    return f"{rng.choice(choices)}@{DOMAIN}", team


def account_executive(segment: str, rng: Random) -> Seller:
    """Pick an account executive of the segment's team."""
    team, names = AE_TEAMS[segment]
    return f"{rng.choice(names)}@{DOMAIN}", team


def account_manager(rng: Random) -> str:
    """Pick an account manager (renewals and expansion)."""
    return f"{rng.choice(ACCOUNT_MANAGERS)}@{DOMAIN}"
