"""Exact allocation: split an amount in proportion to weights, to the cent, summing to the amount.

Largest-remainder (Hamilton) method, in integer units of the amount's quantum: every part gets
the whole units of its exact share, and the units left over go one each to the parts with the
largest remainders, earlier parts first among equal remainders. The parts therefore sum exactly
to the amount, are never negative, and a part whose weight is zero gets nothing. See
docs/credit.md, "Allocation".

The result depends only on the ratios of the weights, so :func:`allocate_integral` takes them as
integers (any common multiple of the exact weights): the reports' fast path, with no fractions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

CENT = Decimal("0.01")


def quantum(amount: Decimal) -> Decimal:
    """The unit credit is allocated in: a cent, or the amount's own finer unit (e.g. 0.001)."""
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    return min(CENT, Decimal(1).scaleb(exponent))


def allocate(
    amount: Decimal, weights: Sequence[Fraction], unit: Decimal | None = None
) -> list[Decimal]:
    """Parts of ``amount`` proportional to ``weights`` (non-negative, not all zero), in ``unit``s.

    ``unit`` defaults to :func:`quantum` of the amount; the amount must be a multiple of it.
    """
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    scale = math.lcm(*(w.denominator for w in weights)) if weights else 1
    integral = [w.numerator * (scale // w.denominator) for w in weights]  # exact, in integers
    return allocate_integral(amount, integral, unit)


def allocate_integral(
    amount: Decimal, weights: Sequence[int], unit: Decimal | None = None
) -> list[Decimal]:
    """:func:`allocate` with the weights scaled to non-negative integers (same parts)."""
    total = sum(weights)
    if total == 0:
        raise ValueError("at least one weight must be positive")
    step = unit or quantum(amount)
    units = amount / step
    if units != units.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of {step}")
    return [step * part for part in split_units(int(units), weights, total)]


def split_units(whole: int, weights: Sequence[int], total: int) -> list[int]:
    """``whole`` units in proportion to integer ``weights`` (summing to ``total`` > 0)."""
    count = len(weights)
    first = weights[0]
    if first and weights.count(first) == count:  # equal weights: the earliest take the leftover
        share, leftover = divmod(whole, count)
        return [share + 1] * leftover + [share] * (count - leftover)
    parts, remainders = zip(*(divmod(whole * w, total) for w in weights), strict=True)
    parts_list = list(parts)
    leftover = whole - sum(parts_list)
    if leftover:
        by_remainder = sorted(range(count), key=lambda i: (-remainders[i], i))
        for i in by_remainder[:leftover]:
            parts_list[i] += 1
    return parts_list
