"""Opportunity, OpportunityHistory and OpportunityFieldHistory rows as ledger facts.

Stage and amount changes come from OpportunityHistory, Salesforce's own snapshot of an
opportunity after each change (kept for the opportunity's life, unlike field history). A
snapshot holds the stage and amount, not what changed, so the rows are sorted per opportunity
by ``CreatedDate`` (in a temporary SQLite file: constant memory) and compared with the one
before. When the export has no OpportunityHistory, OpportunityFieldHistory's ``StageName`` and
``Amount`` rows are used instead (they name the old and new value); reading both would record
each change twice. The Opportunity row, read last, records the opening (with the first stage
and amount the history shows), the close (won or lost, at the time history shows it closing,
else at ``CloseDate``), and the same steps on the leads it was converted from.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson

from adapters.files import CsvInput, Record, parse_time
from adapters.salesforce.config import LOST, SOURCE, WON, actor, flag, sf_id, when
from adapters.salesforce.leads import ExportState
from ledger.errors import InvalidFact

SORT_BATCH = 5000


def sorted_history(table: CsvInput) -> Iterator[tuple[int, int, dict[str, str]]]:
    """OpportunityHistory rows ordered by (opportunity, time, Id), numbered in that order."""
    with tempfile.TemporaryDirectory(prefix="revledger-sort-") as tmp:
        db = sqlite3.connect(Path(tmp) / "sort.db")
        try:
            db.execute("CREATE TABLE h (opp TEXT, at TEXT, id TEXT, line INTEGER, row BLOB)")
            batch: list[tuple[str, str, str, int, bytes]] = []
            for _, line, row in table.rows():
                try:
                    at = parse_time(row.get("CreatedDate", ""), "CreatedDate")
                except InvalidFact:
                    at = ""  # the row is refused with its reason when it is converted
                batch.append(
                    (row.get("OpportunityId", ""), at, row.get("Id", ""), line, orjson.dumps(row))
                )
                if len(batch) >= SORT_BATCH:
                    db.executemany("INSERT INTO h VALUES (?, ?, ?, ?, ?)", batch)
                    batch = []
            db.executemany("INSERT INTO h VALUES (?, ?, ?, ?, ?)", batch)
            query = "SELECT line, row FROM h ORDER BY opp, at, id, line"
            for number, (line, row) in enumerate(db.execute(query), start=1):
                yield number, line, orjson.loads(row)
        finally:
            db.close()


class HistoryWalk:
    """Compares each OpportunityHistory snapshot with the one before it (rows come sorted)."""

    def __init__(self, state: ExportState) -> None:
        """Start before the first opportunity."""
        self.state = state
        self.opportunity = ""
        self.stage = self.amount = ""

    def __call__(self, row: dict[str, str]) -> list[Record | InvalidFact]:
        """The stage and amount changes since the previous snapshot of the same opportunity."""
        opp, stage, amount = (
            row.get(c, "").strip() for c in ("OpportunityId", "StageName", "Amount")
        )
        if not opp:
            raise InvalidFact("blank opportunity id", "OpportunityId")
        at = when(row, "CreatedDate", self.state.settings)
        first = opp != self.opportunity
        previous_stage, previous_amount = ("", "") if first else (self.stage, self.amount)
        self.opportunity, self.stage, self.amount = opp, stage, amount or previous_amount
        if first:
            self.state.first(opp, "StageName", at, stage)
            self.state.first(opp, "Amount", at, amount)
            return []
        base = {
            "occurred_at": at,
            "source": SOURCE,
            "actor": actor(row),
            "opportunity_id": sf_id(opp),
        }
        records: list[Record | InvalidFact] = []
        if stage and stage != previous_stage:
            records.extend(self._stage(base, row["Id"], previous_stage, stage, opp))
        if amount and amount != previous_amount:
            records.append(
                {
                    **base,
                    "type": "opportunity_amount_changed",
                    "amount": amount,
                    "currency": row.get("CurrencyIsoCode") or self.state.settings.currency,
                    "source_id": f"{row['Id']}:amount",
                }
            )
        return records

    def _stage(
        self, base: Record, row_id: str, old: str, new: str, opp: str
    ) -> list[Record | InvalidFact]:
        stages = self.state.settings.opportunity_stages
        try:
            to_stage = stages(new, "StageName")
        except InvalidFact as error:
            return [error]
        if to_stage is None:
            return []
        if to_stage in (WON, LOST):
            self.state.closed_at[opp] = base["occurred_at"]
        return [
            {
                **base,
                "type": "opportunity_stage_changed",
                "to_stage": to_stage,
                "from_stage": stages.names.get(old),
                "source_id": f"{row_id}:stage",
            }
        ]


def field_history(row: dict[str, str], state: ExportState) -> list[Record | InvalidFact]:
    """One OpportunityFieldHistory row (used when the export has no OpportunityHistory)."""
    opp, name = row["OpportunityId"].strip(), row["Field"].strip()
    if name not in ("StageName", "Amount"):
        return []
    if not opp:
        raise InvalidFact("blank opportunity id", "OpportunityId")
    at = when(row, "CreatedDate", state.settings)
    old, new = row["OldValue"].strip(), row["NewValue"].strip()
    state.first(opp, name, at, old)
    base = {
        "occurred_at": at,
        "source": SOURCE,
        "source_id": row["Id"],
        "actor": actor(row),
        "opportunity_id": sf_id(opp),
    }
    if name == "Amount":
        if not new:
            return []
        currency = row.get("CurrencyIsoCode") or state.settings.currency
        return [{**base, "type": "opportunity_amount_changed", "amount": new, "currency": currency}]
    stages = state.settings.opportunity_stages
    to_stage = stages(new, "NewValue")
    if to_stage is None:
        return []
    if to_stage in (WON, LOST):
        state.closed_at[opp] = at
    return [
        {
            **base,
            "type": "opportunity_stage_changed",
            "to_stage": to_stage,
            "from_stage": stages.names.get(old),
        }
    ]


def opportunity(row: dict[str, str], state: ExportState) -> list[Record | InvalidFact]:
    """One Opportunity row: opened, closed won or lost, and the same on its converted leads."""
    opp = row["Id"].strip()
    if not opp:
        raise InvalidFact("blank opportunity id", "Id")
    settings = state.settings
    created = when(row, "CreatedDate", settings)
    stage_name = state.initial.get((opp, "StageName"), ("", row["StageName"]))[1]
    stage = settings.opportunity_stages(stage_name, "StageName")
    if stage is None:
        return []
    kind = row.get("Type", "").strip()
    opportunity_type = settings.opportunity_types.get(kind) if kind else "new"
    if opportunity_type is None:
        msg = (
            f"opportunity type {kind!r} is not mapped; add it to the opportunity_types "
            "table of a --config file (new, expansion or renewal)"
        )
        raise InvalidFact(msg, "Type")
    account = row.get("AccountId", "").strip()
    amount = row.get("Amount", "").strip()
    currency = row.get("CurrencyIsoCode", "").strip() or settings.currency
    close_date = row.get("CloseDate", "").strip()
    leads = state.opportunity_leads.get(opp, [])
    base = {"source": SOURCE, "actor": actor(row), "opportunity_id": sf_id(opp)}
    owner = row.get("OwnerId", "").strip()
    records: list[Record | InvalidFact] = [
        {
            **base,
            "type": "opportunity_opened",
            "occurred_at": created,
            "source_id": f"{opp}:opened",
            "account_id": sf_id(account or opp),
            "amount": state.initial.get((opp, "Amount"), ("", amount))[1] or "0",
            "currency": currency,
            "opportunity_type": opportunity_type,
            "stage": stage,
            "lead_ids": [sf_id(lead) for lead in leads],
            "owner": sf_id(owner) if owner else None,
            "expected_close": close_date[:10] or None,
        }
    ]
    records += _lead_steps(base, created, leads, opp, "sqo")
    outcome = _outcome(row, state)
    if outcome is None:
        return records
    closed = state.closed_at.get(opp) or (
        when(row, "CloseDate", settings) if close_date else created
    )
    closed = max(closed, created)
    if outcome == WON:
        records.append(
            {
                **base,
                "type": "opportunity_won",
                "occurred_at": closed,
                "source_id": f"{opp}:won",
                "amount": amount or "0",
                "currency": currency,
            }
        )
    else:
        column = settings.loss_reason_column
        reason = (row.get(column, "").strip() if column else "") or row["StageName"]
        records.append(
            {
                **base,
                "type": "opportunity_lost",
                "occurred_at": closed,
                "source_id": f"{opp}:lost",
                "reason": reason,
            }
        )
    records += _lead_steps(base, closed, leads, opp, "won" if outcome == WON else "lost")
    return records


def _outcome(row: dict[str, str], state: ExportState) -> str | None:
    """closed_won, closed_lost or None (open), from IsClosed/IsWon or else the stage."""
    if "IsClosed" in row:
        if not flag(row, "IsClosed"):
            return None
        return WON if flag(row, "IsWon") else LOST
    stage = state.settings.opportunity_stages.names.get(row["StageName"].strip())
    return stage if stage in (WON, LOST) else None


def _lead_steps(
    base: Record, at: str, leads: list[str], opp: str, stage: str
) -> list[Record | InvalidFact]:
    return [
        {
            "type": "stage_changed",
            "occurred_at": at,
            "source": SOURCE,
            "source_id": f"{opp}:lead:{lead}:{stage}",
            "actor": base["actor"],
            "lead_id": sf_id(lead),
            "to_stage": stage,
        }
        for lead in leads
    ]
