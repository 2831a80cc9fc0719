"""The CLI as a user runs it: generate, ingest, export, re-ingest, rejects, errors."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REVLEDGER = str(Path(sys.executable).parent / "revledger")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the revledger command and capture its output."""
    done = subprocess.run([REVLEDGER, *args], capture_output=True, text=True, check=False,  # noqa: S603 - our own command
                          timeout=600)
    if check and done.returncode != 0:
        pytest.fail(f"revledger {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


@pytest.fixture(scope="module")
def funnel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic funnel file, generated once for the module."""
    path = tmp_path_factory.mktemp("funnel") / "funnel.jsonl"
    run("generate", "--leads", "300", "--seed", "11", "--out", str(path))
    return path


def ingest_summary(db: str, *files: str) -> dict[str, int]:
    """Ingest files and return the JSON summary's totals."""
    done = run("--db", db, "ingest", *files, "--format", "json")
    rows = json.loads(done.stdout)["rows"]
    return {k: sum(r[k] for r in rows if r["input"] != "total")
            for k in ("read", "recorded", "duplicates", "rejected", "skipped")}


def test_export_of_a_reingested_export_is_identical(db_url: str, funnel: Path, tmp_path: Path,
                                                    sqlite_url: str) -> None:
    """Generate → ingest → export → ingest into a second ledger → the two exports are identical."""
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    ingest_summary(db_url, str(funnel))
    run("--db", db_url, "export", "--out", str(first))
    other = sqlite_url.replace("ledger.db", "copy.db")
    ingest_summary(other, str(first))
    run("--db", other, "export", "--out", str(second))
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_bytes().splitlines()) == len(funnel.read_bytes().splitlines())


def test_ingesting_the_same_file_twice_changes_nothing(db_url: str, funnel: Path) -> None:
    """A second ingest skips the loaded file by its checkpoint; a rescan finds only duplicates."""
    once = ingest_summary(db_url, str(funnel))
    before = run("--db", db_url, "export").stdout
    twice = ingest_summary(db_url, str(funnel))
    rescan = json.loads(run("--db", db_url, "ingest", str(funnel), "--rescan",
                            "--format", "json").stdout)["rows"][0]
    lines = once["read"]
    assert once == {"read": lines, "recorded": lines, "duplicates": 0, "rejected": 0, "skipped": 0}
    assert twice == {"read": 0, "recorded": 0, "duplicates": 0, "rejected": 0, "skipped": lines}
    assert (rescan["read"], rescan["recorded"], rescan["duplicates"]) == (lines, 0, lines)
    assert run("--db", db_url, "export").stdout == before


@pytest.mark.parametrize("parse", ["never", "always"])
def test_killed_ingest_resumes_after_its_last_committed_batch(
    db_url: str, tmp_path: Path, parse: str
) -> None:
    """SIGKILL mid-ingest, re-run: everything lands once, nothing is re-recorded or lost.

    With ``--parse-process always`` the killed ingest had a child parsing for it; the re-run
    parses in one process, so a load started one way resumes the other.
    """
    big = tmp_path / "big.jsonl"
    run("generate", "--leads", "3000", "--seed", "5", "--out", str(big))
    total = len(big.read_bytes().splitlines())
    run("--db", db_url, "init")
    proc = subprocess.Popen([REVLEDGER, "--db", db_url, "ingest", str(big), "--batch-size", "100",  # noqa: S603 - our own command
                             "--parse-process", parse],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and stored_rows(db_url) < total // 4:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    landed = position(db_url)
    assert 0 < landed < total, "the kill must land mid-ingest for this test to mean anything"
    resumed = ingest_summary(db_url, str(big))
    assert resumed["duplicates"] == 0
    assert resumed["skipped"] > 0
    assert resumed["skipped"] + resumed["read"] == total
    assert position(db_url) == total


def stored_rows(db_url: str) -> int:
    """How many rows the ledger's events table holds, counted by one cheap query (0 if none).

    Cheaper than :func:`position` (which reads every fact), so a test can stop a fast ingest
    early enough.
    """
    import sqlalchemy as sa  # noqa: PLC0415

    from ledger.storage import parse_url  # noqa: PLC0415

    config = parse_url(db_url)
    url = db_url.split("?", maxsplit=1)[0] if config.backend == "postgres" else db_url
    if config.backend == "postgres":
        table = f"{config.schema or 'public'}.ledger_events"
    else:
        table = "stored_events"  # eventsourcing's SQLite table name
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() or 0)  # noqa: S608 - our own table
    except sa.exc.DBAPIError:  # not created yet
        return 0
    finally:
        engine.dispose()


