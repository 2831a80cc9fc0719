"""Canonical records as the stories write them: one :class:`Block` of facts per story.

A ``source_id`` is ``<subject key>:<kind>:<n>`` (``lead:L0000001:stage:3``), where ``n`` counts
the facts of the block, so ids are unique and the same on every run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.synthetic.clock import Clock

Record = dict[str, Any]
CURRENCY = "USD"

ID_KIND = {
    "lead_captured": "captured",
    "touch_recorded": "touch",
    "score_changed": "score",
    "stage_changed": "stage",
    "handed_off": "handoff",
    "owner_assigned": "owner",
    "sales_activity_recorded": "activity",
    "lead_accepted": "accepted",
    "lead_rejected": "rejected",
    "lead_recycled": "recycled",
    "lead_disqualified": "disqualified",
    "opportunity_opened": "opened",
    "opportunity_stage_changed": "stage",
    "opportunity_amount_changed": "amount",
    "opportunity_won": "won",
    "opportunity_lost": "lost",
    "opportunity_reopened": "reopened",
    "contract_started": "started",
    "contract_expanded": "expanded",
    "contract_contracted": "contracted",
    "contract_churned": "churned",
    "campaign_created": "created",
    "campaign_spend_recorded": "spend",
    "fact_retracted": "retraction",
    "fact_amended": "amendment",
}


class WindowEnd(Exception):
    """The story reached the end of the window: what would come next has not happened yet."""


def money(cents: int) -> str:
    """Format an amount in cents as a decimal string with two places."""
    return f"{cents // 100}.{cents % 100:02d}"


def cents(amount: str) -> int:
    """Parse a decimal string written by :func:`money` back to cents."""
    whole, fraction = amount.split(".")
    return int(whole) * 100 + int(fraction)


class Block:
    """The facts of one story with their business seconds, in the order they were written."""

    __slots__ = ("clock", "items", "written")

    def __init__(self, clock: Clock) -> None:
        """Start an empty block."""
        self.clock = clock
        self.items: list[tuple[int, Record]] = []
        self.written = 0

    def record(
        self, t: int, kind: str, source: str, key: str, actor: str, **fields: object
    ) -> Record:
        """Build the canonical record of a fact at second ``t`` (without keeping it)."""
        if t >= self.clock.end:
            raise WindowEnd
        self.written += 1
        return {
            "type": kind,
            "occurred_at": self.clock.iso(t),
            "source": source,
            "source_id": f"{key}:{ID_KIND[kind]}:{self.written}",
            "actor": actor,
            **fields,
        }

    def add(self, t: int, kind: str, source: str, key: str, actor: str, **fields: object) -> None:
        """Write a fact at second ``t``; raise :class:`WindowEnd` if ``t`` is past the window."""
        self.items.append((t, self.record(t, kind, source, key, actor, **fields)))
