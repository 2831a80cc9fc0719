"""Salesforce export rows (Data Loader / Bulk API CSV) as canonical records, without a ledger."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.files import CsvInput, SourceFileError
from adapters.salesforce import load_settings
from adapters.salesforce.campaigns import campaign, campaign_member
from adapters.salesforce.export import plan, recognise
from adapters.salesforce.leads import ExportState, lead, lead_history
from adapters.salesforce.opportunities import HistoryWalk, opportunity, sorted_history
from ledger.errors import InvalidFact

FIXTURES = Path(__file__).parent.parent / "fixtures" / "salesforce"


def rows(name: str) -> list[dict[str, str]]:
    return [row for _, _, row in CsvInput(FIXTURES / f"{name}.csv").rows()]


def facts(records: list) -> list[dict]:
    return [r for r in records if not isinstance(r, InvalidFact)]


@pytest.fixture
def state() -> ExportState:
    """Export state after LeadHistory, Lead, OpportunityHistory and Campaign were read."""
    state = ExportState(load_settings())
    for row in rows("LeadHistory"):
        try:
            lead_history(row, state)
        except InvalidFact:
            continue
    for row in rows("Lead"):
        lead(row, state)
    walk = HistoryWalk(state)
    for _, _, row in sorted_history(CsvInput(FIXTURES / "OpportunityHistory.csv")):
        walk(row)
    for row in rows("Campaign"):
        campaign(row, state)
    return state


def test_each_export_file_is_recognised_by_its_header() -> None:
    """Files are told apart by their columns, not their names."""
    found = {recognise(CsvInput(p).header): p.stem for p in FIXTURES.glob("*.csv")}
    assert found == {stem: stem for stem in found.values()}


def test_a_status_history_row_becomes_a_stage_change_keyed_by_the_row_id() -> None:
    """LeadHistory Status rows give stage_changed with both stages mapped and the row's Id."""
    state = ExportState(load_settings())
    row = next(r for r in rows("LeadHistory") if r["Id"] == "0175g00000Hst02AAB")
    assert lead_history(row, state) == [{
        "type": "stage_changed", "occurred_at": "2024-03-07T09:10:00.000000Z",
        "source": "salesforce", "source_id": "0175g00000Hst02AAB",
        "actor": "sf:0055g00000Int01AAB", "lead_id": "sf:00Q5g000004XyZaEAK",
        "to_stage": "mql", "from_stage": "inquiry"}]


def test_owner_changes_are_taken_from_the_id_rows_only() -> None:
    """Salesforce writes each owner change as a name row and an id row; only the id row counts."""
    state = ExportState(load_settings())
    owners = [r for r in rows("LeadHistory") if r["Field"] == "Owner"]
    assert lead_history(owners[0], state) == []
    assert lead_history(owners[1], state)[0]["owner"] == "sf:0055g00000Usr01AAB"


def test_an_unmapped_status_in_history_is_rejected_with_the_value_named() -> None:
    """A Status value outside the stage map fails the row on NewValue."""
    row = next(r for r in rows("LeadHistory") if r["Id"] == "0175g00000Hst10AAB")
    with pytest.raises(InvalidFact, match="'Nurturing Long Term' is not mapped"):
        lead_history(row, ExportState(load_settings()))


def test_a_lead_starts_in_the_status_before_its_earliest_history_row(state: ExportState) -> None:
    """The initial stage is the OldValue of the earliest Status row, even with rows out of order."""
    records = lead(rows("Lead")[0], state)
    initial = next(r for r in facts(records) if r["source_id"].endswith(":status:initial"))
    assert (initial["to_stage"], initial["occurred_at"]) == ("inquiry",
                                                             "2024-03-05T14:22:01.000000Z")


def test_an_unmapped_lead_status_rejects_only_the_stage(state: ExportState) -> None:
    """The lead is still captured when its status is not in the map."""
    records = lead(rows("Lead")[2], state)
    assert [r["type"] for r in facts(records)] == ["lead_captured", "owner_assigned"]
    assert "'Waiting on Legal' is not mapped" in str(records[1])


def test_a_converted_contact_touch_lands_on_its_lead(state: ExportState) -> None:
    """A CampaignMember row on the converted contact becomes a touch on the lead."""
    member = rows("CampaignMember")[1]
    records = campaign_member(member, state)
    assert {r["lead_id"] for r in records} == {"sf:00Q5g000004XyZaEAK"}
    assert [(r["touch_type"], r["channel"]) for r in records] == [("responded", "webinar")] * 2


def test_a_contact_that_never_was_a_lead_is_its_own_person(state: ExportState) -> None:
    """A CampaignMember on a contact with no converted lead keeps the contact id."""
    records = campaign_member(rows("CampaignMember")[3], state)
    assert records[0]["lead_id"] == "sf:0035g00000AbCd9AAB"