def position(db_url: str) -> int:
    """How many events the ledger holds (0 while it is being created).

    Counted, not read from the newest notification id: on PostgreSQL a transaction killed
    mid-insert leaves a gap in the id sequence.
    """
    from ledger.application import open_ledger  # noqa: PLC0415
    from ledger.errors import StoreUnavailable  # noqa: PLC0415

    try:
        ledger = open_ledger(db_url, create=False)
    except StoreUnavailable:
        return 0
    try:
        return sum(1 for _ in ledger.facts())
    finally:
        ledger.close()


def test_rejected_lines_are_reported_and_the_rest_lands(db_url: str, tmp_path: Path) -> None:
    """Bad lines go to the rejects file with line and field; good lines are recorded; exit 3."""
    good = {"type": "stage_changed", "occurred_at": "2025-01-06T10:00:00Z", "source": "crm",
            "source_id": "s1", "actor": "ops", "lead_id": "L1", "to_stage": "mql"}
    lines = [json.dumps(good), "{not json",
             json.dumps({**good, "source_id": "s2", "occurred_at": "2025-01-06"}),
             json.dumps({**good, "source_id": "s3", "type": "lead_teleported"}),
             json.dumps({"type": "opportunity_won", "occurred_at": "2025-01-06T10:00:00Z",
                         "source": "crm", "source_id": "w1", "actor": "rep",
                         "opportunity_id": "O1", "amount": "12,000", "currency": "USD"})]
    source = tmp_path / "batch.jsonl"
    source.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    done = run("--db", db_url, "ingest", str(source), "--rejects", str(rejects), check=False)
    assert done.returncode == 3
    reported = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["where"].rsplit(":", 1)[1], r["field"]) for r in reported] == [
        ("2", None), ("3", "occurred_at"), ("4", "type"), ("5", "amount")]
    assert "batch.jsonl:3: occurred_at:" in done.stderr
    assert run("--db", db_url, "stats", "--format", "json").stdout.count('"stage_changed"') == 0
    events = json.loads(run("--db", db_url, "stats", "--format", "json").stdout)["rows"]
    assert {"measure": "events: stage_changed", "value": 1} in events


def test_clean_rerun_removes_a_stale_rejects_file(sqlite_url: str, tmp_path: Path) -> None:
    """After the input is fixed, re-running leaves no misleading rejects file behind."""
    source = tmp_path / "fixed.jsonl"
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_text('{"stale": true}\n')
    source.write_text(json.dumps({"type": "stage_changed", "occurred_at": "2025-01-06T10:00:00Z",
                                  "source": "crm", "source_id": "s1", "actor": "ops",
                                  "lead_id": "L1", "to_stage": "mql"}) + "\n")
    run("--db", sqlite_url, "ingest", str(source), "--rejects", str(rejects))
    assert not rejects.exists()


