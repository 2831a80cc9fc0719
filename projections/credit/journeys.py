"""One deal's journey and its credit: which touches count, which positions they hold, who gets what.

Definitions (docs/credit.md, "Journeys" and "Positions"): the journey of a deal for a milestone
``M`` (opportunity creation for pipeline and deals, the win for revenue) is every touch of a
linked lead with ``opened - lookback <= at <= M``, in the order ``(at, source, source_id)``.
A position names the group of touches at one timestamp; ties share the position's weight
equally, a touch holding several positions adds their weights, positions that do not occur drop
out and the other weights scale up, and a deal without a weighted touch credits ``(no touch)``.

Weights are computed once, as integers over a common scale (:class:`Crediting`): the exact
fractions of :func:`shares` are those integers over the scale, and the reports allocate the
integers directly (:func:`projections.credit.allocation.allocate_integral`), which gives the
same parts as allocating the fractions, without fraction arithmetic.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Container, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from operator import itemgetter
from typing import NamedTuple

from projections.credit.allocation import allocate, allocate_integral
from projections.credit.models import Model

DAY_US = 86_400_000_000
NO_TOUCH = "(no touch)"
NO_CAMPAIGN = "(no campaign)"


class Touch(NamedTuple):
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


ORDER = itemgetter(1, 5, 6)  # Touch.order, as a fast sort key


def credit_key(touch: Touch | None, by: str) -> str:
    """The campaign id or channel a touch counts for (``(no touch)``, ``(no campaign)``)."""
    if touch is None:
        return NO_TOUCH
    if by == "channel":
        return touch.channel
    return touch.campaign_id or NO_CAMPAIGN


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


def _latest(ats: Sequence[int], until: int) -> range:
    """The indexes of the latest touches at or before ``until`` (all of those tied at that time)."""
    end = bisect_right(ats, until)
    return range(bisect_left(ats, ats[end - 1]), end) if end else range(0)


def _positions(
    journey: Journey, ats: Sequence[int], wanted: Container[str]
) -> dict[str, Sequence[int]]:
    """The touch indexes at each position in ``wanted`` that occurs (``ats``: the touch times)."""
    if not ats:
        return {}
    found: dict[str, Sequence[int]] = {}
    if "first" in wanted:
        found["first"] = range(bisect_right(ats, ats[0]))
    if "last" in wanted:
        found["last"] = _latest(ats, journey.milestone_us)
    if "opportunity_creation" in wanted:
        found["opportunity_creation"] = _latest(ats, journey.opened_us)
    if journey.won_us is not None and "closed_won" in wanted:
        found["closed_won"] = _latest(ats, journey.won_us)
    if journey.created is not None and "lead_creation" in wanted:
        lead, captured = journey.created
        touches = journey.touches
        own = [i for i, t in enumerate(touches) if t.lead_id == lead and t.at_us <= captured]
        if own:
            at = ats[own[-1]]  # in order: the last of them is the latest
            found["lead_creation"] = [i for i in own if ats[i] == at]
    return {p: group for p, group in found.items() if group}


ALL_POSITIONS = frozenset({"first", "last", "opportunity_creation", "closed_won", "lead_creation"})


def positions(journey: Journey) -> dict[str, list[int]]:
    """The touch indexes at each position that occurs in the journey."""
    ats = [t.at_us for t in journey.touches]
    return {p: list(g) for p, g in _positions(journey, ats, ALL_POSITIONS).items()}


class Crediting:
    """A model's weights as integers over a common scale, and the credit they give."""

    def __init__(self, model: Model) -> None:
        """Scale the model's positional weights and rest weight to integers once."""
        self.model = model
        self.decay = None if model.half_life_days is None else float(model.half_life_days) * DAY_US
        held = {p: w for p, w in model.weights.items() if w}
        denominators = [w.denominator for w in (*held.values(), model.rest)]
        self.scale = math.lcm(*denominators)
        self.weights = {p: w.numerator * (self.scale // w.denominator) for p, w in held.items()}
        self.rest = model.rest.numerator * (self.scale // model.rest.denominator)

    def weigh(
        self, journey: Journey, roles: list[list[str]] | None = None
    ) -> tuple[list[int], int]:
        """Integer weights of the touches and their scale: weight ``i`` is ``w[i] / scale``.

        With ``roles`` (a list per touch), the positions each touch holds are appended to it.
        """
        touches = journey.touches
        if self.decay is not None:
            milestone, decay = journey.milestone_us, self.decay
            ratios = [(2.0 ** (-(milestone - t.at_us) / decay)).as_integer_ratio() for t in touches]
            scale = max((d for _, d in ratios), default=1)  # powers of two: the lcm is the max
            return [n * (scale // d) for n, d in ratios], scale
        count = len(touches)
        if not self.weights:  # no position weighs (linear): every touch is rest
            if roles is not None and self.rest:
                for held in roles:
                    held.append("rest")
            return [self.rest] * count, self.scale * (count if self.rest and count else 1)
        return self._positional(journey, roles)

    def _positional(self, journey: Journey, roles: list[list[str]] | None) -> tuple[list[int], int]:
        """:meth:`weigh` for a model that weighs some positions."""
        count = len(journey.touches)
        held = _positions(journey, [t.at_us for t in journey.touches], self.weights)
        weights = [0] * count
        marked = [False] * count
        for group in held.values():
            for i in group:
                marked[i] = True
        rest = [i for i in range(count) if not marked[i]] if self.rest else []
        lcm = math.lcm(*(len(g) for g in held.values()), len(rest) or 1)
        weighed = [(self.weights[p], p, g) for p, g in held.items()]
        if rest:
            weighed.append((self.rest, "rest", rest))
        for weight, position, group in weighed:
            add = weight * (lcm // len(group))
            for i in group:
                weights[i] += add
                if roles is not None:
                    roles[i].append(position)
        return weights, self.scale * lcm

    def shares(self, journey: Journey) -> list[Share]:
        """Every touch's weight (one ``None`` share when no touch gets weight)."""
        roles: list[list[str]] = [[] for _ in journey.touches]
        weights, scale = self.weigh(journey, roles)
        if not any(weights):
            return [Share(None, Fraction(1))]
        return [
            Share(t, Fraction(w, scale), tuple(r))
            for t, w, r in zip(journey.touches, weights, roles, strict=True)
        ]

    def split(
        self, journey: Journey, amount: Decimal, unit: Decimal | None = None
    ) -> list[tuple[Touch | None, Decimal]]:
        """Each touch's part of ``amount``: the same parts as :func:`credit`, computed faster."""
        weights, _ = self.weigh(journey)
        if not any(weights):
            return [(None, allocate_integral(amount, [1], unit)[0])]
        parts = allocate_integral(amount, weights, unit)
        return list(zip(journey.touches, parts, strict=True))


def shares(model: Model, journey: Journey) -> list[Share]:
    """Every touch's weight under ``model`` (one ``None`` share when no touch gets weight)."""
    return Crediting(model).shares(journey)


def credit(
    model: Model, journey: Journey, amount: Decimal, unit: Decimal | None = None
) -> list[tuple[Share, Decimal]]:
    """Each share's part of ``amount``: exact to the unit, summing to the amount, never negative."""
    found = shares(model, journey)
    parts = allocate(amount, [s.weight for s in found], unit)
    return list(zip(found, parts, strict=True))
