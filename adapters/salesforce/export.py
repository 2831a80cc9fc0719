"""One Salesforce export (Data Loader / Bulk API CSV files): which file is which, in what order.

Files are recognised by their header, not their name, so ``extract.csv`` from Data Loader works.
They are loaded in the order that lets each file use what the earlier ones told
(:data:`ORDER`), each with its own checkpoint key. A file's facts may depend on the files before
it (a Lead's initial status on LeadHistory, an Opportunity's ``lead_ids`` on Lead), so its key
covers the fingerprints of those files too: when an earlier file changes, the later ones are read
again (and what they had already recorded counts as duplicates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from adapters.canonical import fingerprint
from adapters.files import Convert, CsvInput, Input, SourceFileError, digest, row_items
from adapters.salesforce.campaigns import campaign, campaign_member
from adapters.salesforce.config import Settings
from adapters.salesforce.leads import ExportState, lead, lead_history
from adapters.salesforce.opportunities import (
    HistoryWalk,
    field_history,
    opportunity,
    sorted_history,
)

ORDER = (
    "LeadHistory",
    "Lead",
    "OpportunityHistory",
    "OpportunityFieldHistory",
    "Opportunity",
    "Campaign",
    "CampaignMember",
)
REQUIRED = {
    "LeadHistory": ("Id", "LeadId", "Field", "OldValue", "NewValue", "CreatedDate"),
    "Lead": ("Id", "Status", "CreatedDate"),
    "OpportunityHistory": ("Id", "OpportunityId", "StageName", "CreatedDate"),
    "OpportunityFieldHistory": (
        "Id",
        "OpportunityId",
        "Field",
        "OldValue",
        "NewValue",
        "CreatedDate",
    ),
    "Opportunity": ("Id", "StageName", "CreatedDate"),
    "Campaign": ("Id", "Name", "CreatedDate"),
    "CampaignMember": ("Id", "CampaignId", "CreatedDate"),
}
NEEDS_LEADS = ("Opportunity", "CampaignMember")
CAMPAIGN_COLUMNS = frozenset(
    {"ActualCost", "BudgetedCost", "StartDate", "EndDate", "NumberOfLeads", "ExpectedRevenue"}
)
LEAD_COLUMNS = frozenset({"IsConverted", "LastName", "Company", "Email", "ConvertedDate"})


def recognise(header: list[str]) -> str | None:  # noqa: PLR0911 - one return per object
    """The Salesforce object a CSV header belongs to, or None."""
    columns = set(header)
    if {"Field", "OldValue", "NewValue"} <= columns:
        if "LeadId" in columns:
            return "LeadHistory"
        return "OpportunityFieldHistory" if "OpportunityId" in columns else None
    if "CampaignId" in columns and columns & {"LeadId", "ContactId"}:
        return "CampaignMember"
    if "StageName" in columns:
        return "OpportunityHistory" if "OpportunityId" in columns else "Opportunity"
    if "Name" in columns and columns & CAMPAIGN_COLUMNS:
        return "Campaign"
    if "Status" in columns and columns & LEAD_COLUMNS:
        return "Lead"
    return None


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv"))
        elif path.is_file():
            found.append(path)
        else:
            raise SourceFileError(f"cannot read {name}: no such file or directory")
    if not found:
        raise SourceFileError(f"no .csv files in {', '.join(paths)}")
    return found


@dataclass
class ExportPlan:
    """The files of an export by object, and what the load will and will not read."""

    tables: dict[str, list[CsvInput]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def plan(paths: list[str]) -> ExportPlan:
    """Recognise and check every file (headers, required columns) before anything is read."""
    export = ExportPlan()
    for path in _files(paths):
        table = CsvInput(path)
        kind = recognise(table.header)
        if kind is None:
            msg = (
                f"{path}: not a Salesforce export of {', '.join(ORDER)} (header: "
                f"{', '.join(table.header[:12])})"
            )
            raise SourceFileError(msg)
        table.require(REQUIRED[kind], f"Salesforce {kind}")
        export.tables.setdefault(kind, []).append(table)
    for kind in NEEDS_LEADS:
        if kind in export.tables and "Lead" not in export.tables:
            msg = (
                f"{export.tables[kind][0].path}: {kind} needs the Lead export in the same "
                "load, to follow lead conversion; add Lead.csv (a header-only file if the "
                "org has no leads)"
            )
            raise SourceFileError(msg)
    if "OpportunityHistory" in export.tables and "OpportunityFieldHistory" in export.tables:
        skipped = ", ".join(str(t.path) for t in export.tables.pop("OpportunityFieldHistory"))
        export.notes.append(
            f"not read: {skipped} (OpportunityHistory already gives every stage and amount change)"
        )
    return export


def salesforce_inputs(
    paths: list[str], settings: Settings, *, rescan: bool = False
) -> tuple[list[Input], list[str]]:
    """The inputs of a Salesforce load, in load order, and notes for the user."""
    export = plan(paths)
    state = ExportState(settings)
    converters: dict[str, Callable[[], Convert]] = {
        "LeadHistory": lambda: partial(lead_history, state=state),
        "Lead": lambda: partial(lead, state=state),
        "OpportunityHistory": lambda: HistoryWalk(state),
        "OpportunityFieldHistory": lambda: partial(field_history, state=state),
        "Opportunity": lambda: partial(opportunity, state=state),
        "Campaign": lambda: partial(campaign, state=state),
        "CampaignMember": lambda: partial(campaign_member, state=state),
    }
    inputs: list[Input] = []
    seen: list[str] = [settings.fingerprint]
    for kind in ORDER:
        for table in export.tables.get(kind, []):
            seen.append(fingerprint(str(table.path)) or "")
            key = None if rescan else f"salesforce:{kind}:{digest(*seen)}"
            rows = sorted_history(table) if kind == "OpportunityHistory" else table.rows()
            items = row_items(str(table.path), rows, converters[kind]())
            inputs.append(Input(f"{table.path} ({kind})", key, items))
    return inputs, export.notes
