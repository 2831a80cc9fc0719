"""File sources against real ledgers (SQLite, PostgreSQL): idempotent, resumable, all-or-nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from adapters.cli import main
from adapters.files import load_inputs
from adapters.hubspot import hubspot_inputs
from adapters.hubspot import load_settings as hubspot_settings
from adapters.mapping import mapping_inputs
from adapters.salesforce import load_settings, salesforce_inputs
from ledger.application import open_ledger

FIXTURES = Path(__file__).parent.parent / "fixtures"
SALESFORCE = FIXTURES / "salesforce"


def load_salesforce(url: str, paths: list[str], tmp_path: Path, **options):
    ledger = open_ledger(url)
    try:
        inputs, _ = salesforce_inputs(paths, load_settings(), rescan=options.pop("rescan", False))
        return load_inputs(ledger, inputs, rejects_path=tmp_path / "rejects.jsonl", **options)
    finally:
        ledger.close()


def totals(summaries) -> dict[str, int]:
    return {name: sum(getattr(s, name) for s in summaries)
            for name in ("read", "recorded", "duplicates", "rejected", "skipped")}


def position(url: str) -> int:
    ledger = open_ledger(url)
    try:
        return ledger.position()
    finally:
        ledger.close()


def test_loading_an_export_twice_records_nothing_new(db_url: str, tmp_path: Path) -> None:
    """The second load skips every file by its checkpoint; a rescan finds only duplicates."""
    first = totals(load_salesforce(db_url, [str(SALESFORCE)], tmp_path))
    second = totals(load_salesforce(db_url, [str(SALESFORCE)], tmp_path))
    rescan = totals(load_salesforce(db_url, [str(SALESFORCE)], tmp_path, rescan=True))
    assert first["recorded"] == position(db_url) == 37
    assert (second["read"], second["recorded"]) == (0, 0)
    assert (rescan["recorded"], rescan["duplicates"]) == (0, 37 + first["duplicates"])


def test_an_overlapping_later_export_records_only_the_new_facts(db_url: str,
                                                               tmp_path: Path) -> None:
    """A later export that repeats the earlier rows and adds one history row adds one fact."""
    load_salesforce(db_url, [str(SALESFORCE)], tmp_path)
    later = tmp_path / "later"
    shutil.copytree(SALESFORCE, later)
    with (later / "LeadHistory.csv").open("a") as handle:
        handle.write('"0175g00000Hst11AAB","false","00Q5g000004XyZbEAK","0055g00000Usr02AAB",'
                     '"2024-06-01T10:00:00.000+0000","Rating","Picklist","","Warm"\n')
    again = totals(load_salesforce(db_url, [str(later)], tmp_path))
    assert again["recorded"] == 1
    assert position(db_url) == 38


def test_an_interrupted_load_resumes_after_its_last_checkpoint(db_url: str,
                                                              tmp_path: Path) -> None:
    """A load stopped after its first batches records the rest, and nothing twice, when re-run."""

    class Stop(Exception):
        """Simulates a crash between batches."""

    calls = []

    def crash(summary) -> None:
        calls.append(summary.recorded)
        if len(calls) == 3:
            raise Stop

    with pytest.raises(Stop):
        load_salesforce(db_url, [str(SALESFORCE)], tmp_path, batch_size=2, progress=crash)
    partial = position(db_url)
    resumed = totals(load_salesforce(db_url, [str(SALESFORCE)], tmp_path, batch_size=2))
    assert 0 < partial < 37
    assert resumed["skipped"] > 0
    assert position(db_url) == 37


def test_a_bad_mapping_is_refused_before_anything_is_written(db_url: str, tmp_path: Path) -> None:
    """A mapping naming a column the input lacks exits 1 and leaves the ledger empty."""
    mapping = tmp_path / "bad.toml"
    text = (FIXTURES / "mapping" / "funnel.toml").read_text().replace('"Stage"', '"Status"', 1)
    mapping.write_text(text)
    main(["--db", db_url, "init"])
    code = main(["--db", db_url, "load", "mapping", "--mapping", str(mapping),
                 str(FIXTURES / "mapping" / "funnel.csv")])
    assert code == 1
    assert position(db_url) == 0


def test_rejects_are_written_with_file_line_and_field(db_url: str, tmp_path: Path) -> None:
    """Each rejected row is in the rejects file with where, field and reason; the rest lands."""
    ledger = open_ledger(db_url)
    try:
        inputs = mapping_inputs(FIXTURES / "mapping" / "funnel.toml",
                                [str(FIXTURES / "mapping" / "funnel.csv")])
        summary = load_inputs(ledger, inputs, rejects_path=tmp_path / "rejects.jsonl")[0]
    finally:
        ledger.close()
    lines = [orjson.loads(x) for x in (tmp_path / "rejects.jsonl").read_bytes().splitlines()]
    assert [(Path(r["where"]).name, r["field"]) for r in lines] == [
        ("funnel.csv:6", "Stage"), ("funnel.csv:10", "Changed At")]
    assert (summary.recorded, summary.duplicates, summary.rejected) == (6, 1, 2)


def test_hubspot_files_loaded_twice_record_nothing_new(db_url: str, tmp_path: Path) -> None:
    """HubSpot pages and JSONL are skipped by checkpoint the second time."""
    files = [str(FIXTURES / "hubspot" / "contacts.json"), str(FIXTURES / "hubspot" / "deals.jsonl")]
    ledger = open_ledger(db_url)
    try:
        runs = [totals(load_inputs(ledger, hubspot_inputs(files, hubspot_settings()),
                                   rejects_path=tmp_path / "r.jsonl")) for _ in range(2)]
    finally:
        ledger.close()
    assert (runs[0]["recorded"], runs[0]["rejected"]) == (24, 2)
    assert (runs[1]["recorded"], runs[1]["duplicates"]) == (0, 0)
    assert runs[1]["skipped"] >= 25
