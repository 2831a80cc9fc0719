"""Derive an opportunity's read model: the intervals over which its stage, amount and openness hold.

See docs/metrics.md, section "Open pipeline value".
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ledger.events import Fact
from projections.periods import FOREVER, to_us

Row = tuple[Any, ...]
SCALE = Decimal(10000)  # amounts are stored in ten-thousandths, so sums stay exact integers


def to_units(amount: Decimal) -> int:
    """An amount in ten-thousandths of its currency unit."""
    return int((amount * SCALE).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_units(units: int) -> Decimal:
    """Ten-thousandths back to an amount with two decimals."""
    return (Decimal(units) / SCALE).quantize(Decimal("0.01"))


def derive_opportunity(facts: Sequence[Fact]) -> dict[str, set[Row]]:
    """Intervals ``(seq, stage, amount, currency, open, valid_from, valid_to)`` of one opportunity.

    Facts before ``opportunity_opened`` have no state to change and are ignored.
    """
    intervals: list[list[Any]] = []
    state: dict[str, Any] | None = None
    for fact in facts:
        kind = fact.type_name
        values: dict[str, Any] = vars(fact)
        if kind == "opportunity_opened":
            state = {
                "stage": values["stage"],
                "amount": to_units(values["amount"]),
                "currency": values["currency"],
                "open": True,
            }
        elif state is None:
            continue
        elif kind == "opportunity_stage_changed":
            state = {**state, "stage": values["to_stage"]}
        elif kind in {"opportunity_amount_changed", "opportunity_won"}:
            state = {**state, "amount": to_units(values["amount"]), "currency": values["currency"]}
            if kind == "opportunity_won":
                state["open"] = False
        elif kind == "opportunity_lost":
            state = {**state, "open": False}
        elif kind == "opportunity_reopened":
            state = {**state, "open": True}
        at = to_us(fact.occurred_at)
        if intervals:
            intervals[-1][-1] = at
        intervals.append(
            [state["stage"], state["amount"], state["currency"], state["open"], at, FOREVER]
        )
    return {"opp": {(seq, *interval) for seq, interval in enumerate(intervals)}}