@pytest.mark.postgres
def test_concurrent_ingest_into_postgres_loses_and_duplicates_nothing(
    pg_url: str, funnel: Path, tmp_path: Path
) -> None:
    """Two processes ingesting overlapping files at once record each fact exactly once."""
    # Corrections are left out: one whose target sits only in the other file would be rejected
    # or not depending on which process commits first, and that is not what this test is about.
    lines = [line for line in funnel.read_bytes().splitlines(keepends=True)
             if b'"fact_retracted"' not in line and b'"fact_amended"' not in line]
    half = len(lines) // 2
    part_a, part_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    part_a.write_bytes(b"".join(lines[: half + 200]))  # the middle 400 lines are in both files
    part_b.write_bytes(b"".join(lines[half - 200 :]))
    run("--db", pg_url, "init")
    procs = [subprocess.Popen([REVLEDGER, "--db", pg_url, "ingest", str(p), "--batch-size", "50",  # noqa: S603 - our own command
                               "--format", "json"], stdout=subprocess.PIPE, text=True)
             for p in (part_a, part_b)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    totals = [json.loads(o)["rows"][0] for o in outputs]
    assert sum(t["recorded"] for t in totals) == len(lines)
    assert sum(t["duplicates"] for t in totals) == 400
    exported = run("--db", pg_url, "export").stdout.splitlines()
    assert len(exported) == len(lines)
    keys = {(json.loads(e)["source"], json.loads(e)["source_id"]) for e in exported}
    assert len(keys) == len(lines)


def test_missing_ledger_is_one_clear_line(tmp_path: Path) -> None:
    """A read command on a file that holds no ledger prints one line and exits 1."""
    done = run("--db", f"sqlite:///{tmp_path / 'none.db'}", "stats", check=False)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "revledger --db" in done.stderr
    assert "init" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("parse", ["never", "always"])
def test_truncated_gzip_input_is_one_clear_line(sqlite_url: str, tmp_path: Path,
                                                parse: str) -> None:
    """A .gz cut short is one line naming the file, without a traceback; then it resumes.

    The re-run of the repaired file records everything once.
    """
    plain = tmp_path / "funnel.jsonl"
    run("generate", "--leads", "300", "--seed", "3", "--out", str(plain))
    packed = gzip.compress(plain.read_bytes())
    source = tmp_path / "funnel.jsonl.gz"
    source.write_bytes(packed[: len(packed) * 2 // 3])
    done = run("--db", sqlite_url, "ingest", str(source), "--batch-size", "50",
               "--parse-process", parse, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert f"cannot read {source} after line " in done.stderr
    source.write_bytes(packed)
    summary = ingest_summary(sqlite_url, str(source))
    assert summary["recorded"] + summary["duplicates"] == len(plain.read_bytes().splitlines())
    assert position(sqlite_url) == len(plain.read_bytes().splitlines())


def test_unreachable_postgres_is_one_clear_line() -> None:
    """An unreachable server is reported in one line, without a traceback."""
    done = run("--db", "postgresql://postgres@127.0.0.1:1/nowhere", "stats", check=False)
    assert done.returncode == 1
    assert "cannot open the ledger" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_input_file_writes_nothing(sqlite_url: str, tmp_path: Path) -> None:
    """Naming a file that does not exist fails before anything is recorded."""
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"type": "stage_changed", "occurred_at": "2025-01-06T10:00:00Z",
                                "source": "crm", "source_id": "s1", "actor": "ops",
                                "lead_id": "L1", "to_stage": "mql"}) + "\n")
    done = run("--db", sqlite_url, "ingest", str(good), str(tmp_path / "typo.jsonl"), check=False)
    assert done.returncode == 1
    assert "typo.jsonl" in done.stderr
    assert "0 events" in run("--db", sqlite_url, "stats").stdout


def test_events_shows_one_lead_in_business_time_order(sqlite_url: str, tmp_path: Path) -> None:
    """``events --lead`` lists that lead's facts by when they happened, not when they arrived."""
    base = {"type": "stage_changed", "source": "crm", "actor": "ops", "lead_id": "L1"}
    lines = [{**base, "source_id": "b", "occurred_at": "2025-02-01T00:00:00Z", "to_stage": "sal"},
             {**base, "source_id": "a", "occurred_at": "2025-01-01T00:00:00Z", "to_stage": "mql"},
             {**base, "source_id": "c", "occurred_at": "2025-01-15T00:00:00Z", "to_stage": "mql",
              "lead_id": "L2"}]
    source = tmp_path / "late.jsonl"
    source.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    run("--db", sqlite_url, "ingest", str(source))
    shown = run("--db", sqlite_url, "events", "--lead", "L1", "--format", "json").stdout
    assert [json.loads(x)["source_id"] for x in shown.splitlines()] == ["a", "b"]


def test_demo_prints_the_leadership_page(tmp_path: Path) -> None:
    """`revledger demo` ingests a generated funnel and prints every section of the page."""
    done = subprocess.run([REVLEDGER, "--db", f"sqlite:///{tmp_path / 'demo.db'}", "demo",  # noqa: S603 - our own command
                           "--leads", "300"], capture_output=True, text=True, cwd=tmp_path,
                          check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    for title in ("Ledger:", "Stage inventory at month end", "Flow in", "Conversion of the leads",
                  "Velocity,"):
        assert title in done.stdout
