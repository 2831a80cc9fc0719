"""Exact allocation (largest remainder) and its invariants, including property tests."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.credit.allocation import allocate, quantum
from projections.credit.journeys import DAY_US, Journey, Touch, credit
from projections.credit.models import MODEL_NAMES, model_from_mapping, named_model


def test_leftover_cents_go_to_the_largest_remainders():
    """10.00 split 1:1:1 gives 3.34, 3.33, 3.33 (equal remainders: the earliest part first)."""
    assert allocate(Decimal("10.00"), [Fraction(1)] * 3) == [
        Decimal("3.34"),
        Decimal("3.33"),
        Decimal("3.33"),
    ]


def test_amounts_with_finer_units_are_allocated_in_that_unit():
    """An amount stated to the tenth of a cent is split to the tenth of a cent."""
    assert quantum(Decimal("0.005")) == Decimal("0.001")
    assert allocate(Decimal("0.005"), [Fraction(1), Fraction(1)]) == [
        Decimal("0.003"),
        Decimal("0.002"),
    ]


def test_zero_weight_parts_get_nothing():
    """A part whose weight is zero never receives a leftover cent."""
    assert allocate(Decimal("0.01"), [Fraction(0), Fraction(1), Fraction(1)])[0] == 0


def test_negative_weights_are_refused():
    """Negative weights are a programming error, never silently allocated."""
    with pytest.raises(ValueError, match="negative"):
        allocate(Decimal(1), [Fraction(-1), Fraction(2)])


amounts = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False)
weights = st.lists(st.fractions(min_value=0, max_value=100), min_size=1, max_size=30).filter(any)


@given(amounts, weights)
def test_parts_sum_exactly_to_the_amount_and_are_never_negative(amount, ws):
    """Whatever the weights, the parts add up to the amount to the cent and none is negative."""
    parts = allocate(amount, ws)
    assert sum(parts, Decimal(0)) == amount
    assert all(p >= 0 for p in parts)


journeys = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from(["L1", "L2"]), st.integers(0, 3)),
    max_size=12,
)
models = st.one_of(
    st.sampled_from([m for m in MODEL_NAMES if m != "time-decay"]).map(named_model),
    st.integers(1, 60).map(lambda h: named_model("time-decay", h)),
    st.fixed_dictionaries(
        {}, optional={p: st.integers(0, 50) for p in ("first", "lead_creation", "last", "rest")}
    )
    .filter(lambda d: any(d.values()))
    .map(lambda d: model_from_mapping(d, "prop")),
)


@given(journeys, models, amounts, st.booleans())
def test_every_model_credits_exactly_the_amount_and_never_negative(raw, model, amount, won):
    """Credit of any journey under any model sums to the deal's amount, each part >= 0."""
    touches = tuple(
        sorted(
            (
                Touch(lead, day * DAY_US, "web", f"C{c}", "visit", "s", f"{n}")
                for n, (day, lead, c) in enumerate(raw)
            ),
            key=Touch.order,
        )
    )
    milestone = 400 * DAY_US
    journey = Journey(touches, milestone, 300 * DAY_US, milestone if won else None, ("L1", 10))
    parts = [p for _, p in credit(model, journey, amount)]
    assert sum(parts, Decimal(0)) == amount
    assert all(p >= 0 for p in parts)
