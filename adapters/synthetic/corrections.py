"""What happens to a story's facts on their way to the ledger: corrections and late delivery.

Revenue operations retracts a few facts (a touch recorded in error, an activity logged on the wrong
lead) and amends others (a stage change entered with the wrong date, a mistyped amount, a wrong
country), days later; a few facts are delivered many leads later than their business time says.
A correction always follows its target in the stream: targets are never delayed, and a
correction's business time is after its target's.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any

from adapters.synthetic.clock import DAY, HOUR, Clock, lognormal
from adapters.synthetic.deals import hundreds
from adapters.synthetic.facts import Block, Record, cents, money
from adapters.synthetic.reference import (
    CORRECTION_GAP,
    COUNTRIES,
    DOMAIN,
    LATE_DELAY_LEADS,
    P_CORRECTION,
    P_LATE,
    P_LATE_CORRECTION,
    REVOPS,
)

if TYPE_CHECKING:
    from random import Random

Timed = tuple[int, Record]
Change = tuple[str, dict[str, Any] | None, str]  # (kind, changes, reason)


def _change(target: Record, t: int, clock: Clock, rng: Random) -> Change:
    """Decide how revenue operations corrects ``target``: (correction type, changes, reason)."""
    kind = target["type"]
    if kind == "touch_recorded":
        reason = rng.choice(("bot traffic", "internal test submission", "recorded in error"))
        return "fact_retracted", None, reason
    if kind == "sales_activity_recorded":
        return "fact_retracted", None, "logged on the wrong lead"
    if kind == "stage_changed":
        moved = max(0, t - rng.randrange(HOUR, 3 * DAY))
        return "fact_amended", {"occurred_at": clock.iso(moved)}, "wrong date entered"
    if kind == "lead_captured":
        country = rng.choice([c[0] for c in COUNTRIES if c[0] != target["country"]])
        return "fact_amended", {"country": country}, "country corrected from enrichment"
    amount = hundreds(cents(target["amount"]) / 100 * rng.uniform(0.85, 1.15))
    return "fact_amended", {"amount": money(amount)}, "amount mistyped"


def _correction(block: Block, rng: Random, key: str, t: int, target: Record) -> Timed | None:
    """Return a correction of ``target`` (at second ``t``) made days later, if one is made."""
    chance = P_CORRECTION.get(target["type"])
    if chance is None or rng.random() >= chance:
        return None
    kind, changes, reason = _change(target, t, block.clock, rng)
    when = t + max(HOUR, round(lognormal(rng, *CORRECTION_GAP) * DAY))
    if when >= block.clock.end:
        return None
    extra = {"changes": changes} if changes else {}
    actor = f"{rng.choice(REVOPS)}@{DOMAIN}"
    record = block.record(
        when,
        kind,
        "manual",
        key,
        actor,
        target_source=target["source"],
        target_source_id=target["source_id"],
        reason=reason,
        **extra,
    )
    return when, record


def release(block: Block, rng: Random, key: str) -> tuple[list[Record], list[tuple[int, Record]]]:
    """Split a block into its facts due now (in time order) and its late ones (delay in leads)."""
    late: list[tuple[int, Record]] = []
    now: list[Timed] = []
    for t, record in block.items:
        if rng.random() < P_LATE:
            late.append((rng.randint(*LATE_DELAY_LEADS), record))
        else:
            now.append((t, record))
    for t, record in list(now):
        correction = _correction(block, rng, key, t, record)
        if correction is None:
            continue
        if rng.random() < P_LATE_CORRECTION:
            late.append((rng.randint(*LATE_DELAY_LEADS), correction[1]))
        else:
            now.append(correction)
    now.sort(key=itemgetter(0))
    return [record for _, record in now], late
