"""Lead and LeadHistory rows as ledger facts, and the id maps that follow lead conversion.

LeadHistory is read before Lead: its earliest ``Status`` and ``Owner`` rows give the values a
lead had when it was created (the ``OldValue`` of the first change), which the Lead row records
at ``CreatedDate``. The Lead row then fills the conversion maps: contact -> lead (so campaign
touches on the converted contact land on the lead) and opportunity -> leads (``lead_ids``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.files import Record
from adapters.salesforce.config import ID, SOURCE, Settings, actor, flag, sf_id, when
from ledger.errors import InvalidFact

OWNER_PREFIXES = ("005", "00G")  # users and queues
IGNORED_FIELDS = frozenset({"created", "leadConverted"})  # the Lead row covers these


@dataclass
class ExportState:
    """What one file of an export tells the files read after it (id maps only)."""

    settings: Settings
    initial: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    contact_lead: dict[str, str] = field(default_factory=dict)
    opportunity_leads: dict[str, list[str]] = field(default_factory=dict)
    closed_at: dict[str, str] = field(default_factory=dict)
    campaign_channel: dict[str, str] = field(default_factory=dict)

    def first(self, record_id: str, name: str, at: str, value: str) -> None:
        """Remember ``value`` as the field's initial value if ``at`` is the earliest seen."""
        known = self.initial.get((record_id, name))
        if value and (known is None or at < known[0]):
            self.initial[(record_id, name)] = (at, value)


def _owner_id(value: str) -> bool:
    return bool(ID.match(value.strip())) and value.startswith(OWNER_PREFIXES)


def lead_history(row: dict[str, str], state: ExportState) -> list[Record | InvalidFact]:
    """One LeadHistory row: a status change, an owner change, or an attribute change."""
    field_name, lead = row["Field"].strip(), row["LeadId"].strip()
    if not lead:
        raise InvalidFact("blank lead id", "LeadId")
    at = when(row, "CreatedDate", state.settings)
    old, new = row["OldValue"].strip(), row["NewValue"].strip()
    base = {
        "occurred_at": at,
        "source": SOURCE,
        "source_id": row["Id"],
        "actor": actor(row),
        "lead_id": sf_id(lead),
    }
    if field_name == "Status":
        state.first(lead, "Status", at, old)
        stages = state.settings.lead_stages
        to_stage = stages(new, "NewValue")
        if to_stage is None:
            return []
        return [
            {
                **base,
                "type": "stage_changed",
                "to_stage": to_stage,
                "from_stage": stages.names.get(old),
            }
        ]
    if field_name in ("Owner", "ownerAssignment"):
        if not _owner_id(new):
            return []  # Salesforce writes each owner change twice: names, then ids
        if _owner_id(old):
            state.first(lead, "Owner", at, old)
        return [{**base, "type": "owner_assigned", "owner": sf_id(new)}]
    if field_name in IGNORED_FIELDS:
        return []
    return [{**base, "type": "lead_updated", "attributes": {field_name.lower(): new or None}}]


def _name(row: dict[str, str]) -> str:
    return " ".join(
        p for p in (row.get("FirstName", "").strip(), row.get("LastName", "").strip()) if p
    )


def lead(row: dict[str, str], state: ExportState) -> list[Record | InvalidFact]:
    """One Lead row: captured, its initial stage and owner, and its conversion."""
    lead_id = row["Id"].strip()
    if not lead_id:
        raise InvalidFact("blank lead id", "Id")
    settings = state.settings
    created = when(row, "CreatedDate", settings)
    base = {
        "occurred_at": created,
        "source": SOURCE,
        "actor": actor(row),
        "lead_id": sf_id(lead_id),
    }
    converted = flag(row, "IsConverted")
    account = row.get("ConvertedAccountId", "").strip() if converted else ""
    attributes = {
        k.lower(): row[k].strip() for k in ("Title", "Industry", "Rating") if row.get(k, "").strip()
    }
    records: list[Record | InvalidFact] = [
        {
            **base,
            "type": "lead_captured",
            "source_id": f"{lead_id}:created",
            "email": row.get("Email"),
            "name": _name(row),
            "company": row.get("Company"),
            "country": row.get("Country"),
            "lead_source": row.get("LeadSource"),
            "account_id": sf_id(account) if account else None,
            "attributes": attributes,
        }
    ]
    status = state.initial.get((lead_id, "Status"), ("", row["Status"]))[1]
    try:
        stage = settings.lead_stages(status, "Status")
        if stage is not None:
            records.append(
                {
                    **base,
                    "type": "stage_changed",
                    "to_stage": stage,
                    "source_id": f"{lead_id}:status:initial",
                }
            )
    except InvalidFact as error:
        records.append(error)
    owner = state.initial.get((lead_id, "Owner"), ("", row.get("OwnerId", "")))[1].strip()
    if owner:
        records.append(
            {
                **base,
                "type": "owner_assigned",
                "owner": sf_id(owner),
                "source_id": f"{lead_id}:owner:initial",
            }
        )
    if converted:
        records.append(_conversion(row, lead_id, state, base))
    return records


def _conversion(row: dict[str, str], lead_id: str, state: ExportState, base: Record) -> Record:
    links = {
        name: row.get(column, "").strip()
        for name, column in (
            ("contact", "ConvertedContactId"),
            ("opportunity", "ConvertedOpportunityId"),
            ("account", "ConvertedAccountId"),
        )
    }
    if links["contact"]:
        state.contact_lead[links["contact"]] = lead_id
    if links["opportunity"]:
        state.opportunity_leads.setdefault(links["opportunity"], []).append(lead_id)
    converted_at = (
        when(row, "ConvertedDate", state.settings)
        if row.get("ConvertedDate", "").strip()
        else base["occurred_at"]
    )
    attributes = {f"converted_{name}_id": sf_id(value) for name, value in links.items() if value}
    return {
        **base,
        "type": "lead_updated",
        "source_id": f"{lead_id}:converted",
        "occurred_at": max(converted_at, base["occurred_at"]),
        "attributes": {"converted": True, **attributes},
    }
