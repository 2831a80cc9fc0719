"""``revledger audit`` funnel commands as a user runs them."""

from __future__ import annotations

import orjson

from adapters.cli import main


def test_audit_lead_as_json_lists_the_timeline(sqlite_url: str, capsys):
    """``audit lead --format json`` gives every fact of the lead with its source id."""
    main(["--db", sqlite_url, "generate", "--leads", "5", "--out", "g.jsonl"])
    main(["--db", sqlite_url, "ingest", "g.jsonl"])
    capsys.readouterr()
    assert main(["--db", sqlite_url, "audit", "lead", "L0000001", "--format", "json"]) == 0
    rows = orjson.loads(capsys.readouterr().out)["rows"]
    assert rows
    assert all(row["source_id"] for row in rows)


def test_audit_lead_unknown_is_an_error(sqlite_url: str, capsys):
    """An unknown lead id exits 1 with one line."""
    main(["--db", sqlite_url, "init"])
    assert main(["--db", sqlite_url, "audit", "lead", "nobody"]) == 1
    assert "nobody" in capsys.readouterr().err


def test_reconcile_leads_exports_csv(sqlite_url: str, capsys):
    """``audit reconcile --leads --format csv`` writes a header and one row per lead."""
    main(["--db", sqlite_url, "generate", "--leads", "60", "--out", "g.jsonl"])
    main(["--db", sqlite_url, "ingest", "g.jsonl"])
    capsys.readouterr()
    args = ["audit", "reconcile", "--from", "2025-01-01", "--to", "2025-12-31", "--leads",
            "--format", "csv"]
    assert main(["--db", sqlite_url, *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "lead_id,side,class,handed_off_at"
    assert len(lines) > 1


def test_reconcile_on_a_projection_without_handoff_rows_says_one_line(sqlite_url: str, capsys):
    """A projection built before rl_handoff/rl_accept: one line and exit 1; a rebuild fixes it."""
    import sqlalchemy as sa  # noqa: PLC0415

    main(["--db", sqlite_url, "generate", "--leads", "60", "--out", "g.jsonl"])
    main(["--db", sqlite_url, "ingest", "g.jsonl"])
    main(["--db", sqlite_url, "project"])
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:  # as an older revledger built it
        conn.exec_driver_sql("DROP TABLE rl_handoff")
        conn.exec_driver_sql("DROP TABLE rl_accept")
    engine.dispose()
    capsys.readouterr()
    args = ["audit", "sla", "--from", "2025-01-01", "--to", "2025-12-31", "--format", "json"]
    assert main(["--db", sqlite_url, *args]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: the projection lacks rl_accept, rl_handoff; run 'revledger rebuild' once"
    ]
    assert main(["--db", sqlite_url, "rebuild"]) == 0
    capsys.readouterr()
    assert main(["--db", sqlite_url, *args]) == 0
    rows = orjson.loads(capsys.readouterr().out)["rows"]
    assert sum(row["handoffs"] for row in rows) > 0
