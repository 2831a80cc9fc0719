"""The projection commands as a user runs them: project, rebuild, report in every format."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from ledger import open_ledger, parse_fact
from tests.factories import restore_fact_bytes_layout

REPORTS = ("inventory", "flow", "conversion", "velocity", "anomalies")
START = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW = ["--from", "2025-01-01", "--as-of", "2025-03-31"]


def revledger(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "adapters.cli", "--db", url, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603


def move(n: int, lead: str, stage: str, day: int) -> object:
    moment = (START + timedelta(days=day)).isoformat()
    return parse_fact(
        {
            "type": "stage_changed",
            "lead_id": lead,
            "to_stage": stage,
            "source": "cli",
            "source_id": str(n),
            "actor": "a",
            "occurred_at": moment,
            "recorded_at": moment,
        }
    )


@pytest.fixture
def ledger_url(sqlite_url):
    ledger = open_ledger(sqlite_url)
    ledger.record(
        [
            move(1, "A", "mql", 3),
            move(2, "A", "sql", 9),
            move(3, "B", "inquiry", 4),
            move(4, "B", "mql", 40),
            move(5, "A", "sal", 50),
        ]
    )
    ledger.close()
    assert revledger(sqlite_url, "project").returncode == 0
    return sqlite_url


@pytest.mark.parametrize("kind", REPORTS)
def test_every_report_renders_as_json(ledger_url, kind):
    """--format json is one document with title, rows and notes."""
    result = revledger(ledger_url, "report", kind, *WINDOW, "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["title"]
    assert isinstance(document["rows"], list)


@pytest.mark.parametrize("kind", REPORTS)
def test_every_report_renders_as_csv_with_a_header(ledger_url, kind):
    """--format csv starts with the column names."""
    result = revledger(ledger_url, "report", kind, *WINDOW, "--format", "csv")
    assert result.returncode == 0, result.stderr
    header = next(csv.reader(io.StringIO(result.stdout)))
    assert header[0] == "period"


@pytest.mark.parametrize("kind", REPORTS)
def test_every_report_renders_as_a_table(ledger_url, kind):
    """The default format is a titled table."""
    result = revledger(ledger_url, "report", kind, *WINDOW, "--by", "segment")
    assert result.returncode == 0, result.stderr
    title = {
        "inventory": "Inventory",
        "flow": "Stage flow",
        "conversion": "Cohort conversion",
        "velocity": "Velocity",
        "anomalies": "Anomalies",
    }[kind]
    assert result.stdout.startswith(title)
    assert "┏" in result.stdout


def test_flow_shows_the_skip_and_the_backward_move(ledger_url):
    """A's mql->sql skip and sql->sal backward move appear in the matrix."""
    result = revledger(ledger_url, "report", "flow", *WINDOW, "--matrix", "--format", "json")
    moves = {(r["from_stage"], r["to_stage"], r["move"]) for r in json.loads(result.stdout)["rows"]}
    assert {("mql", "sql", "skip"), ("sql", "sal", "backward")} <= moves


def test_compare_shows_then_now_and_difference(ledger_url):
    """--compare with --known-at adds _then, _now and _diff columns."""
    result = revledger(
        ledger_url,
        "report",
        "inventory",
        *WINDOW,
        "--known-at",
        "2025-01-05",
        "--compare",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    january_mql = next(r for r in rows if r["period"] == "2025-01" and r["stage"] == "mql")
    assert (january_mql["count_then"], january_mql["count_now"], january_mql["count_diff"]) == (
        1,
        0,
        -1,
    )


def test_rebuild_reports_progress_and_keeps_results(ledger_url):
    """``rebuild`` shows events per second, then each step, and leaves the same numbers."""
    before = revledger(ledger_url, "report", "flow", *WINDOW, "--format", "csv").stdout
    result = revledger(ledger_url, "rebuild")
    assert result.returncode == 0, result.stderr
    assert "events/s" in result.stderr
    steps = ("indexing the loaded tables", "building the roll-ups", "swapping the new tables in")
    found = [result.stderr.find(f"{step}…") for step in steps]
    assert -1 not in found, result.stderr
    assert found == sorted(found)
    assert revledger(ledger_url, "report", "flow", *WINDOW, "--format", "csv").stdout == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "funnel"], "unknown report 'funnel'"),
        (["report", "flow", "--from", "2025-02-30"], "is not a date"),
        (["report", "flow", "--stage", "hot"], "unknown stage 'hot'"),
        (["report", "flow", "--by", "colour"], "cannot split by 'colour'"),
        (["report", "flow", "--tz", "Mars/Olympus"], "unknown timezone"),
        (["report", "flow", "--format", "xml"], "unknown format"),
        (["rebuild", "nope"], "unknown projection"),
    ],
)
def test_bad_input_is_one_error_line_without_traceback(ledger_url, args, message):
    """Bad options exit 1 with one line naming the problem."""
    result = revledger(ledger_url, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_report_says_how_many_recorded_facts_it_does_not_count_yet(ledger_url):
    """Facts recorded after the last catch-up are named in a note until 'project' runs."""
    ledger = open_ledger(ledger_url)
    ledger.record([move(6, "C", "mql", 20), move(7, "C", "sal", 21)])
    ledger.close()
    behind = "the ledger holds 2 facts recorded since the projection was last brought up to date"
    before = json.loads(revledger(ledger_url, "report", "flow", *WINDOW, "--format", "json").stdout)
    assert any(note.startswith(behind) for note in before["notes"])
    assert "run 'revledger project' to include them" in before["notes"][-1]
    assert revledger(ledger_url, "project").returncode == 0
    after = json.loads(revledger(ledger_url, "report", "flow", *WINDOW, "--format", "json").stdout)
    assert not any("recorded since" in note for note in after["notes"])
    assert after["rows"] != before["rows"]  # C's moves, counted now


def test_project_on_an_outdated_projection_says_one_line(ledger_url):
    """A projection built before rl_fact named facts by position: one line, exit 1, no bar."""
    import sqlalchemy as sa  # noqa: PLC0415

    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:  # as an older revledger built it
        restore_fact_bytes_layout(conn, "rl_fact")
    engine.dispose()
    result = revledger(ledger_url, "project")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        (
            "error: the projection lacks rl_fact.occurred_us, rl_fact.position; "
            "run 'revledger rebuild' once"
        )
    ]
    assert revledger(ledger_url, "rebuild").returncode == 0
    assert revledger(ledger_url, "project").returncode == 0


def test_project_follow_stops_cleanly_on_sigterm(ledger_url):
    """--follow keeps running until SIGTERM, then exits 0 having projected new facts."""
    command = [
        sys.executable,
        "-m",
        "adapters.cli",
        "--db",
        ledger_url,
        "project",
        "--follow",
        "--interval",
        "0.1",
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
    ledger = open_ledger(ledger_url)
    ledger.record([move(6, "C", "mql", 20)])
    ledger.close()
    time.sleep(2)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert "projected 1 new facts" in err
