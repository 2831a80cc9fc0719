"""One deal's journey and its credit: which touches count, which positions they hold, who gets what.

Definitions (docs/credit.md, "Journeys" and "Positions"): the journey of a deal for a milestone
``M`` (opportunity creation for pipeline and deals, the win for revenue) is every touch of a
linked lead with ``opened - lookback <= at <= M``, in the order ``(at, source, source_id)``.
A position names the group of touches at one timestamp; ties share the position's weight
equally, a touch holding several positions adds their weights, positions that do not occur drop
out and the other weights scale up, and a deal without a weighted touch credits ``(no touch)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from projections.credit.allocation import allocate
from projections.credit.models import Model

DAY_US = 86_400_000_000
NO_TOUCH = "(no touch)"


@dataclass(frozen=True)
class Touch:
    """One touch of a lead, as the ledger knows it."""

    lead_id: str
    at_us: int
    channel: str
    campaign_id: str | None
    touch_type: str
    source: str
    source_id: str

    def order(self) -> tuple[int, str, str]:
        """The deterministic order of touches: time, then source and source id."""
        return (self.at_us, self.source, self.source_id)


@dataclass(frozen=True)
class Journey:
    """The touches a deal's credit is shared between, and the milestones that fix positions."""

    touches: tuple[Touch, ...]  # in order
    milestone_us: int
    opened_us: int
    won_us: int | None = None  # only when the credited milestone is the win
    created: tuple[str, int] | None = None  # (lead id, capture time) of the lead creation


@dataclass(frozen=True)
class Share:
    """A touch's weight in a journey and the positions it holds (``None``: no touch credited)."""

    touch: Touch | None
    weight: Fraction
    roles: tuple[str, ...] = ()


def _last_group(touches: Sequence[Touch], indexes: Sequence[int], until: int) -> list[int]:
    """The indexes of the latest touches at or before ``until`` (all of those tied at that time)."""
    before = [i for i in indexes if touches[i].at_us <= until]
    if not before:
        return []
    at = max(touches[i].at_us for i in before)
    return [i for i in before if touches[i].at_us == at]


def positions(journey: Journey) -> dict[str, list[int]]:
    """The touch indexes at each position that occurs in the journey."""
    touches = journey.touches
    if not touches:
        return {}
    everyone = range(len(touches))
    found = {
        "first": [i for i in everyone if touches[i].at_us == touches[0].at_us],
        "last": _last_group(touches, everyone, journey.milestone_us),
        "opportunity_creation": _last_group(touches, everyone, journey.opened_us),
    }
    if journey.won_us is not None:
        found["closed_won"] = _last_group(touches, everyone, journey.won_us)
    if journey.created is not None:
        lead, captured = journey.created
        own = [i for i in everyone if touches[i].lead_id == lead]
        found["lead_creation"] = _last_group(touches, own, captured)
    return {p: group for p, group in found.items() if group}


def shares(model: Model, journey: Journey) -> list[Share]:
    """Every touch's weight under ``model`` (one ``None`` share when no touch gets weight)."""
    touches = journey.touches
    if model.half_life_days is not None:
        half_life = float(model.half_life_days) * DAY_US
        weights = [
            Fraction(2.0 ** (-(journey.milestone_us - t.at_us) / half_life)) for t in touches
        ]
        roles: list[list[str]] = [[] for _ in touches]
    else:
        weights = [Fraction(0)] * len(touches)
        roles = [[] for _ in touches]
        held = {p: g for p, g in positions(journey).items() if model.weights.get(p)}
        for position, group in held.items():
            for i in group:
                weights[i] += model.weights[position] / len(group)
                roles[i].append(position)
        rest = [i for i in range(len(touches)) if not roles[i]]
        for i in rest if model.rest else ():
            weights[i] += model.rest / len(rest)
            roles[i].append("rest")
    if not any(weights):
        return [Share(None, Fraction(1))]
    return [Share(t, w, tuple(r)) for t, w, r in zip(touches, weights, roles, strict=True)]


def credit(
    model: Model, journey: Journey, amount: Decimal, unit: Decimal | None = None
) -> list[tuple[Share, Decimal]]:
    """Each share's part of ``amount``: exact to the unit, summing to the amount, never negative."""
    found = shares(model, journey)
    parts = allocate(amount, [s.weight for s in found], unit)
    return list(zip(found, parts, strict=True))
