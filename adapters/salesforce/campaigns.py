"""Campaign and CampaignMember rows as ledger facts.

Campaign is read before CampaignMember: each campaign's channel (its ``Type`` through the
channel map) is kept in memory, one entry per campaign, for the touches on its members. A member
that is a contact is placed on the lead it was converted from (the Lead file's
``ConvertedContactId``); a contact that never was a lead is its own person, ``sf:003...``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from adapters.files import Record
from adapters.salesforce.config import SOURCE, actor, flag, sf_id, slug, when
from adapters.salesforce.leads import ExportState
from ledger.errors import InvalidFact


def campaign(row: dict[str, str], state: ExportState) -> list[Record | InvalidFact]:
    """One Campaign row: the campaign, and its actual cost as spend over its dates."""
    campaign_id = row["Id"].strip()
    if not campaign_id:
        raise InvalidFact("blank campaign id", "Id")
    settings = state.settings
    kind = row.get("Type", "").strip()
    channel = settings.campaign_channels.get(kind) or slug(kind) or "other"
    state.campaign_channel[campaign_id] = channel
    created = when(row, "CreatedDate", settings)
    base = {"source": SOURCE, "actor": actor(row), "campaign_id": sf_id(campaign_id)}
    records: list[Record | InvalidFact] = [
        {
            **base,
            "type": "campaign_created",
            "occurred_at": created,
            "source_id": f"{campaign_id}:created",
            "name": row["Name"],
            "channel": channel,
            "campaign_type": kind or None,
        }
    ]
    cost = row.get("ActualCost", "").strip()
    if cost and _positive(cost):
        start = row.get("StartDate", "").strip()[:10] or created[:10]
        end = row.get("EndDate", "").strip()[:10] or start
        records.append(
            {
                **base,
                "type": "campaign_spend_recorded",
                "occurred_at": created,
                "source_id": f"{campaign_id}:spend",
                "amount": cost,
                "currency": row.get("CurrencyIsoCode", "").strip() or settings.currency,
                "period_start": start,
                "period_end": end,
            }
        )
    return records


def _positive(text: str) -> bool:
    try:
        return Decimal(text) != 0
    except InvalidOperation:
        return True  # the codec refuses it with the reason


def campaign_member(row: dict[str, str], state: ExportState) -> list[Record | InvalidFact]:
    """One CampaignMember row: a touch when added, and one when the member first responded."""
    member_id = row["Id"].strip()
    lead, contact = row.get("LeadId", "").strip(), row.get("ContactId", "").strip()
    person = lead or state.contact_lead.get(contact) or contact
    if not person:
        raise InvalidFact("neither LeadId nor ContactId is set", "LeadId")
    campaign_id = row["CampaignId"].strip()
    created = when(row, "CreatedDate", state.settings)
    base = {
        "type": "touch_recorded",
        "source": SOURCE,
        "actor": actor(row),
        "lead_id": sf_id(person),
        "channel": state.campaign_channel.get(campaign_id, "other"),
        "campaign_id": sf_id(campaign_id) if campaign_id else None,
    }
    records: list[Record | InvalidFact] = [
        {
            **base,
            "occurred_at": created,
            "source_id": f"{member_id}:member",
            "touch_type": slug(row.get("Status", "")) or "member",
        }
    ]
    responded = row.get("FirstRespondedDate", "").strip()
    if flag(row, "HasResponded") and responded:
        at = max(when(row, "FirstRespondedDate", state.settings), created)
        records.append(
            {
                **base,
                "occurred_at": at,
                "source_id": f"{member_id}:responded",
                "touch_type": "responded",
            }
        )
    return records
