"""The definition workflow, evaluation and what-if, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from adapters.synthetic import generate
from ledger.application import open_ledger
from ledger.codec import parse_fact
from ledger.definitions import DefinitionError
from projections.audit_api import FunnelAudit
from projections.definitions import Catalogue, DefinitionBook
from projections.qualification_runner import Evaluator

BODY = """
stages = ["inquiry", "mql", "sal", "sql", "sqo", "won", "lost"]
terminal = ["won", "lost"]
side = ["recycled", "disqualified"]
[owners]
marketing = "cmo"
sales = "cro"
[[transitions]]
from = ["inquiry", "recycled"]
to = "mql"
"""


def write(tmp_path: Path, version: str, effective: str, rule: str) -> Path:
    path = tmp_path / f"{version}.toml"
    head = f'version = "{version}"\neffective_from = {effective}\nchange_note = "n"\n'
    path.write_text(head + BODY + f"rule = '{rule}'\n")
    return path


@pytest.fixture
def book(db_url: str, tmp_path: Path):
    ledger = open_ledger(db_url)
    book = DefinitionBook(ledger)
    book.propose(write(tmp_path, "v1", "2024-11-01", "score >= 60"), "cmo")
    yield book
    ledger.close()


def test_single_approval_never_activates(book: DefinitionBook):
    """One owner's approval leaves the version out of force."""
    book.approve("v1", "marketing", "cmo")
    assert Catalogue.load(book.ledger).in_force(datetime(2030, 1, 1, tzinfo=UTC)) is None


def test_both_approvals_activate(book: DefinitionBook):
    """Marketing and sales approvals put the version in force from its effective date."""
    book.approve("v1", "marketing", "cmo")
    book.approve("v1", "sales", "cro")
    assert Catalogue.load(book.ledger).in_force(datetime(2025, 1, 1, tzinfo=UTC)).name == "v1"  # type: ignore[union-attr]


def test_wrong_role_is_refused(book: DefinitionBook):
    """An actor who is not the role's owner cannot approve as that role."""
    with pytest.raises(DefinitionError, match="not the sales owner"):
        book.approve("v1", "sales", "cmo")


def test_same_actor_twice_is_refused(book: DefinitionBook):
    """The owner who approved as marketing cannot approve again as marketing."""
    book.approve("v1", "marketing", "cmo")
    with pytest.raises(DefinitionError, match="already approved"):
        book.approve("v1", "marketing", "cmo")


def test_malformed_file_writes_nothing(book: DefinitionBook, tmp_path: Path):
    """A definition with a bad rule is refused and the ledger does not grow."""
    before = book.ledger.position()
    with pytest.raises(DefinitionError, match="position"):
        book.propose(write(tmp_path, "v9", "2025-01-01", "score >="), "cmo")
    assert book.ledger.position() == before


def _approved_pair(db_url: str, tmp_path: Path, leads: int):
    ledger = open_ledger(db_url)
    facts = [parse_fact(r) for r in generate(leads, seed=3)]
    for start in range(0, len(facts), 2000):
        ledger.record(facts[start : start + 2000])
    book = DefinitionBook(ledger)
    book.propose(
        write(tmp_path, "v1", "2024-11-01", 'score >= 60 and fit in ("A", "B", "C", "D")'), "cmo"
    )
    book.propose(
        write(tmp_path, "v2", "2025-11-01", 'score >= 65 and fit in ("A", "B", "C")'), "cmo"
    )
    roles = (("marketing", "cmo"), ("sales", "cro"))
    for version, (role, actor) in itertools.product(("v1", "v2"), roles):
        book.approve(version, role, actor)
    return ledger


def test_evaluation_is_recorded_exactly_once(db_url: str, tmp_path: Path):
    """A second evaluation run records nothing new."""
    ledger = _approved_pair(db_url, tmp_path, 60)
    first = Evaluator(ledger).run()
    second = Evaluator(ledger).run()
    assert (first.recorded > 0, second.recorded) == (True, 0)
    ledger.close()


def test_whatif_under_stricter_version_counts_fewer(db_url: str, tmp_path: Path):
    """Re-counting the first year under v2 finds fewer MQLs than v1 produced."""
    ledger = _approved_pair(db_url, tmp_path, 150)
    audit = FunnelAudit(ledger)
    row = audit.whatif("v2", date(2024, 11, 1), date(2025, 10, 31)).rows[0]
    audit.close()
    ledger.close()
    assert row[3] < row[2]


def test_whatif_under_the_version_in_force_matches_it(db_url: str, tmp_path: Path):
    """Re-counting v1's own period under v1 reproduces the in-force count."""
    ledger = _approved_pair(db_url, tmp_path, 150)
    audit = FunnelAudit(ledger)
    row = audit.whatif("v1", date(2024, 11, 1), date(2025, 10, 31)).rows[0]
    audit.close()
    ledger.close()
    assert row[3] == row[2]


def test_history_counts_come_from_recorded_evaluations(db_url: str, tmp_path: Path):
    """After evaluation, the history report shows MQL counts for both versions."""
    ledger = _approved_pair(db_url, tmp_path, 150)
    Evaluator(ledger).run()
    audit = FunnelAudit(ledger)
    from projections.periods import Calendar  # noqa: PLC0415

    rows = audit.history(Calendar("quarter")).rows
    audit.close()
    ledger.close()
    assert {r[0] for r in rows if r[8]} == {"v1", "v2"}