def test_opportunity_history_is_compared_in_time_order_per_opportunity() -> None:
    """Out-of-order and duplicated snapshots give each stage and amount change once."""
    state = ExportState(load_settings())
    walk = HistoryWalk(state)
    out = []
    for _, _, row in sorted_history(CsvInput(FIXTURES / "OpportunityHistory.csv")):
        out.extend(walk(row))
    changes = [(r["opportunity_id"][-6:], r["type"], r.get("from_stage"), r.get("to_stage"),
                r.get("amount")) for r in out]
    assert changes == [
        ("p01AAB", "opportunity_stage_changed", "prospecting", "proposal", None),
        ("p01AAB", "opportunity_stage_changed", "proposal", "negotiation", None),
        ("p01AAB", "opportunity_amount_changed", None, None, "24000.00"),
        ("p01AAB", "opportunity_stage_changed", "negotiation", "closed_won", None),
        ("p02AAB", "opportunity_stage_changed", "qualification", "negotiation", None),
        ("p03AAB", "opportunity_stage_changed", "prospecting", "closed_lost", None),
    ]


def test_an_opportunity_opens_in_its_first_stage_linked_to_its_lead(state: ExportState) -> None:
    """The opening takes the first snapshot's stage and amount and the converted lead's id."""
    opened = opportunity(rows("Opportunity")[0], state)[0]
    assert (opened["stage"], opened["amount"], opened["lead_ids"], opened["account_id"]) == (
        "prospecting", "20000.00", ["sf:00Q5g000004XyZaEAK"], "sf:0015g00000Acc01AAB")


def test_a_won_opportunity_closes_when_history_shows_it_and_wins_its_lead(
        state: ExportState) -> None:
    """Won at the Closed Won snapshot's time, at the final amount; the lead moves to won."""
    records = opportunity(rows("Opportunity")[0], state)
    won = next(r for r in records if r["type"] == "opportunity_won")
    lead_won = next(r for r in records if r.get("to_stage") == "won")
    assert (won["occurred_at"], won["amount"]) == ("2024-05-30T16:00:00.000000Z", "24000.00")
    assert lead_won["lead_id"] == "sf:00Q5g000004XyZaEAK"


def test_an_open_opportunity_with_a_blank_amount_opens_at_zero(state: ExportState) -> None:
    """A blank Amount opens at 0, and an open opportunity gets no close."""
    records = opportunity(rows("Opportunity")[1], state)
    assert [r["type"] for r in records] == ["opportunity_opened"]
    assert (records[0]["amount"], records[0]["opportunity_type"]) == ("0", "expansion")


def test_campaign_actual_cost_is_spend_over_the_campaign_dates() -> None:
    """ActualCost becomes campaign spend for StartDate..EndDate; a blank cost gives none."""
    state = ExportState(load_settings())
    webinar, show = (campaign(row, state) for row in rows("Campaign"))
    spend = webinar[1]
    assert (spend["amount"], spend["period_start"], spend["period_end"]) == (
        "4500.00", "2024-03-01", "2024-03-31")
    assert [r["type"] for r in show] == ["campaign_created"]


def test_field_history_is_not_read_when_opportunity_history_is_present() -> None:
    """Both files would record each change twice, so OpportunityFieldHistory is left out."""
    export = plan([str(FIXTURES)])
    assert "OpportunityFieldHistory" not in export.tables
    assert "OpportunityFieldHistory.csv" in export.notes[0]


def test_opportunities_without_the_lead_export_are_refused(tmp_path: Path) -> None:
    """Without Lead.csv conversions cannot be followed, so the load is refused up front."""
    shutil.copy(FIXTURES / "Opportunity.csv", tmp_path)
    with pytest.raises(SourceFileError, match="needs the Lead export"):
        plan([str(tmp_path)])


def test_a_config_file_extends_the_lead_stage_map(tmp_path: Path) -> None:
    """A [lead_stages] entry maps a custom status."""
    config = tmp_path / "sf.toml"
    config.write_text('[lead_stages]\n"Nurturing Long Term" = "recycled"\n')
    row = next(r for r in rows("LeadHistory") if r["Id"] == "0175g00000Hst10AAB")
    assert lead_history(row, ExportState(load_settings(config)))[0]["to_stage"] == "recycled"


def test_an_unknown_config_key_is_refused(tmp_path: Path) -> None:
    """A misspelt setting names the file and the key."""
    config = tmp_path / "sf.toml"
    config.write_text('currency_code = "EUR"\n')
    with pytest.raises(SourceFileError, match=r"sf\.toml: currency_code: unknown key"):
        load_settings(config)


def test_date_only_cells_are_midnight_in_the_configured_timezone(tmp_path: Path) -> None:
    """FirstRespondedDate 2024-05-15 in Europe/Berlin is 2024-05-14T22:00Z."""
    config = tmp_path / "sf.toml"
    config.write_text('timezone = "Europe/Berlin"\n')
    state = ExportState(load_settings(config))
    records = campaign_member(rows("CampaignMember")[2], state)
    assert records[1]["occurred_at"] == "2024-05-14T22:00:00.000000Z"
