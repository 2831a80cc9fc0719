"""Salesforce settings: default maps (overridable by a TOML file), ids, times and flags.

The defaults cover the standard picklists; a TOML file passed with ``--config`` adds to or
overrides any entry (see docs/adapters.md):

    currency = "EUR"            # when the export has no CurrencyIsoCode column (default USD)
    timezone = "Europe/Berlin"  # for date-only cells such as CloseDate (default UTC)
    on_unmapped = "skip"        # stage values nobody mapped: "reject" (default) or "skip"
    loss_reason_column = "Loss_Reason__c"
    [lead_stages]
    "Nurturing" = "recycled"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.files import (
    SourceFileError,
    StageMap,
    digest,
    parse_time,
    read_config,
    zone,
)

SOURCE = "salesforce"
PREFIX = "sf:"
ID = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")

LEAD_STAGES = {
    # the standard Lead Status picklist
    "Open - Not Contacted": "inquiry",
    "Working - Contacted": "sal",
    "Closed - Converted": "sql",
    "Closed - Not Converted": "disqualified",
    # common customisations of the picklist
    "New": "inquiry",
    "Open": "inquiry",
    "Inquiry": "inquiry",
    "Raw": "inquiry",
    "MQL": "mql",
    "Marketing Qualified": "mql",
    "Marketing Qualified Lead": "mql",
    "SAL": "sal",
    "Sales Accepted": "sal",
    "Sales Accepted Lead": "sal",
    "Accepted": "sal",
    "Working": "sal",
    "Contacted": "sal",
    "SQL": "sql",
    "Sales Qualified": "sql",
    "Sales Qualified Lead": "sql",
    "Qualified": "sql",
    "Converted": "sql",
    "Nurture": "recycled",
    "Recycled": "recycled",
    "Disqualified": "disqualified",
    "Unqualified": "disqualified",
}
OPPORTUNITY_STAGES = {
    "Prospecting": "prospecting",
    "Qualification": "qualification",
    "Needs Analysis": "needs_analysis",
    "Value Proposition": "value_proposition",
    "Id. Decision Makers": "id_decision_makers",
    "Perception Analysis": "perception_analysis",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiation",
    "Closed Won": "closed_won",
    "Closed Lost": "closed_lost",
}
OPPORTUNITY_TYPES = {
    "New Customer": "new",
    "New Business": "new",
    "Existing Customer - Upgrade": "expansion",
    "Existing Business": "expansion",
    "Upsell": "expansion",
    "Cross-Sell": "expansion",
    "Existing Customer - Replacement": "renewal",
    "Existing Customer - Downgrade": "renewal",
    "Renewal": "renewal",
}
CAMPAIGN_CHANNELS = {
    "Advertisement": "advertising",
    "Banner Ads": "advertising",
    "Conference": "event",
    "Seminar / Conference": "event",
    "Trade Show": "event",
    "Direct Mail": "direct_mail",
    "Email": "email",
    "Partners": "partner",
    "Public Relations": "pr",
    "Referral Program": "referral",
    "Telemarketing": "outbound",
    "Webinar": "webinar",
    "Other": "other",
}
WON, LOST = "closed_won", "closed_lost"
TABLES = ("lead_stages", "opportunity_stages", "opportunity_types", "campaign_channels")
SETTINGS = ("currency", "timezone", "on_unmapped", "loss_reason_column")


@dataclass
class Settings:
    """The maps and settings a Salesforce load uses."""

    lead_stages: StageMap
    opportunity_stages: StageMap
    opportunity_types: dict[str, str] = field(default_factory=lambda: dict(OPPORTUNITY_TYPES))
    campaign_channels: dict[str, str] = field(default_factory=lambda: dict(CAMPAIGN_CHANNELS))
    currency: str = "USD"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    loss_reason_column: str | None = None
    fingerprint: str = ""  # digest of the settings: part of every checkpoint key


def load_settings(path: str | Path | None = None) -> Settings:
    """The default settings, overridden by the TOML file at ``path`` if given."""
    config = read_config(path, TABLES, SETTINGS)
    raw, tables, policy, currency, where = (
        config.raw,
        config.tables,
        config.policy,
        config.currency,
        config.where,
    )
    bad = sorted(set(tables["opportunity_types"].values()) - {"new", "expansion", "renewal"})
    if bad:
        raise SourceFileError(
            f"{where}: opportunity_types: {bad[0]!r} is not new, expansion or renewal"
        )
    hint = f"the {{}} table of {path}" if path else "the {} table of a --config file"
    return Settings(
        lead_stages=StageMap(
            {**LEAD_STAGES, **tables["lead_stages"]}, hint.format("lead_stages"), policy
        ),
        opportunity_stages=StageMap(
            {**OPPORTUNITY_STAGES, **tables["opportunity_stages"]},
            hint.format("opportunity_stages"),
            policy,
        ),
        opportunity_types={**OPPORTUNITY_TYPES, **tables["opportunity_types"]},
        campaign_channels={**CAMPAIGN_CHANNELS, **tables["campaign_channels"]},
        currency=currency,
        tz=zone(raw.get("timezone", "UTC"), f"{where}: timezone"),
        loss_reason_column=raw.get("loss_reason_column"),
        fingerprint=digest(raw),
    )


def sf_id(value: str) -> str:
    """A Salesforce record id in the ledger: ``sf:`` + the id as exported (18 characters)."""
    return f"{PREFIX}{value.strip()}"


def actor(row: dict[str, str], column: str = "CreatedById") -> str:
    """Who made the change: the user id, or ``salesforce`` when the cell is blank."""
    value = row.get(column, "").strip()
    return sf_id(value) if value else SOURCE


def when(row: dict[str, str], column: str, settings: Settings) -> str:
    """A Salesforce datetime (``2024-03-05T14:22:01.000+0000``) or date cell, in UTC."""
    return parse_time(row.get(column, ""), column, tz=settings.tz)


def flag(row: dict[str, str], column: str) -> bool:
    """A checkbox cell (``true``/``false``, ``1``/``0``)."""
    return row.get(column, "").strip().lower() in ("true", "1")


def slug(value: str) -> str:
    """A picklist label as a lowercase name: ``Trade Show`` -> ``trade_show``."""
    return re.sub(r"[^a-z0-9]+", "_", value.strip().lower()).strip("_")
