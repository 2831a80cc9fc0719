"""``revledger definitions`` as a user runs it."""

from __future__ import annotations

from pathlib import Path

from adapters.cli import main

FILE = """version = "v1"
effective_from = 2024-11-01
change_note = "first"
stages = ["inquiry", "mql", "sal"]
[owners]
marketing = "cmo"
sales = "cro"
[[transitions]]
from = ["inquiry"]
to = "mql"
rule = 'score >= 60 and has(company)'
"""


def test_propose_and_both_approvals_put_version_in_force(sqlite_url: str, tmp_path: Path, capsys):
    """propose, approve as marketing, approve as sales: the version is reported in force."""
    (tmp_path / "v1.toml").write_text(FILE)
    main(["--db", sqlite_url, "init"])
    assert main(["--db", sqlite_url, "definitions", "propose", "v1.toml", "--actor", "cmo"]) == 0
    assert main(["--db", sqlite_url, "definitions", "approve", "v1", "--as", "marketing",
                 "--actor", "cmo"]) == 0
    assert main(["--db", sqlite_url, "definitions", "approve", "v1", "--as", "sales",
                 "--actor", "cro"]) == 0
    assert capsys.readouterr().out.strip().endswith("now in force")


def test_malformed_rule_is_one_error_line_and_exit_1(sqlite_url: str, tmp_path: Path, capsys):
    """A bad rule exits 1 with one line naming file, key and position."""
    (tmp_path / "bad.toml").write_text(FILE.replace("score >= 60", "score >="))
    main(["--db", sqlite_url, "init"])
    capsys.readouterr()
    assert main(["--db", sqlite_url, "definitions", "propose", "bad.toml", "--actor", "cmo"]) == 1
    err = capsys.readouterr().err.strip()
    assert "bad.toml: transitions[0].rule: position 10" in err
    assert len(err.splitlines()) == 1


def test_evaluate_twice_records_nothing_the_second_time(sqlite_url: str, tmp_path: Path, capsys):
    """The second evaluate run reports zero new qualifications."""
    (tmp_path / "v1.toml").write_text(FILE)
    main(["--db", sqlite_url, "init"])
    main(["--db", sqlite_url, "definitions", "propose", "v1.toml", "--actor", "cmo"])
    main(["--db", sqlite_url, "definitions", "approve", "v1", "--as", "marketing",
          "--actor", "cmo"])
    main(["--db", sqlite_url, "definitions", "approve", "v1", "--as", "sales", "--actor", "cro"])
    main(["--db", sqlite_url, "generate", "--leads", "20", "--out", "g.jsonl"])
    main(["--db", sqlite_url, "ingest", "g.jsonl"])
    main(["--db", sqlite_url, "definitions", "evaluate"])
    capsys.readouterr()
    assert main(["--db", sqlite_url, "definitions", "evaluate"]) == 0
    assert "recorded 0 qualifications" in capsys.readouterr().out
