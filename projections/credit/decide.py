"""What decides who sourced a deal: its deciding lead, and the channel the sourced rule looks at.

The rule (docs/credit.md, "Sourced") looks at the earliest-captured lead linked to the
opportunity that was captured at or before it opened: the channel of that lead's first touch if
that touch is at or before the opening, else the lead's ``lead_source``. The channel depends on
the current deal and contact rows only, not on a report's options, so the projection keeps each
deal's channel (``rl_deal_source``) and the per-day roll-up sums by it
(:mod:`projections.rollup`); the report applies the rule's sales channels to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa

from projections.credit.data import Contact, CreditData, Deal
from projections.credit.kept import deal_data
from projections.schema import Tables

NO_CHANNEL = ""  # the key of a deal with no deciding lead, or whose lead has no channel


def deciding(data: CreditData, deal: Deal) -> tuple[Contact, bool] | None:
    """The earliest-captured linked lead captured by the opening; whether it was touched by then.

    A lead's first touch (kept with the lead, :mod:`projections.credit.derive`) is its first
    touch at or before the opening exactly when it is at or before the opening.
    """
    captured = min(
        (
            (contact.captured_us, lead)
            for lead in data.linked(deal)
            if (contact := data.contacts.get(lead)) is not None
            and contact.captured_us is not None
            and contact.captured_us <= deal.opened_us
        ),
        default=None,
    )
    if captured is None:
        return None
    contact = data.contacts[captured[1]]
    first = contact.first_touch_us
    return contact, first is not None and first <= deal.opened_us


def rule_channel(contact: Contact, *, touched: bool) -> str | None:
    """The channel the rule looks at: the first touch's, else the lead's ``lead_source``."""
    return contact.first_channel if touched else contact.lead_source


def channel_key(data: CreditData, deal: Deal) -> str:
    """The deal's deciding channel as kept: ``=`` and the channel, or :data:`NO_CHANNEL`."""
    found = deciding(data, deal)
    if found is None:
        return NO_CHANNEL
    value = rule_channel(found[0], touched=found[1])
    return NO_CHANNEL if value is None else f"={value}"


def key_channel(key: str) -> str | None:
    """The channel a kept key stands for (None: no deciding lead, or no channel)."""
    return key[1:] if key else None


def as_deal(row: Mapping[Any, Any]) -> Deal:
    """A current ``rl_deal`` row as a :class:`Deal` (no outcome: the channel does not need it)."""
    return Deal(
        row["opportunity_id"],
        row["account_id"],
        row["opp_type"],
        row["opened_us"],
        Decimal(row["amount"]),
        row["currency"],
        tuple(orjson.loads(row["lead_ids"])),
        tuple(orjson.loads(row["contact_ids"])),
    )


def channels_of(data: CreditData) -> dict[str, str]:
    """The deciding channel key of each of ``data``'s deals."""
    return {opp: channel_key(data, deal) for opp, deal in data.deals.items()}


def deal_channels(
    conn: sa.Connection, t: Tables, rows: Iterable[Mapping[Any, Any]]
) -> dict[str, str]:
    """The deciding channel key of each current ``rl_deal`` row, from the current contacts."""
    return channels_of(deal_data(conn, t, [as_deal(row) for row in rows], touches=False))
