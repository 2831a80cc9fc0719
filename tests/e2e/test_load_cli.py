"""The load commands as a user runs them: summaries, exit codes, rejects, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures"
REVLEDGER = str(Path(sys.executable).parent / "revledger")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the revledger command and capture its output."""
    return subprocess.run([REVLEDGER, *args], capture_output=True, text=True, check=False,  # noqa: S603 - our own command
                          timeout=300)


def test_a_salesforce_export_directory_loads_and_reports_its_rejects(sqlite_url: str,
                                                                     tmp_path: Path) -> None:
    """Load salesforce DIR records the export, names each rejected row, and exits 3."""
    rejects = tmp_path / "sf.rejects.jsonl"
    done = run("--db", sqlite_url, "load", "salesforce", str(FIXTURES / "salesforce"),
               "--rejects", str(rejects), "--format", "json")
    total = json.loads(done.stdout)["rows"][-1]
    assert done.returncode == 3
    assert (total["recorded"], total["rejected"]) == (37, 2)
    assert "LeadHistory.csv:11: NewValue: stage 'Nurturing Long Term'" in done.stderr
    assert len(rejects.read_text().splitlines()) == 2


def test_a_converted_leads_timeline_holds_its_contact_and_opportunity_facts(
        sqlite_url: str, tmp_path: Path) -> None:
    """After a Salesforce load the lead's timeline includes touches on its contact and the win."""
    run("--db", sqlite_url, "load", "salesforce", str(FIXTURES / "salesforce"),
        "--rejects", str(tmp_path / "r.jsonl"))
    done = run("--db", sqlite_url, "events", "--lead", "sf:00Q5g000004XyZaEAK", "--format", "json")
    facts = [json.loads(line) for line in done.stdout.splitlines()]
    assert "00v5g00000Mbr02AAB:member" in {f["source_id"] for f in facts}
    assert [f["to_stage"] for f in facts if f["type"] == "stage_changed"] == [
        "inquiry", "mql", "sal", "sql", "sqo", "won"]


def test_a_mapping_with_an_unknown_key_is_one_error_line_and_exit_1(sqlite_url: str,
                                                                  tmp_path: Path) -> None:
    """A wrong mapping file is refused with one line naming the file and key, no traceback."""
    mapping = tmp_path / "m.toml"
    mapping.write_text('colour = "red"\n' + (FIXTURES / "mapping" / "funnel.toml").read_text())
    done = run("--db", sqlite_url, "load", "mapping", "--mapping", str(mapping),
               str(FIXTURES / "mapping" / "funnel.csv"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {mapping}: colour: unknown key; see docs/adapters.md for the keys"]
    assert "Traceback" not in done.stderr
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_loading_hubspot_files_again_skips_them(sqlite_url: str, tmp_path: Path) -> None:
    """A second load of the same HubSpot files records nothing and says why."""
    files = [str(FIXTURES / "hubspot" / "contacts.json"), str(FIXTURES / "hubspot" / "deals.jsonl")]
    first = run("--db", sqlite_url, "load", "hubspot", *files, "--format", "json",
                "--rejects", str(tmp_path / "r.jsonl"))
    second = run("--db", sqlite_url, "load", "hubspot", *files, "--format", "json",
                 "--rejects", str(tmp_path / "r.jsonl"))
    assert json.loads(first.stdout)["rows"][-1]["recorded"] == 24
    assert json.loads(second.stdout)["rows"][-1]["recorded"] == 0
    assert "checkpoint" in second.stderr


def test_a_mapping_load_prints_the_summary_table(sqlite_url: str, tmp_path: Path) -> None:
    """Load mapping prints read/recorded/duplicates/rejected for the input."""
    done = run("--db", sqlite_url, "load", "mapping", "--mapping",
               str(FIXTURES / "mapping" / "funnel.toml"), str(FIXTURES / "mapping" / "funnel.csv"),
               "--format", "csv", "--rejects", str(tmp_path / "r.jsonl"))
    assert done.returncode == 3
    assert done.stdout.splitlines()[1].endswith("funnel.csv,9,6,1,2,0")
