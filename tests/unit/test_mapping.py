"""The generic mapping source: a TOML mapping file turns CSV/JSONL rows into canonical records."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.files import CsvInput, SourceFileError
from adapters.mapping import MappedRows, load_mapping, mapped_input
from ledger.errors import InvalidFact

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mapping"
FUNNEL = """
source = "acme-crm"
id_column = "Person ID"
time_column = "Changed At"
time_format = "%d.%m.%Y %H:%M"
timezone = "Europe/Berlin"
actor = "acme-crm"
source_id_hash = ["Person ID", "Changed At", "Stage"]
stage_column = "Stage"
{extra}
[stage_map]
"Raw Inquiry" = "inquiry"
"Marketing Qualified" = "mql"
"""


def write(tmp_path: Path, text: str, name: str = "map.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def funnel_records() -> list[dict]:
    mapping = load_mapping(FIXTURES / "funnel.toml")
    convert = MappedRows(mapping)
    table = CsvInput(FIXTURES / "funnel.csv", delimiter=";")
    out = []
    for _, _, row in table.rows():
        try:
            out.extend(convert(row))
        except InvalidFact:
            continue
    return out


def test_stage_rows_become_stage_changes_with_the_previous_stage_of_the_same_lead() -> None:
    """Without a from column, from_stage is the lead's stage on its previous row."""
    records = [r for r in funnel_records() if r["lead_id"] == "acme:P-1001"]
    assert [(r.get("from_stage"), r["to_stage"]) for r in records] == [
        (None, "inquiry"), ("inquiry", "mql"), ("mql", "sal"), ("sal", "sql"), ("sql", "sql")]


def test_naive_times_are_read_in_the_mapping_timezone() -> None:
    """05.03.2024 15:22 in Europe/Berlin is 14:22 UTC."""
    assert funnel_records()[0]["occurred_at"] == "2024-03-05T14:22:00.000000Z"


def test_a_duplicated_row_gets_the_same_hashed_source_id() -> None:
    """Identical rows hash to one source id, so the ledger records the fact once."""
    sql = [r for r in funnel_records() if r["to_stage"] == "sql"]
    assert len(sql) == 2
    assert sql[0]["source_id"] == sql[1]["source_id"]


def test_blank_actor_cells_fall_back_to_the_constant_actor() -> None:
    """A row whose actor column is blank takes the mapping's constant actor."""
    ben = next(r for r in funnel_records() if r["lead_id"] == "acme:P-1002")
    assert ben["actor"] == "acme-crm"


def test_an_unmapped_stage_is_rejected_with_the_value_named(tmp_path: Path) -> None:
    """A stage value missing from stage_map fails the row, naming the value and the column."""
    convert = MappedRows(load_mapping(write(tmp_path, FUNNEL.format(extra=""))))
    row = {"Person ID": "P-1", "Changed At": "05.03.2024 15:22", "Stage": "Nurture Pool"}
    with pytest.raises(InvalidFact, match="'Nurture Pool' is not mapped") as error:
        convert(row)
    assert error.value.field == "Stage"


def test_an_unmapped_stage_is_skipped_under_the_skip_policy(tmp_path: Path) -> None:
    """on_unmapped = "skip" drops the row instead of rejecting it."""
    path = write(tmp_path, FUNNEL.format(extra='on_unmapped = "skip"'))
    row = {"Person ID": "P-1", "Changed At": "05.03.2024 15:22", "Stage": "Nurture Pool"}
    assert MappedRows(load_mapping(path))(row) == []


def test_an_unknown_key_is_refused_naming_the_file_and_key(tmp_path: Path) -> None:
    """A misspelt key is one error naming the mapping file and the key."""
    path = write(tmp_path, FUNNEL.format(extra='time_zone = "UTC"'))
    with pytest.raises(SourceFileError, match=r"map\.toml: time_zone: unknown key"):
        load_mapping(path)


def test_a_bad_timezone_is_refused(tmp_path: Path) -> None:
    """A timezone that is not an IANA name is refused before any row is read."""
    path = write(tmp_path, FUNNEL.format(extra="").replace("Europe/Berlin", "Mars/Olympus"))
    with pytest.raises(SourceFileError, match="timezone: unknown timezone 'Mars/Olympus'"):
        load_mapping(path)


def test_a_bad_unmapped_policy_is_refused(tmp_path: Path) -> None:
    """on_unmapped only takes reject or skip."""
    path = write(tmp_path, FUNNEL.format(extra='on_unmapped = "ignore"'))
    with pytest.raises(SourceFileError, match="on_unmapped must be"):
        load_mapping(path)


def test_a_column_missing_from_the_header_is_refused(tmp_path: Path) -> None:
    """A mapped column the CSV header lacks is refused before any row is read."""
    mapping = load_mapping(write(tmp_path, FUNNEL.format(extra="")))
    data = write(tmp_path, "Person ID,Changed At,Status\nP-1,05.03.2024 15:22,x\n", "in.csv")
    with pytest.raises(SourceFileError, match="no column 'Stage'"):
        mapped_input(mapping, data)


def test_a_field_the_event_type_requires_must_be_mapped(tmp_path: Path) -> None:
    """touch_recorded needs a channel: a mapping that gives none is refused, naming the field."""
    text = FUNNEL.format(extra="").replace('stage_column = "Stage"',
                                           'event_type = "touch_recorded"')
    text = text[: text.index("[stage_map]")] + '[constants]\ntouch_type = "visit"\n'
    with pytest.raises(SourceFileError, match=r"fields\.channel: required by touch_recorded"):
        load_mapping(write(tmp_path, text))


def test_an_unknown_event_type_is_refused(tmp_path: Path) -> None:
    """An event type outside the catalogue is refused with a pointer to docs/events.md."""
    text = FUNNEL.format(extra='event_type = "lead_teleported"')
    with pytest.raises(SourceFileError, match="unknown event type 'lead_teleported'"):
        load_mapping(write(tmp_path, text))


def test_event_types_fields_constants_and_attributes_come_from_the_mapping() -> None:
    """The JSONL example maps a type column, fields, constants and attributes."""
    convert = MappedRows(load_mapping(FIXTURES / "events.toml"))
    signup = {"event_id": "e-1", "lead": "9001", "at": "2024-03-05T14:22:01Z",
              "kind": "signup", "email": "ana@example.com", "plan": "trial"}
    assert convert(signup) == [{
        "type": "lead_captured", "source": "product", "lead_id": "prod:9001",
        "occurred_at": "2024-03-05T14:22:01.000000Z", "actor": "product-events",
        "source_id": "e-1", "email": "ana@example.com", "attributes": {"plan": "trial"}}]


def test_an_unmapped_event_type_is_skipped_under_the_skip_policy() -> None:
    """The JSONL example skips event kinds it does not map."""
    convert = MappedRows(load_mapping(FIXTURES / "events.toml"))
    row = {"event_id": "e-4", "lead": "9002", "at": "2024-03-07T11:00:00Z", "kind": "unsubscribed"}
    assert convert(row) == []
