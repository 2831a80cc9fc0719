"""The projection tables behind the credit reports (SQLAlchemy Core), added to the funnel's set.

Each is derived per subject by :mod:`projections.credit.derive` and carries the same
``known_from``/``known_to`` ledger-time span as the funnel tables (docs/metrics.md, "Two
timelines"). Amounts are exact decimal strings; ``*_us`` are business times in microseconds.

- ``rl_touch``: every touch of a lead, with the lead's account (lead subject);
- ``rl_contact``: a lead's account, capture time, lead source and first touch (lead subject);
- ``rl_deal``: an opportunity's creation: account, type, amount, linked leads (opportunity subject);
- ``rl_close``: its won, lost and reopened facts in business order (opportunity subject);
- ``rl_link``: the leads it names in ``lead_ids`` and ``contact_ids`` (opportunity subject), so
  that the deals naming a lead are found by the lead;
- ``rl_campaign`` and ``rl_spend``: a campaign and its program spend (campaign subject);
- ``rl_arr``: contract starts, expansions, contractions and churn (account subject).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, Index, Integer, String

CREDIT_TABLES = ("touch", "contact", "deal", "close", "link", "campaign", "spend", "arr")
SUBJECT_COLUMN = {
    "touch": "lead_id",
    "contact": "lead_id",
    "deal": "opportunity_id",
    "close": "opportunity_id",
    "link": "opportunity_id",
    "campaign": "campaign_id",
    "spend": "campaign_id",
    "arr": "account_id",
}
COLUMNS = {
    "touch": ("source", "source_id", "at_us", "channel", "campaign_id", "touch_type", "account_id"),
    "contact": (
        "account_id",
        "captured_us",
        "lead_source",
        "first_touch_us",
        "first_channel",
        "first_touch_type",
    ),
    "deal": (
        "account_id",
        "opp_type",
        "opened_us",
        "amount",
        "currency",
        "lead_ids",
        "contact_ids",
    ),
    "close": ("seq", "at_us", "kind", "amount", "currency", "source", "source_id"),
    "link": ("lead_id",),
    "campaign": ("name", "channel", "campaign_type"),
    "spend": ("source", "source_id", "at_us", "amount", "currency", "first_day", "last_day"),
    "arr": (
        "source",
        "source_id",
        "at_us",
        "kind",
        "amount",
        "currency",
        "contract_id",
        "opportunity_id",
    ),
}
# What a report reads of each touch and lead of an account: the covering indexes hold it, so
# reading an account's leads and touches never visits the tables (docs/credit.md, "Reading").
# The account comes first: an account's rows are adjacent whether a report reads the current
# rows (known_to = FOREVER) or those known at some ledger time (a range of known_to).
TOUCH_READ = ("lead_id", "source", "source_id", "channel", "campaign_id", "touch_type")
CONTACT_READ = (
    "lead_id",
    "captured_us",
    "lead_source",
    "first_touch_us",
    "first_channel",
    "first_touch_type",
)
Known = Callable[[], list[Column[int]]]
Namer = Callable[[str], str]
Indexer = Callable[..., Index]


def define_credit_tables(
    metadata: sa.MetaData, name: Namer, ix: Indexer, known: Known
) -> dict[str, sa.Table]:
    """The credit tables, named and indexed like the funnel's (``name``, ``ix``, ``known``)."""
    text, big = String, BigInteger

    def key(column: str, length: int | None = None) -> Column[str]:
        return Column(column, String(length) if length else text, primary_key=True)

    def covering(table: str, purpose: str, *columns: str) -> Index:
        """An index named like ``ix``'s (with the build's generation) but after its purpose."""
        return Index(ix(table, purpose).name, *columns)

    return {
        "touch": sa.Table(
            name("touch"),
            metadata,
            key("lead_id"),
            key("source"),
            key("source_id"),
            Column("at_us", big, nullable=False),
            Column("channel", text, nullable=False),
            Column("campaign_id", text),
            Column("touch_type", text, nullable=False),
            Column("account_id", text),  # the lead's, as known with the touch (contact's)
            *known(),
            ix("touch", "known_to", "lead_id"),
            covering("touch", "journeys", "account_id", "known_to", "at_us", *TOUCH_READ),
        ),
        "contact": sa.Table(
            name("contact"),
            metadata,
            key("lead_id"),
            Column("account_id", text),
            Column("captured_us", big),
            Column("lead_source", text),
            Column("first_touch_us", big),  # the lead's first touch in order, if any
            Column("first_channel", text),
            Column("first_touch_type", text),
            *known(),
            covering("contact", "accounts", "account_id", "known_to", *CONTACT_READ),
        ),
        "deal": sa.Table(
            name("deal"),
            metadata,
            key("opportunity_id"),
            Column("account_id", text, nullable=False),
            Column("opp_type", String(16), nullable=False),
            Column("opened_us", big, nullable=False),
            Column("amount", text, nullable=False),
            Column("currency", String(3), nullable=False),
            Column("lead_ids", text, nullable=False),
            Column("contact_ids", text, nullable=False),
            *known(),
            ix("deal", "known_to", "opened_us"),
            ix("deal", "known_to", "account_id"),
        ),
        "close": sa.Table(
            name("close"),
            metadata,
            key("opportunity_id"),
            Column("seq", Integer, primary_key=True),
            Column("at_us", big, nullable=False),
            Column("kind", String(8), nullable=False),
            Column("amount", text),
            Column("currency", String(3)),
            Column("source", text, nullable=False),
            Column("source_id", text, nullable=False),
            *known(),
            ix("close", "known_to", "opportunity_id"),
            ix("close", "known_to", "at_us"),
        ),
        "link": sa.Table(
            name("link"),
            metadata,
            key("opportunity_id"),
            key("lead_id"),
            *known(),
            ix("link", "known_to", "lead_id"),
        ),
        "campaign": sa.Table(
            name("campaign"),
            metadata,
            key("campaign_id"),
            Column("name", text, nullable=False),
            Column("channel", text, nullable=False),
            Column("campaign_type", text),
            *known(),
        ),
        "spend": sa.Table(
            name("spend"),
            metadata,
            key("campaign_id"),
            key("source"),
            key("source_id"),
            Column("at_us", big, nullable=False),
            Column("amount", text, nullable=False),
            Column("currency", String(3), nullable=False),
            Column("first_day", String(10), nullable=False),
            Column("last_day", String(10), nullable=False),
            *known(),
        ),
        "arr": sa.Table(
            name("arr"),
            metadata,
            key("account_id"),
            key("source"),
            key("source_id"),
            Column("at_us", big, nullable=False),
            Column("kind", String(12), nullable=False),
            Column("amount", text, nullable=False),
            Column("currency", String(3), nullable=False),
            Column("contract_id", text, nullable=False),
            Column("opportunity_id", text),
            *known(),
            ix("arr", "known_to", "at_us"),
        ),
    }
