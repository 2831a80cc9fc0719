"""HubSpot CRM API v3 contacts and deals (propertiesWithHistory) as canonical records."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from adapters.files import SourceFileError
from adapters.hubspot import contact, convert, deal, load_settings, objects
from ledger.errors import InvalidFact

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hubspot"


def contacts() -> list[dict]:
    return orjson.loads((FIXTURES / "contacts.json").read_bytes())["results"]


def deals() -> list[dict]:
    return [orjson.loads(line) for line in (FIXTURES / "deals.jsonl").read_bytes().splitlines()]


def of_type(records: list, kind: str) -> list[dict]:
    return [r for r in records if not isinstance(r, InvalidFact) and r["type"] == kind]


def test_lifecycle_history_is_replayed_oldest_first_without_repeats() -> None:
    """Newest-first, out-of-order and repeated entries become one ordered chain of stage changes."""
    stages = of_type(contact(contacts()[0], load_settings()), "stage_changed")
    assert [(s.get("from_stage"), s["to_stage"]) for s in stages] == [
        (None, "inquiry"), ("inquiry", "mql"), ("mql", "sql"), ("sql", "sqo")]


def test_a_history_source_id_is_the_object_property_and_hubspot_timestamp() -> None:
    """Source ids are stable across exports: contact/<id>:<property>:<timestamp>."""
    stages = of_type(contact(contacts()[0], load_settings()), "stage_changed")
    assert stages[1]["source_id"] == "contact/901:lifecyclestage:2024-03-07T09:10:00.000Z"


def test_the_actor_is_the_hubspot_user_or_else_the_change_source() -> None:
    """A user's change names the user; a workflow's names the workflow."""
    stages = of_type(contact(contacts()[0], load_settings()), "stage_changed")
    assert [s["actor"] for s in stages[:3]] == [
        "hubspot:FORM:form-7f3a", "hubspot:AUTOMATION_PLATFORM:workflow-42", "hs-user:4411"]


def test_an_unmapped_lifecycle_stage_rejects_only_that_change() -> None:
    """A custom lifecycle stage id is rejected with its value; the rest of the contact lands."""
    records = contact(contacts()[1], load_settings())
    errors = [r for r in records if isinstance(r, InvalidFact)]
    assert [str(e) for e in errors] == [
        ("lifecyclestage: stage '1234567' is not mapped; add it to the lifecycle_stages table "
         'of a --config file or set on_unmapped = "skip"')]
    assert [s["to_stage"] for s in of_type(records, "stage_changed")] == ["inquiry"]


def test_an_unqualified_lead_status_disqualifies_the_lead() -> None:
    """hs_lead_status UNQUALIFIED is recorded as an attribute and as lead_disqualified."""
    records = contact(contacts()[1], load_settings())
    assert of_type(records, "lead_disqualified")[0]["reason"] == "UNQUALIFIED"
    assert of_type(records, "lead_updated")[0]["attributes"] == {"hs_lead_status": "UNQUALIFIED"}


def test_a_deal_opens_in_its_first_stage_with_its_company_and_contacts() -> None:
    """The opening takes the first stage and amount in history and the associations."""
    opened = of_type(deal(deals()[0], load_settings()), "opportunity_opened")[0]
    assert (opened["stage"], opened["amount"], opened["currency"], opened["account_id"],
            opened["lead_ids"]) == ("appointment_scheduled", "20000", "EUR",
                                    "hs:company:3301", ["hs:contact:901"])


def test_a_won_deal_is_won_at_its_amount_as_of_the_close() -> None:
    """Closedwon gives opportunity_won with the amount in force at that time."""
    won = of_type(deal(deals()[0], load_settings()), "opportunity_won")
    assert [(w["occurred_at"], w["amount"]) for w in won] == [
        ("2024-05-30T16:00:00.000000Z", "24000")]


def test_a_reopened_deal_is_lost_twice_with_a_reopening_between() -> None:
    """Closedlost -> appointmentscheduled -> closedlost gives lost, reopened, lost."""
    records = deal(deals()[1], load_settings())
    closes = [r["type"] for r in records if r["type"] in
              ("opportunity_lost", "opportunity_reopened")]
    assert closes == ["opportunity_lost", "opportunity_reopened", "opportunity_lost"]
    assert of_type(records, "opportunity_lost")[0]["reason"] == "No budget"


def test_a_deal_without_a_company_is_its_own_account() -> None:
    """account_id is required, so a deal with no company association stands for its account."""
    opened = of_type(deal(deals()[1], load_settings()), "opportunity_opened")[0]
    assert (opened["account_id"], opened["amount"]) == ("hs:deal:556", "0")


def test_a_deal_in_an_unmapped_stage_is_rejected() -> None:
    """A custom pipeline's stage id is refused, naming the value."""
    with pytest.raises(InvalidFact, match="'98765432' is not mapped"):
        convert(deals()[2], load_settings())


def test_a_config_file_maps_a_custom_pipeline_stage(tmp_path: Path) -> None:
    """[deal_stages] maps a custom stage id."""
    config = tmp_path / "hs.toml"
    config.write_text('[deal_stages]\n"98765432" = "discovery"\n')
    opened = of_type(convert(deals()[2], load_settings(config)), "opportunity_opened")[0]
    assert opened["stage"] == "discovery"


def test_an_unknown_config_key_is_refused(tmp_path: Path) -> None:
    """A misspelt table names the file and the key."""
    config = tmp_path / "hs.toml"
    config.write_text('[lifecycle]\nlead = "mql"\n')
    with pytest.raises(SourceFileError, match=r"hs\.toml: lifecycle: unknown key"):
        load_settings(config)


def test_jsonl_lines_may_hold_objects_or_whole_pages(tmp_path: Path) -> None:
    """A JSONL line is one object or one API page; each object is located by line and index."""
    path = tmp_path / "mixed.jsonl"
    page = {"results": contacts(), "paging": {}}
    path.write_bytes(orjson.dumps(deals()[0]) + b"\n" + orjson.dumps(page) + b"\n")
    assert [where for where, _ in objects(path)] == [
        f"{path}:1", f"{path}:2:results[0]", f"{path}:2:results[1]"]
